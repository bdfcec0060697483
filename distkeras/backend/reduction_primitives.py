"""Differentiable reductions: sum, mean, max, min, cumsum.

Same conventions as `primitives.py` (which re-exports these). `_norm_axis`
and `_expand_reduced` (a reduced gradient broadcast back over the reduced
axes) serve the reductions here and `logsumexp` there.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply


def _xp():
    return current_module()


def _axis_arg(axis):
    if isinstance(axis, list):
        return tuple(axis)
    return axis


def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim if ndim else 0 for a in axis)


def _expand_reduced(g, shape, axes, keepdims):
    if not keepdims:
        g = g.reshape(tuple(1 if i in axes else s for i, s in enumerate(shape)))
    return g


def int_sum_dtype(x: Any) -> Any:
    """Keras's dtype for a sum or product of `x` (None: NumPy's own, for floats).

    Keras (following JAX) sums bool and integers up to 32 bits in int32, unsigned
    ones in uint32; NumPy widens them all to 64 bits.
    """
    kind = x.dtype.kind
    if kind == "f" or kind == "c":
        return None
    if kind == "b" or (kind == "i" and x.dtype.itemsize <= 4):
        return "int32"
    if kind == "u" and x.dtype.itemsize <= 4:
        return "uint32"
    return None


def _sum(x, axis=None, keepdims=False):
    if x.dtype.kind == "f":
        out = x.sum(axis=axis, keepdims=keepdims)
    else:
        out = x.sum(axis=axis, keepdims=keepdims, dtype=int_sum_dtype(x))
    shape = x.shape

    def vjp(g, needs):
        axes = _norm_axis(axis, len(shape))
        g = _expand_reduced(g, shape, axes, keepdims)
        return (_xp().broadcast_to(g, shape),)

    return out, vjp


def _mean(x, axis=None, keepdims=False):
    out = x.mean(axis=axis, keepdims=keepdims)
    shape = x.shape

    def vjp(g, needs):
        axes = _norm_axis(axis, len(shape))
        n = 1
        for a in axes:
            n *= shape[a]
        g = _expand_reduced(g, shape, axes, keepdims) / (n if n > 0 else 1)
        return (_xp().broadcast_to(g, shape).astype(x.dtype, copy=False),)

    return out, vjp


def _extremum(kind):
    def prim(x, axis=None, keepdims=False):
        out = getattr(x, kind)(axis=axis, keepdims=keepdims)

        def vjp(g, needs):
            axes = _norm_axis(axis, x.ndim)
            o = _expand_reduced(out, x.shape, axes, keepdims)
            gg = _expand_reduced(g, x.shape, axes, keepdims)
            mask = x == o
            # Ties share the gradient equally, as TensorFlow does.
            count = mask.sum(axis=axes, keepdims=True)
            # (in x's dtype: the integer count would promote a float32 gradient to float64)
            return ((gg * mask / count).astype(x.dtype, copy=False),)

        return out, vjp

    return prim


_max = _extremum("max")
_min = _extremum("min")


def _cumsum(x, axis=None):
    xp = _xp()
    flat = axis is None
    # Keras keeps the input's dtype (bool: int32); NumPy widens integers to 64 bits.
    dtype = None if x.dtype.kind == "f" else ("int32" if x.dtype.kind == "b" else x.dtype)
    out = xp.cumsum(x.reshape(-1) if flat else x, axis=0 if flat else axis, dtype=dtype)

    def vjp(g, needs):
        ax = 0 if flat else axis
        r = xp.flip(xp.cumsum(xp.flip(g, ax), axis=ax), ax)
        return (r.reshape(x.shape),)

    return out, vjp


# ---------------------------------------------------------------- public wrappers
def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Sum over `axis` (all axes when None)."""
    return apply(_sum, x, axis=_axis_arg(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False) -> Tensor:
    """Mean over `axis` (all axes when None)."""
    return apply(_mean, x, axis=_axis_arg(axis), keepdims=keepdims)


def max(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Maximum over `axis`; tied maxima share the gradient."""
    return apply(_max, x, axis=_axis_arg(axis), keepdims=keepdims)


def min(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Minimum over `axis`; tied minima share the gradient."""
    return apply(_min, x, axis=_axis_arg(axis), keepdims=keepdims)


def cumsum(x, axis=None) -> Tensor:
    """Cumulative sum along `axis` (over the flattened array when None)."""
    return apply(_cumsum, x, axis=axis)
