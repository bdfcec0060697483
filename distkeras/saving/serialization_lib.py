"""Keras 3's object config layout: `module`, `class_name`, `config`, `registered_name`."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from distkeras.saving.object_registration import (
    GLOBAL_CUSTOM_NAMES,
    GLOBAL_CUSTOM_OBJECTS,
    custom_object_scope,
    get_registered_name,
    get_registered_object,
)

_BUILTIN_MODULE_PREFIX = "distkeras."
_SAFE_MODE = {"global": True, "scope": None}


def in_safe_mode() -> bool:
    """True unless unsafe deserialization was enabled (globally or by a scope)."""
    scope = _SAFE_MODE["scope"]
    return bool(_SAFE_MODE["global"] if scope is None else scope)


class SafeModeScope:
    """Sets safe mode inside a `with` block (None keeps the current setting).

    Args:
        safe_mode: False lets Lambda layers holding Python bytecode, or naming
            functions of any module (imported), load. Trusted files only.
    """

    def __init__(self, safe_mode: bool | None = True):
        self.safe_mode = safe_mode

    def __enter__(self) -> SafeModeScope:
        self._prev = _SAFE_MODE["scope"]
        if self.safe_mode is not None:
            _SAFE_MODE["scope"] = bool(self.safe_mode)
        return self

    def __exit__(self, *exc: Any) -> None:
        _SAFE_MODE["scope"] = self._prev


def enable_unsafe_deserialization() -> None:
    """Turns safe mode off everywhere: Lambda bytecode and module imports load (trusted only)."""
    _SAFE_MODE["global"] = False


def serialize_keras_object(obj: Any) -> Any:
    """Returns a JSON-friendly description of `obj`.

    Objects with `get_config` become `{"module", "class_name", "config",
    "registered_name"}`; plain functions become the same layout with their name;
    plain Python data is returned unchanged.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(o) for o in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        reg = GLOBAL_CUSTOM_NAMES.get(obj)
        return {
            "module": _public_module(obj),
            "class_name": "function",
            "config": reg or obj.__name__,
            "registered_name": reg or "function",
        }
    if hasattr(obj, "get_config"):
        cls = type(obj)
        out = {
            "module": _public_module(cls),
            "class_name": cls.__name__,
            "config": _plain(obj.get_config()),
            # Keras 3 writes null for built-in classes, 'package>Name' for registered ones.
            "registered_name": None
            if cls.__module__.startswith(_BUILTIN_MODULE_PREFIX) and cls not in GLOBAL_CUSTOM_NAMES
            else get_registered_name(cls),
        }
        if hasattr(obj, "get_build_config"):
            bc = obj.get_build_config()
            if bc is not None:
                out["build_config"] = bc
        if getattr(obj, "compiled", False) and hasattr(obj, "get_compile_config"):
            out["compile_config"] = obj.get_compile_config()  # Keras 3 keeps it with the model
        return out
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"Cannot serialize object of type {type(obj).__name__}. Received: {obj!r}")


def _plain(cfg: Any) -> Any:
    if isinstance(cfg, dict):
        return {k: _plain(v) for k, v in cfg.items()}
    if isinstance(cfg, tuple):
        return [_plain(v) for v in cfg]
    if isinstance(cfg, list):
        return [_plain(v) for v in cfg]
    if hasattr(cfg, "item") and getattr(cfg, "ndim", None) == 0:
        return cfg.item()
    if hasattr(cfg, "get_config") or callable(cfg) and not isinstance(cfg, type):
        return serialize_keras_object(cfg)
    return cfg


def _public_module(cls: type) -> str:
    mod = cls.__module__
    if mod.startswith(_BUILTIN_MODULE_PREFIX):
        # "distkeras.layers.core" -> "distkeras.layers", as Keras reports "keras.layers".
        # Models report "distkeras" (Keras 3: "keras"); others their public subpackage.
        parts = mod.split(".")
        return "distkeras" if parts[1] == "models" else ".".join(parts[:2])
    return mod


def closest_names(
    name: Any, module_objects: dict | None = None, custom_objects: dict | None = None, n: int = 3
) -> list[str]:
    """The valid names closest to `name` (difflib's ratio, at least 0.6), best first.

    Candidates are the keys of `module_objects`, `custom_objects` and the
    global registry. Case is ignored for the ranking (exact case breaks ties);
    of several names for one object (such as 'glorot_uniform' and
    'GlorotUniform') only the closest is listed.
    """
    if not isinstance(name, str):
        return []
    scored = []
    for table in (module_objects, custom_objects, GLOBAL_CUSTOM_OBJECTS):
        for key, obj in (table or {}).items():
            if not isinstance(key, str):
                continue
            loose = difflib.SequenceMatcher(None, name.lower(), key.lower()).ratio()
            if loose >= 0.6:
                exact = difflib.SequenceMatcher(None, name, key).ratio()
                scored.append((loose, exact, key, obj))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    out: list[str] = []
    seen: list[Any] = []
    for _, _, key, obj in scored:
        if key in out or any(obj is o for o in seen):
            continue
        seen.append(obj)
        out.append(key)
    return out[:n]


def _did_you_mean(name: Any, module_objects: dict | None, custom_objects: dict | None) -> str:
    close = closest_names(name, module_objects, custom_objects)
    if not close:
        return ""
    return ". Did you mean: " + ", ".join(repr(c) for c in close) + "?"


