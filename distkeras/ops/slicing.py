"""The slicing and scatter functions of `keras.ops.core`: `get_item`, `unstack`,
`slice`, `slice_update`, `scatter` and `scatter_update` (graph ops, differentiable
in their tensor inputs; none writes into its input).
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from distkeras.backend import current_module, to_numpy
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor

__all__ = ["get_item", "scatter", "scatter_update", "slice", "slice_update", "unstack"]

_REDUCTIONS = (None, "add", "max", "min", "mul")


def _int_list(v: Any, name: str) -> list[int]:
    arr = np.asarray(to_numpy(v) if isinstance(v, Tensor) else v)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be a 1-D sequence of integers. Received: {name}={v!r}")
    return [int(i) for i in arr]


# ---------------------------------------------------------------- slicing and scatter
def get_item(x: Any, key: Any) -> Tensor:
    """Returns `x[key]` (NumPy indexing; the gradient scatters back)."""
    return P.getitem(convert_to_tensor(x), key)


def unstack(x: Any, num: int | None = None, axis: int = 0) -> list[Tensor]:
    """Splits `x` along `axis` into a list of tensors with that axis removed."""
    x = convert_to_tensor(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"`axis` is out of range for a tensor of rank {x.ndim}. Received: axis={axis}"
        )
    ax = axis % x.ndim
    if num is not None and int(num) != x.shape[ax]:
        raise ValueError(
            f"`num` must equal the length of axis {axis}, {x.shape[ax]}. Received: num={num}"
        )
    pre = (builtins.slice(None),) * ax
    return [P.getitem(x, (*pre, i)) for i in range(x.shape[ax])]


def _region(shape: tuple, start: list[int], size: list[int], names: str) -> tuple:
    """The basic-index key of a box of `size` at `start` inside `shape`, checked."""
    if len(start) != len(shape) or len(size) != len(shape):
        raise ValueError(
            f"{names} must each have one entry per axis of `inputs` (rank {len(shape)}). "
            f"Received: start_indices={start}, shape/updates shape={size}"
        )
    key = []
    for d, s, n in zip(shape, start, size):
        n = d - s if n == -1 else n
        if s < 0 or n < 0 or s + n > d:
            raise ValueError(
                f"A slice of size {size} at start_indices={start} does not fit in "
                f"`inputs` of shape {shape}."
            )
        key.append(builtins.slice(s, s + n))
    return tuple(key)


def slice(inputs: Any, start_indices: Any, shape: Any) -> Tensor:
    """Returns the box `inputs[start : start + shape]` (a size of -1 runs to the end)."""
    x = convert_to_tensor(inputs)
    start = _int_list(start_indices, "start_indices")
    size = _int_list(shape, "shape")
    return P.getitem(x, _region(x.shape, start, size, "`start_indices` and `shape`"))


def _slice_update(x, u, key):
    out = x.copy()
    out[key] = u

    def vjp(g, needs):
        gx = gu = None
        if needs[0]:
            gx = g.copy()
            gx[key] = 0
        if needs[1]:
            gu = g[key].astype(u.dtype) if u.dtype.kind == "f" else g[key]
        return gx, gu

    return out, vjp


def slice_update(inputs: Any, start_indices: Any, updates: Any) -> Tensor:
    """Returns `inputs` with the box at `start_indices` replaced by `updates`."""
    x = convert_to_tensor(inputs)
    u = convert_to_tensor(updates)
    start = _int_list(start_indices, "start_indices")
    if u.ndim != x.ndim:
        raise ValueError(
            f"`updates` must have the rank of `inputs`, {x.ndim}. "
            f"Received: updates of shape {u.shape}"
        )
    key = _region(x.shape, start, list(u.shape), "`start_indices` and `updates`")
    return apply(_slice_update, x, u, key)


def _leave_one_out_prod(vals, flat):
    """For each row k, the product of the rows j != k with `flat[j] == flat[k]` (no division)."""
    xp = current_module()
    out = xp.ones_like(vals)
    _, inverse, counts = np.unique(to_numpy(flat), return_inverse=True, return_counts=True)
    for group in np.nonzero(counts > 1)[0]:
        rows = np.nonzero(inverse == group)[0]
        for k in rows:
            for j in rows:
                if j != k:
                    out[k] = out[k] * vals[j]
    return out


def _scatter_update(x, u, idx, reduction):
    xp = current_module()
    n = idx[0].shape[0]
    uf = xp.broadcast_to(u, (n,) + x.shape[len(idx) :]).astype(x.dtype)
    out = x.copy()
    if reduction is None:
        out[idx] = uf
    else:
        {"add": xp.add, "max": xp.maximum, "min": xp.minimum, "mul": xp.multiply}[reduction].at(
            out, idx, uf
        )

    def vjp(g, needs):
        gx = gu = None
        rows = g[idx]
        if reduction is None:
            if needs[0]:
                gx = g.copy()
                gx[idx] = 0
            if needs[1]:  # only the update that was written last (the one kept) gets a gradient
                owner = xp.full(x.shape[: len(idx)], -1)
                owner[idx] = xp.arange(n)
                won = (owner[idx] == xp.arange(n)).reshape((n,) + (1,) * (rows.ndim - 1))
                gu = rows * won
        elif reduction == "add":
            gx, gu = g, rows
        elif reduction == "mul":
            prod = xp.ones_like(x)
            xp.multiply.at(prod, idx, uf)
            gx = g * prod
            flat = xp.ravel_multi_index(idx, x.shape[: len(idx)])
            gu = rows * x[idx] * _leave_one_out_prod(uf, flat)
        else:  # max / min: ties share the gradient equally
            hit_x = x == out
            hit_u = uf == out[idx]
            count = hit_x.astype(g.dtype)
            xp.add.at(count, idx, hit_u.astype(g.dtype))
            gx = g * hit_x / count
            gu = rows * hit_u / count[idx]
        if gu is not None:
            gu = P.sum_to(gu, u.shape)
        return (gx if needs[0] else None), (gu if needs[1] else None)

    return out, vjp


def _index_tuple(indices: Any, x_shape: tuple) -> tuple:
    idx = np.asarray(to_numpy(indices) if isinstance(indices, Tensor) else indices)
    if idx.ndim == 1:
        idx = idx[None]
    if idx.ndim != 2 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(
            "`indices` must be integers of shape (num_updates, k). "
            f"Received: indices of shape {idx.shape} and dtype {idx.dtype}"
        )
    idx, dims = idx.astype(np.int64), np.array(x_shape[: idx.shape[1]])
    if idx.shape[1] > len(x_shape) or ((idx < -dims) | (idx >= dims)).any():
        raise ValueError(
            f"`indices` must index into the leading axes of shape {x_shape}. "
            f"Received: indices={idx.tolist()}"
        )
    return tuple(current_module().asarray(col) for col in (idx % dims).T)


def scatter_update(inputs: Any, indices: Any, updates: Any, reduction: str | None = None) -> Tensor:
    """Returns `inputs` with `updates` written (or reduced) at rows `indices` of shape (N, k)."""
    red = reduction.lower() if isinstance(reduction, str) else reduction
    if red not in _REDUCTIONS:
        raise ValueError(
            f"Invalid reduction. Supported values are: None, 'add', 'max', 'min', 'mul'. "
            f"Received: reduction={reduction!r}"
        )
    x = convert_to_tensor(inputs)
    u = convert_to_tensor(updates)
    idx = _index_tuple(indices, x.shape)
    want = (idx[0].shape[0],) + x.shape[len(idx) :]
    try:
        np.broadcast_shapes(u.shape, want)
    except ValueError:
        raise ValueError(
            f"`updates` must have shape {want} (num_updates, *inputs.shape[k:]). "
            f"Received: updates of shape {u.shape}"
        ) from None
    return apply(_scatter_update, x, u, idx, red)


def scatter(indices: Any, values: Any, shape: Any) -> Tensor:
    """Returns zeros of `shape` with `values` added at `indices` (duplicates sum)."""
    v = convert_to_tensor(values)
    shape = tuple(_int_list(list(shape), "shape"))
    idx = np.asarray(to_numpy(indices) if isinstance(indices, Tensor) else indices)
    if idx.ndim < 1 or idx.shape[-1] > len(shape):
        raise ValueError(
            f"The last axis of `indices` must index into `shape`={shape}. "
            f"Received: indices of shape {idx.shape}"
        )
    k = idx.shape[-1]
    idx = idx.reshape(-1, k)
    v = P.reshape(v, (-1, *shape[k:]))
    zeros = Tensor(current_module().zeros(shape, dtype=v.data.dtype))
    return scatter_update(zeros, idx, v, reduction="add")
