"""Automatic object names, as Keras 3 gives them: `conv2d`, `dense`, `dense_1`, ...

One counter per base name, shared by every kind of object (layers, models,
metrics, losses, optimizers), as Keras keeps it in its global state:
the first object asking for `dense` gets `dense`, the next `dense_1`, and
`clear_session()` starts every count again. The module imports nothing from
distkeras so that any floor can use it.
"""

from __future__ import annotations

import gc
import re
import threading
from typing import Any

_STATE = threading.local()


def _uids() -> dict[str, int]:
    uids = getattr(_STATE, "uids", None)
    if uids is None:
        uids = _STATE.uids = {}
    return uids


def to_snake_case(name: str) -> str:
    """Keras 3's snake case of a class name.

    A capital starts a new word only when lowercase letters follow it or a
    lowercase letter precedes it, so digits stay glued to their word:
    'Conv2DTranspose' -> 'conv2d_transpose', 'MaxPooling2D' -> 'max_pooling2d',
    'LSTM' -> 'lstm', 'MeanIoU' -> 'mean_io_u', 'PReLU' -> 'p_re_lu'.

    Args:
        name: A class (or any) name.

    Returns:
        The snake-case name, with non-word characters removed.
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def uniquify(name: str) -> str:
    """Returns `name` the first time, then `name_1`, `name_2`, ... (per name).

    Args:
        name: The base name.

    Returns:
        The name unique in this session.
    """
    uids = _uids()
    n = uids.get(name, 0)
    uids[name] = n + 1
    return name if n == 0 else f"{name}_{n}"


def auto_name(prefix: str) -> str:
    """The automatic name of an object whose class (or kind) is `prefix`.

    Args:
        prefix: A class name ('Conv2D') or a snake-case kind ('functional').

    Returns:
        `uniquify(to_snake_case(prefix))`: 'conv2d', then 'conv2d_1', ...
    """
    return uniquify(to_snake_case(prefix))


def get_uid(prefix: str = "") -> int:
    """Increments and returns the counter of `prefix` (1 on the first call).

    Args:
        prefix: The name whose counter to advance (shared with automatic names).

    Returns:
        The new count.
    """
    uids = _uids()
    uids[prefix] = uids.get(prefix, 0) + 1
    return uids[prefix]


def reset_uids() -> None:
    """Starts every automatic-name counter again from zero."""
    _STATE.uids = {}


def clear_session(free_memory: bool = True) -> None:
    """Resets the state Keras keeps per session: the automatic-name counters.

    After it the next `Dense` is named `dense` again.

    Args:
        free_memory: Whether to run Python's garbage collector too.
    """
    reset_uids()
    if free_memory:
        gc.collect()


def get_object_name(obj: Any) -> str:
    """The name of `obj`: its `name`, else its snake-cased function or class name.

    Args:
        obj: A named object, a function or any instance.

    Returns:
        A string name.
    """
    if hasattr(obj, "name"):
        return obj.name
    if hasattr(obj, "__name__"):
        return to_snake_case(obj.__name__)
    return to_snake_case(type(obj).__name__)