def deserialize_keras_object(
    config: Any,
    module_objects: dict | None = None,
    custom_objects: dict | None = None,
    printable_module_name: str = "object",
) -> Any:
    """Rebuilds an object from `serialize_keras_object` output or a string name.

    Raises:
        ValueError: for an unknown name, naming the module and the received
            value, and listing the closest valid names when there are any.
    """
    if config is None:
        return None
    if isinstance(config, str):
        obj = get_registered_object(config, custom_objects, module_objects)
        if obj is None:
            raise ValueError(
                f"Could not interpret {printable_module_name} identifier: {config!r}. "
                f"Received: identifier={config!r}"
                + _did_you_mean(config, module_objects, custom_objects)
            )
        return obj() if isinstance(obj, type) else obj
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Could not interpret {printable_module_name} config. Received: config={config!r}"
        )
    class_name = config["class_name"]
    inner = config.get("config")
    registered = config.get("registered_name") or class_name
    if class_name == "function":
        name = inner if isinstance(inner, str) else registered
        obj = get_registered_object(name, custom_objects, module_objects)
        if obj is None:
            raise ValueError(
                f"Unknown {printable_module_name} function: {name!r}. Received: config={config!r}"
                + _did_you_mean(name, module_objects, custom_objects)
            )
        return obj
    cls = None
    for name in (registered, class_name):
        cls = get_registered_object(name, custom_objects, module_objects)
        if cls is not None:
            break
    if cls is None:
        raise ValueError(
            f"Unknown {printable_module_name}: {class_name!r}. Please ensure it is registered "
            "with @register_keras_serializable or passed in custom_objects. "
            f"Received: config={config!r}"
            + _did_you_mean(class_name, module_objects, custom_objects)
        )
    if inner is not None and not isinstance(inner, dict):
        raise ValueError(
            f"The config of {printable_module_name} {class_name!r} must be a dict. "
            f"Received: config={_short(inner)}"
        )
    # Nested objects (a Lambda's function, a wrapper's layer) see `custom_objects` too.
    with custom_object_scope(custom_objects or {}):
        if hasattr(cls, "from_config"):
            obj = cls.from_config(inner or {})
        else:
            obj = cls(**(inner or {}))
    bc = config.get("build_config")
    if bc is not None and hasattr(obj, "build_from_config"):
        obj.build_from_config(bc)
    return obj


def get_from_identifier(
    identifier: Any,
    module_objects: dict,
    printable_module_name: str,
    instantiate: bool = True,
) -> Any:
    """What a module's `get` returns for a non-None identifier.

    A name is looked up in `module_objects`, then deserialized (so registered
    and scoped custom objects resolve too); a config dict is deserialized;
    anything else stands for itself.

    Args:
        identifier: A name, a config dict, a class, an instance or a callable.
        module_objects: The module's names -> objects.
        printable_module_name: The kind of object, for error messages.
        instantiate: Whether a class is instantiated with its defaults.

    Returns:
        The callable object.

    Raises:
        ValueError: if the identifier does not resolve to a callable.
    """
    where = {"module_objects": module_objects, "printable_module_name": printable_module_name}
    if isinstance(identifier, dict):
        obj = deserialize_keras_object(identifier, **where)
    elif isinstance(identifier, str):
        obj = module_objects.get(identifier) or deserialize_keras_object(identifier, **where)
    else:
        obj = identifier
    if callable(obj):
        return obj() if instantiate and inspect.isclass(obj) else obj
    raise ValueError(f"Could not interpret {printable_module_name} identifier: {identifier!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def deserialize_function(
    config: Any, public_functions: dict, printable_module_name: str = "function"
) -> Any:
    """The function a config names, found only through tables, never by importing.

    In safe mode (the default) the name is looked up in the custom-object
    scope, `custom_objects` and the `register_keras_serializable` registry (by
    its registered name, then its plain name), then, for a function of
    distkeras (or Keras) itself, in `public_functions`. Whatever module the
    file names is never imported. With safe mode off (trusted files only), a
    function not found in the tables is imported from the module the file
    names, as Keras does.

    Args:
        config: `{"class_name": "function", "config": name, "module": ...,
            "registered_name": ...}` or a plain name.
        public_functions: The distkeras functions a file may name ({name: fn}).
        printable_module_name: What to call it in errors.

    Raises:
        ValueError: for a malformed config or a function found in no table.
    """
    if isinstance(config, str):
        config = {"class_name": "function", "config": config}
    if not isinstance(config, dict) or config.get("class_name") != "function":
        raise ValueError(
            f"Could not interpret {printable_module_name} config. Received: config={_short(config)}"
        )
    name, module = config.get("config"), config.get("module")
    registered = config.get("registered_name")
    if not isinstance(name, str) or not isinstance(module, (str, type(None))):
        raise ValueError(
            f"Could not interpret {printable_module_name} config. Received: config={_short(config)}"
        )
    for key in (registered, name):
        if isinstance(key, str) and key != "function":
            obj = get_registered_object(key)
            if obj is not None:
                return obj
    ours = module is None or module.split(".")[0] in ("distkeras", "keras")
    if ours and name in public_functions:
        return public_functions[name]
    if not in_safe_mode() and module:
        import importlib  # noqa: PLC0415 - only for trusted files (safe_mode=False)

        return getattr(importlib.import_module(module), name)
    raise ValueError(
        f"Refusing to load {printable_module_name} {name!r} of module {module!r}: in safe mode "
        "a file may only name functions registered with @register_keras_serializable, passed "
        "in `custom_objects`, or public functions of distkeras; the module a file names is "
        "never imported. Register the function or pass it in custom_objects, or, for a file "
        f"you trust, pass safe_mode=False. Received: config={_short(config)}"
    )
