"""Array manipulation ops of `keras.ops`, part two: stacks, `append`, splits, diagonals,
`trace`, `meshgrid` and `vander`.

All are compositions of differentiable primitives (concatenate, slices,
broadcasts, `where`, `pad`), so gradients flow where Keras's do. Mixed dtypes
are unified as Keras does: a float with integers or bools takes the float's
dtype; otherwise NumPy's promotion (64-bit inputs keep their width).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.ops.manip import _norm_axis

__all__ = [
    "append",
    "array_split",
    "diag",
    "diagflat",
    "diagonal",
    "dsplit",
    "dstack",
    "hsplit",
    "hstack",
    "meshgrid",
    "trace",
    "vander",
    "vsplit",
    "vstack",
]


# ---------------------------------------------------------------- helpers
def _result_dtype(dtypes: Sequence[Any]) -> str:
    """Keras's rule for mixed operands: a float wins over ints/bools; else NumPy's promotion."""
    dts = [np.dtype(d) for d in dtypes]
    floats = [d for d in dts if d.kind == "f"]
    return np.result_type(*(floats or dts)).name


def _unified(xs: Any, name: str = "xs") -> list[Tensor]:
    """The items of `xs` as Tensors of one dtype."""
    if isinstance(xs, Tensor) or not isinstance(xs, (list, tuple)):
        t = convert_to_tensor(xs)  # a tensor stands for the sequence of its rows
        xs = [t[i] for i in range(t.shape[0])]
    if not xs:
        raise ValueError(f"Need at least one tensor to join. Received: {name}={xs}")
    ts = [convert_to_tensor(x) for x in xs]
    dt = _result_dtype([t.data.dtype for t in ts])
    return [t if t.dtype == dt else P.cast(t, dt) for t in ts]


def _at_least(x: Tensor, n: int) -> Tensor:
    """NumPy's atleast_nd: 0-D -> (1,)*n; (k,) -> (1, k) or (1, k, 1); (a, b) -> (a, b, 1)."""
    if x.ndim >= n:
        return x
    if x.ndim == 0:
        return P.reshape(x, (1,) * n)
    if x.ndim == 1:
        return P.reshape(x, (1, x.shape[0]) if n == 2 else (1, x.shape[0], 1))
    return P.reshape(x, (*x.shape, 1))


def _slice(x: Tensor, lo: int | None, hi: int | None, axis: int) -> Tensor:
    return P.getitem(x, (slice(None),) * axis + (slice(lo, hi),))


