"""Checks on user data at the API boundary, before any work is done.

`fit`, `evaluate`, `predict` and the `*_on_batch` methods call these on what
the user passed, so that a careless input fails at once with the argument's
name instead of training to NaN, "training" on zero samples to loss 0.0, or
failing deep inside NumPy:

- zero samples -> ValueError naming `x` and its shape;
- arrays that are not numbers (strings, Python objects, dates) -> ValueError
  naming `x`, `y` or `sample_weight` and the dtype received. Strings are
  accepted in `x` when the model holds a `TextVectorization` layer, which
  takes raw text;
- NaN or inf in a float array -> ValueError naming the argument and the
  index of the first bad value. One vectorised pass per dataset (a sum, whose
  result is finite exactly when no element is NaN/inf; the element-wise scan
  only runs to locate a bad value or to rule out an overflowing sum). Integer
  and bool arrays cannot hold NaN and are skipped. `check_finite=False` on
  fit/evaluate/predict turns it off, for Keras's silent behaviour.

Generators and PyDatasets are checked batch by batch for the cheap part only
(dtype and emptiness): a finite scan per batch would cost a pass over every
batch of every epoch, so NaN/inf in generated batches are not looked for.

In a data-parallel run every rank checks its own view of the data; an error
on one rank propagates like any other exception (the communicator's hook
aborts every rank and prints that rank's traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from distkeras.backend import get_array_module
from distkeras.layers.preprocessing.hashing import Hashing
from distkeras.layers.preprocessing.lookup import StringLookup
from distkeras.layers.preprocessing.text_vectorization import TextVectorization

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_TEXT_KINDS = "USO"  # str, bytes, Python objects (strings in object arrays)
_TEXT_LAYERS = (TextVectorization, StringLookup, Hashing)  # layers that take raw strings


def named_leaves(data: Any, name: str) -> Iterator[tuple[str, Any]]:
    """Yields (name, array) for every leaf: `x`, `x[0]`, `x['image']`, ..."""
    if data is None:
        return
    if isinstance(data, dict):
        for k, v in data.items():
            yield from named_leaves(v, f"{name}[{k!r}]")
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            yield from named_leaves(v, f"{name}[{i}]")
    else:
        yield name, data


def accepts_strings(model: Any) -> bool:
    """True when the model takes raw text: it holds a TextVectorization, StringLookup or Hashing."""
    flatten = getattr(model, "_flatten_layers", None)
    layers = flatten() if flatten is not None else []
    return any(isinstance(layer, _TEXT_LAYERS) for layer in layers)


def check_dtype(a: Any, name: str, allow_strings: bool = False) -> None:
    """Raises a ValueError naming `name` when `a` does not hold numbers."""
    kind = a.dtype.kind
    if kind in _NUMERIC_KINDS or (allow_strings and kind in _TEXT_KINDS):
        return
    hint = ""
    if kind in _TEXT_KINDS and name.startswith("x"):
        hint = (
            " Text inputs need a model that starts with a TextVectorization or StringLookup layer."
        )
    elif kind == "O":
        hint = f" Convert it first, e.g. np.asarray({name}, dtype='float32')."
    raise ValueError(
        f"Expected numeric data (bool, integer or float) in `{name}`.{hint} "
        f"Received: {name} with dtype {a.dtype}"
    )


def check_not_empty(a: Any, name: str) -> None:
    """Raises a ValueError naming `name` and its shape when it holds zero samples."""
    if a.ndim > 0 and a.shape[0] == 0:
        raise ValueError(
            f"Expected at least one sample in `{name}`, which is empty. "
            f"Received: {name} with shape {tuple(a.shape)}"
        )


def first_nonfinite(a: Any) -> tuple[int, ...] | None:
    """Index of the first NaN/inf of a float array (None when all are finite)."""
    if a.dtype.kind != "f" or a.size == 0:
        return None
    xp = get_array_module(a)
    with np.errstate(over="ignore", invalid="ignore"):
        if bool(xp.isfinite(a.sum())):
            return None
        bad = xp.flatnonzero(~xp.isfinite(a))
    if bad.size == 0:  # the sum overflowed; every element is finite
        return None
    return tuple(int(i) for i in np.unravel_index(int(bad[0]), a.shape))


def check_finite_values(a: Any, name: str) -> None:
    """Raises a ValueError naming `name` and the first index holding NaN or inf."""
    index = first_nonfinite(a)
    if index is None:
        return
    where = f"{name}[{', '.join(str(i) for i in index)}]"
    raise ValueError(
        f"`{name}` contains NaN or inf values, which would make the loss and weights NaN. "
        "Clean or impute them, or pass check_finite=False to fit/evaluate/predict to use "
        f"them anyway. Received: {where}={float(a[index])}"
    )


def check_data(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    check_finite: bool = True,
    allow_strings: bool = False,
    check_empty: bool = True,
) -> None:
    """All the array checks on one dataset (arrays already converted).

    Args:
        x, y, sample_weight: Arrays or structures of arrays.
        check_finite: Look for NaN/inf in float arrays.
        allow_strings: Accept text arrays in `x` (models holding TextVectorization).
        check_empty: Refuse zero samples (off for one rank's slice of a batch,
            which may be empty when a batch has fewer samples than there are ranks).

    Raises:
        ValueError: naming the argument, for empty, non-numeric or non-finite data.
    """
    for arg, data in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        for name, a in named_leaves(data, arg):
            if not (hasattr(a, "dtype") and hasattr(a, "shape")):
                continue  # Python numbers and lists: the model converts them
            check_dtype(a, name, allow_strings and arg == "x")
            if check_empty:
                check_not_empty(a, name)
            if check_finite:
                check_finite_values(a, name)


def check_model_data(model: Any, x: Any, y: Any = None, sample_weight: Any = None) -> None:
    """`check_data` on one batch given to a model (the `*_on_batch` methods)."""
    check_data(x, y, sample_weight, allow_strings=accepts_strings(model))


def check_batch(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    allow_strings: bool = False,
    global_batch_size: int | None = None,
) -> None:
    """The per-batch checks of generator data: dtype and emptiness, no finite scan.

    `global_batch_size` is given when the arrays are already one rank's slice:
    the slice may be empty, the global batch may not.
    """
    if global_batch_size == 0:
        raise ValueError(
            "Expected at least one sample in `x`, which is empty. Received: a batch of 0 samples"
        )
    check_data(
        x,
        y,
        sample_weight,
        check_finite=False,
        allow_strings=allow_strings,
        check_empty=global_batch_size is None,
    )
