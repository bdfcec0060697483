"""Sorting, searching, statistics and product ops of `keras.ops` (sort, quantile,
median, histogram, einsum, outer, kron, ...).

Differentiable ops are compositions of the backend's primitives (sort is a
gather by `argsort`, a quantile is a gather plus a linear interpolation), except
`einsum` and `cumprod`, which are primitives with their VJPs next to them here.
Index-valued and counting ops carry no gradient. The NaN-ignoring variants live
in `statistics_2.py`.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor

__all__ = [
    "argpartition",
    "bincount",
    "cross",
    "digitize",
    "einsum",
    "histogram",
    "inner",
    "kron",
    "nonzero",
    "outer",
    "searchsorted",
    "select",
    "sort",
    "unique",
    "vdot",
]


# ---------------------------------------------------------------- dtype helpers
def _t(x: Any) -> Tensor:
    return convert_to_tensor(x)


def _kind(x: Tensor) -> str:
    return x.data.dtype.kind


def _float_dtype(dtype: Any) -> str:
    """Keras's `result_type(dtype, float)`: floats keep their type, the rest get floatx."""
    dtype = np.dtype(dtype)
    return dtype.name if dtype.kind == "f" else floatx()


def _result_dtype(*tensors: Tensor) -> str:
    """The common dtype of tensors as Keras promotes them: a float operand's type wins."""
    dts = [t.data.dtype for t in tensors]
    floats = [d for d in dts if d.kind == "f"]
    return np.result_type(*(floats or dts)).name


def _common(*tensors: Tensor) -> list[Tensor]:
    dtype = _result_dtype(*tensors)
    return [t if t.data.dtype == dtype else P.cast(t, dtype) for t in tensors]


def _to_float(x: Tensor) -> Tensor:
    dtype = _float_dtype(x.data.dtype)
    return x if x.data.dtype == dtype else P.cast(x, dtype)


def _axes(axis: Any, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """`axis` (None, an int or a sequence) as sorted non-negative axes, checked."""
    if axis is None:
        return tuple(range(ndim))
    items = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    out = []
    for a in items:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < max(ndim, 1):
            raise ValueError(
                f"`{name}` is out of bounds for a tensor of rank {ndim}. Received: {name}={axis}"
            )
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(set(out)))


def _const(a: Any) -> Tensor:
    return Tensor(a)


