"""Size limits checked before anything a file describes is allocated.

A model file or JSON config is a few kilobytes, but the layers it names may
ask for gigabytes (`Dense(units=200_000_000)`). While a model is rebuilt from
a file, `load_model` and `model_from_json` open an `allocation_budget`: every
weight the layers create (`Layer.add_weight`) and every shape they trace
(`compute_output_shape`) is first checked here, and the load is refused with
`FileFormatError` as soon as the weights would exceed what the file holds (or,
for a JSON config alone, `max_params` elements). Nothing is reserved until the
check passes, so a refused file costs no more memory than the file itself.

Shapes are multiplied as Python integers, so no product can overflow.
"""

from __future__ import annotations

import contextlib
import math
import operator
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from distkeras.saving.file_format import FileFormatError

# Elements a JSON config alone may ask for: 1 GiB of float32 (268M weights, above
# every common model); pass `max_params` to `model_from_json` for a bigger one.
# `load_model` does not use it: there the limit is what the file holds.
DEFAULT_MAX_PARAMS = 2**28
# A layer without `compute_output_shape` is traced on zeros of one sample: bound that too.
MAX_TRACE_ELEMENTS = 2**26

_BUDGET = threading.local()


class _Budget:
    def __init__(self, elements: int, source: str, reason: str):
        self.left = int(elements)
        self.limit = int(elements)
        self.source = source
        self.reason = reason


@contextlib.contextmanager
def allocation_budget(max_elements: int, source: str, reason: str) -> Iterator[None]:
    """Refuses, inside the block, weights totalling more than `max_elements` elements.

    Args:
        max_elements: How many weight elements the rebuilt model may hold in all.
        source: The file (or 'the JSON config') named in the error.
        reason: Why this is the limit (ends the error message).
    """
    prev = getattr(_BUDGET, "current", None)
    _BUDGET.current = _Budget(max_elements, source, reason)
    try:
        yield
    finally:
        _BUDGET.current = prev


def _refuse(budget: _Budget, problem: str) -> FileFormatError:
    return FileFormatError(f"{budget.source} cannot be loaded: {problem}")


def check_weight(shape: Sequence[int], what: str) -> None:
    """Charges a new weight of `shape` to the open budget (no-op outside a load)."""
    budget = getattr(_BUDGET, "current", None)
    if budget is None:
        return
    size = math.prod(int(s) for s in shape)
    if size > budget.left:
        used = budget.limit - budget.left
        raise _refuse(
            budget,
            f"weight {what!r} of shape {tuple(shape)} ({size:,} elements) would bring the "
            f"model to {used + size:,} elements, above {budget.limit:,}. {budget.reason}",
        )
    budget.left -= size


def check_trace(shape: Sequence[Any], what: str) -> None:
    """Refuses tracing a layer on zeros above MAX_TRACE_ELEMENTS (no-op outside a load)."""
    budget = getattr(_BUDGET, "current", None)
    if budget is None:
        return
    try:
        size = math.prod(1 if d is None else operator.index(d) for d in shape)
    except TypeError:  # not a flat shape: the layer's own code deals with it
        return
    if size > MAX_TRACE_ELEMENTS:
        raise _refuse(
            budget,
            f"layer {what!r} would be traced on an input of shape {tuple(shape)} "
            f"({size:,} elements, above {MAX_TRACE_ELEMENTS:,}).",
        )


MAX_CONFIG_DEPTH = 100  # a model config nests a dict per layer level; real ones stay far below


def check_nesting(obj: Any, what: str, max_depth: int = MAX_CONFIG_DEPTH) -> None:
    """Refuses plain data nested deeper than `max_depth` (walked without recursion).

    Raises:
        ValueError: naming `what` and the limit.
    """
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"{what} is nested more than {max_depth} levels deep.")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
