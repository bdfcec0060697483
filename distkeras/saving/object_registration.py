"""The registry of serializable objects (`register_keras_serializable`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
GLOBAL_CUSTOM_NAMES: dict[Any, str] = {}
_SCOPE = threading.local()


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable:
    """Registers a class or function under `'package>name'` for deserialization.

    Args:
        package: Package prefix of the registered name.
        name: Name within the package (the object's `__name__` when omitted).
    """

    def decorator(obj: Any) -> Any:
        reg_name = f"{package}>{name or obj.__name__}"
        if isinstance(obj, type) and not hasattr(obj, "get_config"):
            raise ValueError(
                f"Cannot register a class that does not define get_config(). Received: obj={obj!r}"
            )
        GLOBAL_CUSTOM_OBJECTS[reg_name] = obj
        GLOBAL_CUSTOM_NAMES[obj] = reg_name
        return obj

    return decorator


def get_registered_name(obj: Any) -> str:
    """The registered name of `obj`, or its plain `__name__` when unregistered."""
    if obj in GLOBAL_CUSTOM_NAMES:
        return GLOBAL_CUSTOM_NAMES[obj]
    return getattr(obj, "__name__", type(obj).__name__)


def get_registered_object(
    name: str, custom_objects: dict | None = None, module_objects: dict | None = None
) -> Any:
    """Looks `name` up in the scope, `custom_objects`, the registry, then `module_objects`."""
    for table in (getattr(_SCOPE, "stack", None) or [])[::-1]:
        if name in table:
            return table[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in GLOBAL_CUSTOM_OBJECTS:
        return GLOBAL_CUSTOM_OBJECTS[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


@contextlib.contextmanager
def custom_object_scope(custom_objects: dict | None = None) -> Iterator[None]:
    """Makes `custom_objects` visible to deserialization inside the `with` block.

    Args:
        custom_objects: Names mapped to classes or functions (None: an empty scope).
    """
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(
            "`custom_objects` must be a dict mapping names to classes or functions. "
            f"Received: custom_objects={custom_objects!r}"
        )
    stack = getattr(_SCOPE, "stack", None)
    if stack is None:
        stack = _SCOPE.stack = []
    stack.append(dict(custom_objects or {}))
    try:
        yield
    finally:
        stack.pop()


CustomObjectScope = custom_object_scope


def get_custom_objects() -> dict:
    """The global registry dict (mutable, as in Keras)."""
    return GLOBAL_CUSTOM_OBJECTS