# ---------------------------------------------------------------- einsum
def _parse_einsum(subscripts: str, shapes: list[tuple]) -> tuple[list[str], str]:
    """Explicit one-letter subscripts per operand and for the output (ellipses expanded)."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins, out = spec, None
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: the subscripts name {len(terms)} operands but {len(shapes)} were given. "
            f"Received: subscripts={subscripts!r}"
        )
    pool = [c for c in string.ascii_letters if c not in spec]
    ell_width = 0
    for term, shape in zip(terms, shapes):
        if "..." in term:
            ell_width = max(ell_width, len(shape) - len(term.replace("...", "")))
    ell = "".join(pool[:ell_width])
    explicit = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            width = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", ell[ell_width - width :])
        if len(term) != len(shape):
            raise ValueError(
                f"einsum: subscript {term!r} does not match an operand of shape {shape}. "
                f"Received: subscripts={subscripts!r}"
            )
        explicit.append(term)
    if out is None:
        letters = "".join(explicit)
        out = ell + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell)
        )
    else:
        out = out.replace("...", ell)
    return explicit, out


def _einsum_operand_grad(g, out_sub, subs, arrays, i):
    """Gradient of operand `i` of einsum(subs -> out_sub) given the output gradient `g`."""
    xp = current_module()
    x, sub = arrays[i], subs[i]
    unique = "".join(dict.fromkeys(sub))
    others = [(s, a) for j, (s, a) in enumerate(zip(subs, arrays)) if j != i]
    present = set(out_sub).union(*[set(s) for s, _ in others])
    keep = "".join(c for c in unique if c in present)
    spec = ",".join([out_sub] + [s for s, _ in others]) + "->" + keep
    r = xp.einsum(spec, g, *[a for _, a in others])
    size = {c: x.shape[sub.index(c)] for c in unique}
    # letters that only this operand has were summed away: they come back by broadcasting
    r = r.reshape(tuple(r.shape[keep.index(c)] if c in keep else 1 for c in unique))
    # letters of size 1 here that other operands broadcast to a larger size
    wide = tuple(k for k, c in enumerate(unique) if r.shape[k] != size[c] and size[c] == 1)
    if wide:
        r = r.sum(axis=wide, keepdims=True)
    r = xp.broadcast_to(r, tuple(size[c] for c in unique))
    if len(unique) == len(sub):
        return r.astype(x.dtype, copy=False)
    full = xp.zeros(x.shape, dtype=x.dtype)  # a repeated letter: the diagonal only
    grids = xp.indices(r.shape)
    full[tuple(grids[unique.index(c)] for c in sub)] = r
    return full


def _einsum(*arrays, subscripts, dtype):
    xp = current_module()
    subs, out_sub = _parse_einsum(subscripts, [a.shape for a in arrays])
    compute = [a.astype(dtype, copy=False) for a in arrays]
    out = xp.einsum(",".join(subs) + "->" + out_sub, *compute).astype(dtype, copy=False)

    def vjp(g, needs):
        return tuple(
            _einsum_operand_grad(g, out_sub, subs, compute, i) if need else None
            for i, need in enumerate(needs)
        )

    return out, vjp


def einsum(subscripts: str, *operands: Any, **kwargs: Any) -> Tensor:
    """Evaluates the Einstein summation `subscripts` on the operands."""
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: `subscripts` must be a string. Received: {subscripts=}")
    tensors = [_t(o) for o in operands]
    if not tensors:
        raise ValueError("einsum needs at least one operand. Received: operands=()")
    dtypes = {t.data.dtype.name for t in tensors}
    dtype = "int32" if dtypes == {"int8"} else _result_dtype(*tensors)
    return apply(_einsum, *tensors, subscripts=subscripts, dtype=dtype)


# ---------------------------------------------------------------- products
def outer(x1: Any, x2: Any) -> Tensor:
    """Outer product of the flattened `x1` and `x2`."""
    a, b = _common(_t(x1), _t(x2))
    return P.multiply(P.reshape(a, (-1, 1)), P.reshape(b, (1, -1)))


def inner(x1: Any, x2: Any) -> Tensor:
    """Inner product over the last axes of `x1` and `x2` (a product with a scalar)."""
    a, b = _common(_t(x1), _t(x2))
    if a.ndim == 0 or b.ndim == 0:
        return P.multiply(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"inner: the last axes of x1 and x2 differ. Received: x1.shape={a.shape}, "
            f"x2.shape={b.shape}"
        )
    la, lb = "".join(string.ascii_lowercase[: a.ndim - 1]), string.ascii_uppercase[: b.ndim - 1]
    return einsum(f"{la}z,{lb}z->{la}{lb}", a, b)


def vdot(x1: Any, x2: Any) -> Tensor:
    """Dot product of the flattened `x1` and `x2`."""
    a, b = _common(_t(x1), _t(x2))
    a, b = P.reshape(a, (-1,)), P.reshape(b, (-1,))
    if a.shape != b.shape:
        raise ValueError(
            f"vdot: x1 and x2 must have the same size. Received: x1.size={a.shape[0]}, "
            f"x2.size={b.shape[0]}"
        )
    return P.sum(P.multiply(a, b))


def kron(x1: Any, x2: Any) -> Tensor:
    """Kronecker product of `x1` and `x2`."""
    a, b = _common(_t(x1), _t(x2))
    nd = max(a.ndim, b.ndim)
    sa, sb = (1,) * (nd - a.ndim) + a.shape, (1,) * (nd - b.ndim) + b.shape
    a = P.reshape(a, tuple(d for s in sa for d in (s, 1)))
    b = P.reshape(b, tuple(d for s in sb for d in (1, s)))
    return P.reshape(P.multiply(a, b), tuple(p * q for p, q in zip(sa, sb)))


def cross(
    x1: Any, x2: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None
) -> Tensor:
    """Cross product of 2- or 3-element vectors along the given axes."""
    a, b = _common(_t(x1), _t(x2))
    if axis is not None:
        axisa = axisb = axisc = axis
    a = P.transpose(a, _move_last(a.ndim, _axes(axisa, a.ndim, "axisa")[0]))
    b = P.transpose(b, _move_last(b.ndim, _axes(axisb, b.ndim, "axisb")[0]))
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError(
            "cross: the vectors must have 2 or 3 elements. "
            f"Received: x1.shape={tuple(_t(x1).shape)}, x2.shape={tuple(_t(x2).shape)}"
        )
    ac = [P.getitem(a, (Ellipsis, k)) for k in range(a.shape[-1])]
    bc = [P.getitem(b, (Ellipsis, k)) for k in range(b.shape[-1])]

    def det(p, q, r, s):
        return P.subtract(P.multiply(p, q), P.multiply(r, s))

    if len(ac) == 2 and len(bc) == 2:
        return det(ac[0], bc[1], ac[1], bc[0])
    zero = np.zeros((), a.data.dtype)
    ac = ac + [_const(current_module().asarray(zero))] * (3 - len(ac))
    bc = bc + [_const(current_module().asarray(zero))] * (3 - len(bc))
    parts = [
        det(ac[1], bc[2], ac[2], bc[1]),
        det(ac[2], bc[0], ac[0], bc[2]),
        det(ac[0], bc[1], ac[1], bc[0]),
    ]
    shape = np.broadcast_shapes(*[p.shape for p in parts])
    out = P.stack([P.broadcast_to(p, shape) for p in parts], axis=-1)
    c = _axes(axisc, out.ndim, "axisc")[0]
    order = list(range(out.ndim - 1))
    order.insert(c, out.ndim - 1)
    return P.transpose(out, order)


def _move_last(ndim: int, axis: int) -> list[int]:
    return [k for k in range(ndim) if k != axis] + [axis]


# ---------------------------------------------------------------- sorting and searching
def sort(x: Any, axis: int | None = -1) -> Tensor:
    """Sorts `x` along `axis` (the flattened tensor when None); gradients follow the values."""
    x = _t(x)
    if axis is None:
        x, axis = P.reshape(x, (-1,)), 0
    axis = _axes(axis, x.ndim)[0] if x.ndim else 0
    if x.ndim == 0:
        return x
    idx = current_module().argsort(x.data, axis=axis, kind="stable")
    return P.take_along_axis(x, idx, axis=axis)


def argpartition(x: Any, kth: int, axis: int = -1) -> Tensor:
    """Indices that partition `x` around its `kth` element along `axis` (int32)."""
    x = _t(x)
    n = x.shape[_axes(axis, x.ndim)[0]] if x.ndim else 1
    if not -n <= int(kth) < n:
        raise ValueError(f"argpartition: `kth` is out of bounds for size {n}. Received: {kth=}")
    return _const(current_module().argpartition(x.data, kth, axis=axis).astype("int32"))


def searchsorted(sorted_sequence: Any, values: Any, side: str = "left") -> Tensor:
    """Indices where `values` would be inserted into the 1-D `sorted_sequence` (int32)."""
    seq, vals = _t(sorted_sequence), _t(values)
    if seq.ndim != 1:
        raise ValueError(
            "searchsorted only supports 1-D sorted sequences. "
            f"Received: sorted_sequence.shape={seq.shape}"
        )
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: `side` must be 'left' or 'right'. Received: {side=}")
    return _const(current_module().searchsorted(seq.data, vals.data, side=side).astype("int32"))


def digitize(x: Any, bins: Any) -> Tensor:
    """Index of the bin of `bins` that each element of `x` falls into (int32)."""
    x, bins = _t(x), _t(bins)
    if bins.ndim != 1:
        raise ValueError(f"digitize: `bins` must be 1-D. Received: bins.shape={bins.shape}")
    return _const(current_module().digitize(x.data, bins.data).astype("int32"))


def nonzero(x: Any) -> tuple[Tensor, ...]:
    """Indices of the non-zero elements of `x`, one int32 tensor per axis."""
    return tuple(_const(i.astype("int32")) for i in current_module().nonzero(_t(x).data))


nonzero._data_dependent_shape = True


def unique(
    x: Any,
    sorted: bool = True,  # noqa: A002 - Keras's name
    return_index: bool = False,
    return_inverse: bool = False,
    return_counts: bool = False,
    axis: int | None = None,
    size: int | None = None,
    fill_value: Any = None,
) -> Any:
    """Sorted unique elements of `x` (slices along `axis`), padded or cut to `size` if given."""
    x = _t(x)
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 0):
        raise ValueError(f"unique: `size` must be a non-negative integer. Received: {size=}")
    xp = current_module()
    res = xp.unique(
        x.data,
        return_index=return_index,
        return_inverse=return_inverse,
        return_counts=return_counts,
        axis=None if axis is None else _axes(axis, x.ndim)[0],
    )
    res = list(res) if isinstance(res, tuple) else [res]
    if size is not None:
        dim = 0 if axis is None else _axes(axis, x.ndim)[0]
        n = res[0].shape[dim]
        extra = [k for k, flag in ((1, return_index), (-1, return_counts)) if flag]
        if n > size:
            res[0] = res[0][(slice(None),) * dim + (slice(0, size),)]
            for k in extra:
                res[k] = res[k][:size]
        elif n < size:
            widths = [(0, 0)] * res[0].ndim
            widths[dim] = (0, size - n)
            fill = 0 if fill_value is None else fill_value
            res[0] = xp.pad(res[0], widths, constant_values=fill)
            if return_index:  # padded with 1, as Keras's NumPy backend does
                res[1] = xp.pad(res[1], (0, size - n), constant_values=1)
            if return_counts:
                res[-1] = xp.pad(res[-1], (0, size - n), constant_values=0)
    res = [res[0]] + [r.astype("int64") for r in res[1:]]
    out = tuple(_const(r) for r in res)
    return out[0] if len(out) == 1 else out


# Output sizes depend on the values (unknown on symbolic tensors), unless `size` fixes them.
unique._data_dependent_shape = lambda args, kwargs: (
    kwargs.get("size", args[7] if len(args) > 7 else None) is None
)


def _bincount(w, x, minlength):
    xp = current_module()
    if x.ndim == 1:
        out = xp.bincount(x, weights=w, minlength=minlength)
    else:
        length = int(max(minlength, x.max() + 1 if x.size else 0))
        out = xp.zeros((x.shape[0], length), dtype=w.dtype)
        rows = xp.broadcast_to(xp.arange(x.shape[0])[:, None], x.shape)
        xp.add.at(out, (rows, x), w)

    def vjp(g, needs):
        if x.ndim == 1:
            return (g[x].astype(w.dtype, copy=False), None)
        return (xp.take_along_axis(g, x, axis=1).astype(w.dtype, copy=False), None)

    return out.astype(w.dtype, copy=False), vjp


def bincount(x: Any, weights: Any = None, minlength: int = 0, sparse: bool = False) -> Tensor:
    """Counts (or sums of `weights`) per non-negative integer value of 1-D or 2-D `x`."""
    if sparse:
        raise ValueError("bincount: sparse outputs are not supported. Received: sparse=True")
    x = _t(x)
    if _kind(x) not in "iub" or x.ndim not in (1, 2):
        raise ValueError(
            f"bincount: `x` must be a 1-D or 2-D integer tensor. Received: x.dtype={x.dtype}, "
            f"x.shape={x.shape}"
        )
    if x.data.size and int(x.data.min()) < 0:
        raise ValueError("bincount: `x` must hold non-negative values. Received a negative one.")
    if not isinstance(minlength, (int, np.integer)) or minlength < 0:
        raise ValueError(f"bincount: `minlength` must be >= 0. Received: {minlength=}")
    xd = x.data.astype("int64")
    if weights is None:
        w = _const(current_module().ones(x.shape, dtype="int32"))
    else:
        w = _t(weights)
        if w.shape != x.shape:
            raise ValueError(
                f"bincount: `weights` must have the shape of `x` {x.shape}. "
                f"Received: weights.shape={w.shape}"
            )
        dtype = _result_dtype(x, w)
        w = w if w.data.dtype == dtype else P.cast(w, dtype)
    return apply(_bincount, w, xd, minlength=int(minlength))


def histogram(x: Any, bins: int = 10, range: tuple | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
    """Counts of the 1-D `x` in `bins` equal bins over `range`, and the bin edges."""
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool):
        raise TypeError(f"Argument `bins` must be of type `int`. Received: bins={bins}")
    if bins < 0:
        raise ValueError(f"Argument `bins` should be a non-negative integer. Received: bins={bins}")
    if range is not None:
        if not isinstance(range, tuple) or len(range) != 2:
            raise ValueError(
                f"Argument `range` must be a tuple of two elements. Received: range={range}"
            )
        if range[1] < range[0]:
            raise ValueError(
                f"Argument `range` must be in the form (min, max) with min <= max. "
                f"Received: range={range}"
            )
    x = _t(x)
    if x.ndim != 1:
        raise ValueError(f"Input tensor must be 1-dimensional. Received: input.shape={x.shape}")
    counts, edges = current_module().histogram(x.data, bins=bins, range=range)
    return _const(counts.astype("int64")), _const(edges)


def select(condlist: Any, choicelist: Any, default: Any = 0) -> Tensor:
    """Picks from `choicelist` where the first matching condition of `condlist` holds."""
    if not isinstance(condlist, (list, tuple)) or not isinstance(choicelist, (list, tuple)):
        raise ValueError(
            "condlist and choicelist must be lists. Received: "
            f"type(condlist)={type(condlist)}, type(choicelist)={type(choicelist)}"
        )
    if len(condlist) != len(choicelist) or not condlist:
        raise ValueError(
            "condlist and choicelist must have the same, non-zero length. Received: "
            f"len(condlist)={len(condlist)}, len(choicelist)={len(choicelist)}"
        )
    conds = [_t(c).data.astype(bool, copy=False) for c in condlist]
    choices = _common(*[_t(c) for c in choicelist])
    shape = np.broadcast_shapes(*[c.shape for c in conds], *[c.shape for c in choices])
    if isinstance(default, (int, float, bool)):  # a Python number takes the choices' dtype
        out = _const(current_module().full(shape, default, dtype=choices[0].data.dtype))
    else:
        choices = _common(*choices, _t(default))
        out = P.broadcast_to(choices.pop(), shape)
    for cond, choice in zip(reversed(conds), reversed(choices)):
        out = P.where(cond, choice, out)
    return out
