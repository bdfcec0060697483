"""Differentiable shape primitives: reshape, transpose, broadcast, concatenate, indexing, pad.

Same conventions as `primitives.py` (which re-exports these): the private
`_name(*arrays)` functions compute `(output, vjp)` on raw arrays, and each
public wrapper records it with `apply`. `sum_to` reduces a broadcast gradient
back to an input's shape, for every broadcasting primitive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply


def _xp():
    return current_module()


def sum_to(g: Any, shape: tuple) -> Any:
    """Sums `g` over the axes that broadcasting added or stretched to reach `shape`."""
    gshape = g.shape
    if gshape == shape:
        return g
    ndiff = len(gshape) - len(shape)
    axes = tuple(range(ndiff)) + tuple(
        i + ndiff for i, s in enumerate(shape) if s == 1 and gshape[i + ndiff] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if ndiff:
        g = g.reshape(shape)
    return g


def _reshape(x, shape):
    out = x.reshape(shape)

    def vjp(g, needs):
        return (g.reshape(x.shape),)

    return out, vjp


def _transpose(x, axes=None):
    out = x.transpose(axes) if axes is not None else x.T

    def vjp(g, needs):
        if axes is None:
            return (g.T,)
        return (g.transpose(np.argsort(axes)),)

    return out, vjp


def _broadcast_to(x, shape):
    out = _xp().broadcast_to(x, shape)

    def vjp(g, needs):
        return (sum_to(g, x.shape),)

    return out, vjp


def _concatenate(*xs, axis=0):
    out = _xp().concatenate(xs, axis=axis)
    sizes = [x.shape[axis] for x in xs]

    def vjp(g, needs):
        res = []
        start = 0
        ax = axis % g.ndim
        for s, need in zip(sizes, needs):
            if need:
                idx = [slice(None)] * g.ndim
                idx[ax] = slice(start, start + s)
                res.append(g[tuple(idx)])
            else:
                res.append(None)
            start += s
        return tuple(res)

    return out, vjp


def _stack(*xs, axis=0):
    out = _xp().stack(xs, axis=axis)

    def vjp(g, needs):
        return tuple(_xp().take(g, i, axis=axis) if need else None for i, need in enumerate(needs))

    return out, vjp


_concatenate.tensor_inputs = _stack.tensor_inputs = True  # every input is data (see `apply`)


def _getitem(x, key):
    out = x[key]

    def vjp(g, needs):
        xp = _xp()
        res = xp.zeros(x.shape, dtype=g.dtype)
        if _is_basic_index(key):
            res[key] = g
        else:
            xp.add.at(res, key, g)
        return (res,)

    return out, vjp


def _is_basic_index(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in keys)


def _take(x, indices, axis=None):
    xp = _xp()
    out = xp.take(x, indices, axis=axis)

    def vjp(g, needs):
        if axis is None:
            res = xp.zeros(x.size, dtype=g.dtype)
            xp.add.at(res, indices.reshape(-1), g.reshape(-1))
            return (res.reshape(x.shape),)
        ax = axis % x.ndim
        # Move the taken axis to the front and scatter-add rows.
        gm = xp.moveaxis(g, list(range(ax, ax + indices.ndim)), list(range(indices.ndim)))
        gm = gm.reshape((indices.size,) + gm.shape[indices.ndim :])
        res = xp.zeros((x.shape[ax],) + x.shape[:ax] + x.shape[ax + 1 :], dtype=g.dtype)
        xp.add.at(res, indices.reshape(-1), gm)
        return (xp.moveaxis(res, 0, ax),)

    return out, vjp


def _take_along_axis(x, indices, axis):
    xp = _xp()
    out = xp.take_along_axis(x, indices, axis=axis)

    def vjp(g, needs):
        res = xp.zeros(x.shape, dtype=g.dtype)
        if hasattr(xp, "put_along_axis") and indices.shape == g.shape:
            idx = list(xp.ix_(*[xp.arange(s) for s in indices.shape]))
            idx[axis % x.ndim] = indices
            xp.add.at(res, tuple(idx), g)
        return (res,)

    return out, vjp


def _pad(x, pad_width, constant_values=0):
    out = _xp().pad(x, pad_width, constant_values=constant_values)

    def vjp(g, needs):
        sl = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(pad_width))
        return (g[sl],)

    return out, vjp


def _tile(x, reps):
    out = _xp().tile(x, reps)

    def vjp(g, needs):
        reps_full = (1,) * (g.ndim - len(reps)) + tuple(reps)
        shape_full = (1,) * (g.ndim - x.ndim) + x.shape
        split = []
        for r, s in zip(reps_full, shape_full):
            split += [r, s]
        gg = g.reshape(split).sum(axis=tuple(range(0, 2 * g.ndim, 2)))
        return (gg.reshape(x.shape),)

    return out, vjp


def _repeat(x, repeats, axis):
    xp = _xp()
    out = xp.repeat(x, repeats, axis=axis)

    def vjp(g, needs):
        ax = axis % x.ndim
        shape = x.shape[:ax] + (x.shape[ax], repeats) + x.shape[ax + 1 :]
        return (g.reshape(shape).sum(axis=ax + 1),)

    return out, vjp


# ---------------------------------------------------------------- public wrappers
def reshape(x, shape) -> Tensor:
    """Reshapes to `shape` (one entry may be -1)."""
    return apply(_reshape, x, tuple(shape))


def transpose(x, axes=None) -> Tensor:
    """Permutes axes (reverses them when `axes` is None)."""
    return apply(_transpose, x, axes=None if axes is None else tuple(axes))


def broadcast_to(x, shape) -> Tensor:
    """Broadcasts to `shape`."""
    return apply(_broadcast_to, x, tuple(shape))


def concatenate(xs, axis=0) -> Tensor:
    """Joins tensors along an existing axis."""
    return apply(_concatenate, *xs, axis=axis)


def stack(xs, axis=0) -> Tensor:
    """Joins tensors along a new axis."""
    return apply(_stack, *xs, axis=axis)


def getitem(x, key) -> Tensor:
    """NumPy indexing (basic and advanced); the gradient scatters back."""
    if isinstance(key, Tensor):
        key = key.data
    elif isinstance(key, tuple):
        key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
    return apply(_getitem, x, key)


def take(x, indices, axis=None) -> Tensor:
    """Gathers entries at `indices` along `axis`."""
    idx = indices.data if isinstance(indices, Tensor) else current_module().asarray(indices)
    return apply(_take, x, idx, axis=axis)


def take_along_axis(x, indices, axis) -> Tensor:
    """Gathers with an index array shaped like `x`, along `axis`."""
    idx = indices.data if isinstance(indices, Tensor) else current_module().asarray(indices)
    return apply(_take_along_axis, x, idx, axis=axis)


def pad(x, pad_width, constant_values=0) -> Tensor:
    """Pads with a constant; `pad_width` is ((before, after), ...) per axis."""
    pw = tuple(tuple(int(v) for v in p) for p in pad_width)
    return apply(_pad, x, pw, constant_values=constant_values)


def tile(x, reps) -> Tensor:
    """Repeats the whole tensor `reps` times along each axis."""
    return apply(_tile, x, tuple(reps) if not isinstance(reps, int) else (reps,))


def repeat(x, repeats: int, axis: int) -> Tensor:
    """Repeats each element `repeats` times along `axis`."""
    return apply(_repeat, x, int(repeats), axis=axis)