def _split(x: Tensor, indices_or_sections: Any, axis: int, name: str) -> list[Tensor]:
    """`numpy.split`: equal sections for an int, else cuts at the given indices."""
    n = x.shape[axis]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        ios = ios.data.tolist()
    if isinstance(ios, (int, np.integer)):
        ios = int(ios)
        if ios <= 0 or n % ios:
            raise ValueError(
                f"{name}: axis {axis} of size {n} does not divide into {ios} equal sections. "
                f"Received: indices_or_sections={indices_or_sections}"
            )
        bounds = list(range(0, n + 1, n // ios)) if n else [0] * (ios + 1)
    else:
        bounds = [0, *(int(i) for i in ios), n]
    return [_slice(x, lo, hi, axis) for lo, hi in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------- stacking
def hstack(xs: Sequence[Any]) -> Tensor:
    """Joins tensors column-wise: along axis 1, or axis 0 when they are 1-D."""
    ts = [_at_least(t, 1) for t in _unified(xs)]
    return P.concatenate(ts, axis=0 if ts[0].ndim == 1 else 1)


def vstack(xs: Sequence[Any]) -> Tensor:
    """Joins tensors row-wise (along axis 0, after making 1-D ones rows)."""
    return P.concatenate([_at_least(t, 2) for t in _unified(xs)], axis=0)


def dstack(xs: Sequence[Any]) -> Tensor:
    """Joins tensors depth-wise (along axis 2, after making them at least 3-D)."""
    return P.concatenate([_at_least(t, 3) for t in _unified(xs)], axis=2)


def append(x1: Any, x2: Any, axis: int | None = None) -> Tensor:
    """Appends `x2` to `x1` along `axis` (both flattened first when `axis` is None)."""
    a, b = _unified([x1, x2], "x1, x2")
    if axis is None:
        return P.concatenate([P.reshape(a, (-1,)), P.reshape(b, (-1,))], axis=0)
    if a.ndim != b.ndim:
        raise ValueError(
            "append: `x1` and `x2` must have the same rank when `axis` is given. "
            f"Received: x1.shape={a.shape}, x2.shape={b.shape}, axis={axis}"
        )
    ax = _norm_axis(axis, a.ndim)
    for i in range(a.ndim):
        if i != ax and a.shape[i] != b.shape[i]:
            raise ValueError(
                "append: `x1` and `x2` must have the same shape except along `axis`. "
                f"Received: x1.shape={a.shape}, x2.shape={b.shape}, axis={axis}"
            )
    return P.concatenate([a, b], axis=ax)


# ---------------------------------------------------------------- splitting
def array_split(x: Any, indices_or_sections: int, axis: int = 0) -> list[Tensor]:
    """Splits into `indices_or_sections` parts along `axis`; the first ones get one extra entry."""
    ios = indices_or_sections
    if isinstance(ios, bool) or not isinstance(ios, (int, np.integer)):
        raise TypeError(
            "Argument `indices_or_sections` must be of type `int`. "
            f"Received: indices_or_sections={ios}"
        )
    if ios <= 0:
        raise ValueError(
            "Argument `indices_or_sections` must be a positive integer. "
            f"Received: indices_or_sections={ios}"
        )
    x = convert_to_tensor(x)
    ax = _norm_axis(axis, x.ndim)
    n, ios = x.shape[ax], int(ios)
    each, extra = divmod(n, ios)
    sizes = [each + 1] * extra + [each] * (ios - extra)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return [_slice(x, lo, hi, ax) for lo, hi in zip(bounds[:-1], bounds[1:])]


def hsplit(x: Any, indices_or_sections: int | Sequence[int]) -> list[Tensor]:
    """Splits column-wise: along axis 1, or axis 0 for 1-D tensors."""
    x = convert_to_tensor(x)
    if x.ndim == 0:
        raise ValueError(
            f"hsplit only works on arrays of 1 or more dimensions. Received: x.shape={x.shape}"
        )
    return _split(x, indices_or_sections, 1 if x.ndim > 1 else 0, "hsplit")


def vsplit(x: Any, indices_or_sections: int | Sequence[int]) -> list[Tensor]:
    """Splits row-wise (along axis 0) a tensor of at least 2 dimensions."""
    x = convert_to_tensor(x)
    if x.ndim < 2:
        raise ValueError(
            f"vsplit only works on arrays of 2 or more dimensions. Received: x.shape={x.shape}"
        )
    return _split(x, indices_or_sections, 0, "vsplit")


def dsplit(x: Any, indices_or_sections: int | Sequence[int]) -> list[Tensor]:
    """Splits depth-wise (along axis 2) a tensor of at least 3 dimensions."""
    x = convert_to_tensor(x)
    if x.ndim < 3:
        raise ValueError(
            f"dsplit only works on arrays of 3 or more dimensions. Received: x.shape={x.shape}"
        )
    return _split(x, indices_or_sections, 2, "dsplit")


# ---------------------------------------------------------------- diagonals
def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Returns the `offset`-th diagonal of the planes (`axis1`, `axis2`), as the last axis."""
    x = convert_to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: `x` must be at least 2-D. Received: x.shape={x.shape}")
    a1, a2 = _norm_axis(axis1, x.ndim, "axis1"), _norm_axis(axis2, x.ndim, "axis2")
    if a1 == a2:
        raise ValueError(
            f"`axis1` and `axis2` cannot be the same axis. Received: axis1={axis1}, axis2={axis2}"
        )
    offset = int(offset)
    rest = [a for a in range(x.ndim) if a not in (a1, a2)]
    moved = P.transpose(x, (*rest, a1, a2)) if (a1, a2) != (x.ndim - 2, x.ndim - 1) else x
    n, m = x.shape[a1], x.shape[a2]
    length = builtins.max(
        0, builtins.min(n, m - offset) if offset >= 0 else builtins.min(n + offset, m)
    )
    xp = current_module()
    i = xp.arange(length) + builtins.max(-offset, 0)
    j = xp.arange(length) + builtins.max(offset, 0)
    return P.getitem(moved, (Ellipsis, i, j))


def diag(x: Any, k: int = 0) -> Tensor:
    """Extracts the `k`-th diagonal of a 2-D tensor, or builds a 2-D tensor with a 1-D one on it."""
    x = convert_to_tensor(x)
    k = int(k)
    if x.ndim == 2:
        return diagonal(x, offset=k)
    if x.ndim != 1:
        raise ValueError(f"diag: `x` must be 1-D or 2-D. Received: x.shape={x.shape}")
    n = x.shape[0]
    xp = current_module()
    square = P.where(
        xp.eye(n, dtype=bool),
        P.broadcast_to(P.reshape(x, (1, n)), (n, n)),
        Tensor(xp.zeros((), dtype=x.data.dtype)),
    )
    if k == 0:
        return square
    s = abs(k)
    return P.pad(square, ((0, s), (s, 0)) if k > 0 else ((s, 0), (0, s)))


def diagflat(x: Any, k: int = 0) -> Tensor:
    """Builds a 2-D tensor with the flattened `x` on its `k`-th diagonal."""
    return diag(P.reshape(convert_to_tensor(x), (-1,)), k=k)


_TRACE_DTYPES = {
    "bool": "int32",
    "int8": "int32",
    "int16": "int32",
    "uint8": "uint32",
    "uint16": "uint32",
}


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Sums the `offset`-th diagonal of the planes (`axis1`, `axis2`); small ints sum as 32-bit."""
    x = convert_to_tensor(x)
    dt = _TRACE_DTYPES.get(x.dtype, x.dtype)
    if x.dtype != dt:
        x = P.cast(x, dt)
    out = P.sum(diagonal(x, offset, axis1, axis2), axis=-1)
    return out if out.dtype == dt else P.cast(out, dt)


# ---------------------------------------------------------------- grids
def meshgrid(*x: Any, indexing: str = "xy") -> list[Tensor]:
    """Returns coordinate grids from 1-D coordinate vectors (`'xy'` Cartesian or `'ij'` matrix)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(
            f"Valid values for `indexing` are 'xy' and 'ij'. Received: indexing={indexing!r}"
        )
    ts = [P.reshape(convert_to_tensor(v), (-1,)) for v in x]
    sizes = [t.shape[0] for t in ts]
    pos = list(range(len(ts)))
    if indexing == "xy" and len(ts) > 1:
        pos[0], pos[1] = 1, 0
    out_shape = [0] * len(ts)
    for i, p in enumerate(pos):
        out_shape[p] = sizes[i]
    out = []
    for t, p in zip(ts, pos):
        shape = [1] * len(ts)
        shape[p] = t.shape[0]
        out.append(P.broadcast_to(P.reshape(t, tuple(shape)), tuple(out_shape)))
    return out


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Tensor:  # noqa: N803
    """Returns the Vandermonde matrix of 1-D `x`: columns are powers of `x`, highest first."""
    x = convert_to_tensor(x)
    if x.ndim != 1:
        raise ValueError(f"Input tensor must be 1-dimensional. Received: input.shape={x.shape}")
    cols = x.shape[0] if N is None else int(N)
    if cols < 0:
        raise ValueError(f"`N` must be non-negative. Received: N={N}")
    xp = current_module()
    if x.data.dtype.kind != "f":  # computed in a float type, then cast back, as Keras does
        compute = _result_dtype([x.data.dtype, floatx()])
        out = xp.vander(x.data.astype(compute), cols, increasing=increasing)
        return Tensor(out.astype(x.data.dtype))
    if cols == 0:
        return Tensor(xp.zeros((x.shape[0], 0), dtype=x.data.dtype))
    powers = [Tensor(xp.ones(x.shape, dtype=x.data.dtype))]
    for _ in range(cols - 1):
        powers.append(x if len(powers) == 1 else P.multiply(powers[-1], x))
    if not increasing:
        powers.reverse()
    return P.stack(powers, axis=1)
