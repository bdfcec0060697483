"""Label and array helpers: `to_categorical`, `normalize` (as `keras.utils`)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Converts a class vector (integers) to a one-hot class matrix.

    Args:
        x: Array-like of integer class labels in `[0, num_classes)`. A trailing
            dimension of size 1 is dropped, so `(n, 1)` labels give `(n, C)`.
        num_classes: Total number of classes. If `None`, inferred as `max(x) + 1`.

    Returns:
        A float64 NumPy array (as Keras 3 returns) of shape `x.shape + (num_classes,)`.

    Raises:
        ValueError: if a label is negative or not below `num_classes`.

    Example:

    >>> to_categorical([0, 1, 2, 3], num_classes=4)
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 1.]])
    """
    from distkeras.backend import is_tensor, to_numpy  # noqa: PLC0415

    arr = np.asarray(to_numpy(x) if is_tensor(x) else x)
    if arr.dtype.kind == "f" and arr.size and not np.all(np.mod(arr, 1) == 0):
        raise ValueError(f"to_categorical expects integer class labels. Received: x={arr!r}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"to_categorical expects integer class labels. Received: x={arr!r}")
    labels = arr.astype("int64")
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    labels = labels.reshape(-1)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(
            f"num_classes must be a positive integer or None. Received: num_classes={num_classes}"
        )
    num_classes = int(num_classes)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(
            f"to_categorical: every label must be in [0, num_classes={num_classes}). "
            f"Received: label={int(bad[0])}"
        )
    out = np.zeros((labels.size, num_classes))
    out[np.arange(labels.size), labels] = 1.0
    return out.reshape(shape + (num_classes,))


def normalize(x: Any, axis: int = -1, order: int = 2) -> Any:
    """Normalizes an array to unit `order`-norm along `axis`.

    NumPy input gives NumPy output (`x / norm`, with zero norms replaced by 1);
    a distkeras Tensor gives a Tensor, computed with `distkeras.ops` so that
    gradients flow (the norm is floored at `backend.epsilon()`).

    Args:
        x: Array to normalize.
        axis: Axis along which to normalize.
        order: Normalization order (e.g. 2 for the L2 norm, 1 for L1).

    Returns:
        A normalized copy of `x`.
    """
    from distkeras.backend import epsilon, is_tensor  # noqa: PLC0415

    if is_tensor(x):
        from distkeras import ops  # noqa: PLC0415

        norm = ops.norm(x, ord=order, axis=axis, keepdims=True)
        return ops.divide(x, ops.maximum(norm, epsilon()))
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    axis = -1 if axis is None else axis
    return x / np.expand_dims(norm, axis)
