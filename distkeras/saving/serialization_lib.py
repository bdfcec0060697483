"""Keras 3's object config layout: `module`, `class_name`, `config`, `registered_name`."""

from __future__ import annotations

import inspect
from typing import Any

from distkeras.saving.object_registration import (
    GLOBAL_CUSTOM_NAMES,
    get_registered_name,
    get_registered_object,
)

_BUILTIN_MODULE_PREFIX = "distkeras."


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
            "module": obj.__module__,
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
            "registered_name": get_registered_name(cls),
        }
        if hasattr(obj, "get_build_config"):
            bc = obj.get_build_config()
            if bc is not None:
                out["build_config"] = bc
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


def deserialize_keras_object(
    config: Any,
    module_objects: dict | None = None,
    custom_objects: dict | None = None,
    printable_module_name: str = "object",
) -> Any:
    """Rebuilds an object from `serialize_keras_object` output or a string name.

    Raises:
        ValueError: for an unknown name, naming the module and the received value.
    """
    if config is None:
        return None
    if isinstance(config, str):
        obj = get_registered_object(config, custom_objects, module_objects)
        if obj is None:
            raise ValueError(
                f"Could not interpret {printable_module_name} identifier: {config!r}. "
                f"Received: identifier={config!r}"
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
        )
    if hasattr(cls, "from_config"):
        obj = cls.from_config(inner or {})
    else:
        obj = cls(**(inner or {}))
    bc = config.get("build_config")
    if bc is not None and hasattr(obj, "build_from_config"):
        obj.build_from_config(bc)
    return obj
