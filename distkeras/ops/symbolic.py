"""Symbolic dispatch for the public `distkeras.ops` functions.

Keras builds Functional models by calling ops on symbolic `KerasTensor`s. The
symbolic tensor lives two floors up (in `layers/`), so this module cannot
import it: `layers/keras_tensor.py` registers its class and a handler here
when it is imported. Until then no symbolic tensor can exist, and every op
runs its eager function after one failed membership test.

Each public op is wrapped once, when `distkeras.ops` is imported. The wrapper
looks at the positional and keyword arguments and one level inside lists and
tuples (enough for `concatenate([a, b])`); when it finds a symbolic tensor it
hands the call to the handler, which records a graph node instead of
computing. `get_op(name)` returns the eager function behind a public name, so
a saved graph names its ops by these names and nothing is ever imported by a
module path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_TYPES: tuple = ()
_HANDLER: list[Callable | None] = [None]
_OPS: dict[str, Callable] = {}
_LOOK_INSIDE: set[type] = {list, tuple}

# Public names of `distkeras.ops` that are not tensor operations: they answer
# questions about a tensor (and accept a symbolic one by duck typing), create
# tensors from Python values, or are helpers re-exported by star imports.
_NOT_OPS = frozenset(
    {
        "Any",
        "Tensor",
        "annotations",
        "arange",
        "conv_pads",
        "conv_transpose_geometry",
        "convert_to_numpy",
        "current_module",
        "dtype_of",
        "epsilon",
        "eye",
        "floatx",
        "full",
        "is_tensor",
        "ndim",
        "ones",
        "shape",
        "size",
        "standardize_data_format",
        "standardize_dtype",
        "standardize_padding",
        "standardize_tuple",
        "zeros",
    }
)


def not_an_op(fn: Callable) -> Callable:
    """Marks a public function of an ops module as not a tensor op (e.g. it creates a
    tensor from Python values): it is left unwrapped and takes no symbolic input."""
    fn._not_an_op = True
    return fn


def register_symbolic_type(cls: type, handler: Callable[[str, tuple, dict], Any]) -> None:
    """Makes every public op hand calls that involve a `cls` instance to `handler`.

    Args:
        cls: The symbolic tensor class.
        handler: `handler(op_name, args, kwargs)`, returning the symbolic result.
    """
    global _TYPES
    if cls not in _TYPES:
        _TYPES = (*_TYPES, cls)
    _LOOK_INSIDE.add(cls)
    _HANDLER[0] = handler


def any_symbolic(args: tuple, kwargs: dict) -> bool:
    """True when an argument (or an item of a list/tuple argument) is symbolic."""
    types = _TYPES
    if not types:
        return False
    for a in args:
        if isinstance(a, types):
            return True
        if type(a) in (list, tuple):
            for b in a:
                if isinstance(b, types):
                    return True
    for a in kwargs.values():
        if isinstance(a, types):
            return True
        if type(a) in (list, tuple):
            for b in a:
                if isinstance(b, types):
                    return True
    return False


def dispatching(name: str, fn: Callable) -> Callable:
    """Wraps the eager op `fn` so that symbolic arguments record a node named `name`."""
    _OPS[name] = fn

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        # Inlined, since this wrapper sits on every op call: one set lookup per
        # argument unless it is a symbolic tensor, a list or a tuple.
        if _TYPES:
            for a in args:
                if type(a) in _LOOK_INSIDE and any_symbolic((a,), {}):
                    return _HANDLER[0](name, args, kwargs)
            if kwargs and any_symbolic((), kwargs):
                return _HANDLER[0](name, args, kwargs)
        return fn(*args, **kwargs)

    op.__wrapped_op__ = fn
    return op


def wrap_namespace(namespace: dict) -> None:
    """Replaces every public function of an ops namespace by its dispatching wrapper."""
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in _NOT_OPS or isinstance(value, type):
            continue
        if getattr(value, "_not_an_op", False):
            continue
        if not callable(value) or getattr(value, "__wrapped_op__", None) is not None:
            continue
        if type(value).__name__ == "module":
            continue
        op = dispatching(name, value)
        # The wrapper is what `distkeras.ops.<name>` holds, so it reports that module:
        # code that finds functions by (module, name), as Lambda's config does, gets it back.
        op.__module__ = namespace.get("__name__", op.__module__)
        namespace[name] = op


def get_op(name: str) -> Callable:
    """The eager function of the public op `name`.

    Raises:
        ValueError: when `name` is not a public `distkeras.ops` function.
    """
    import distkeras.ops  # noqa: F401, PLC0415 - fills the table

    fn = _OPS.get(name) if isinstance(name, str) else None
    if fn is None:
        raise ValueError(
            "Unknown op: only public `distkeras.ops` functions can be called on symbolic "
            f"tensors or loaded from a config. Received: function={name!r}"
        )
    return fn


def op_names() -> list[str]:
    """Names of every public op that accepts symbolic tensors."""
    import distkeras.ops  # noqa: F401, PLC0415

    return sorted(_OPS)
