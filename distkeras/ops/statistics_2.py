"""Statistics of `keras.ops` (median, quantile, average, cumprod, diff, corrcoef, ...)
and the NaN-ignoring reductions (nansum, nanmean, nanquantile, ...).

Quantiles sort with a gather (`take_along_axis` by `argsort`) and interpolate
between gathered neighbours, so gradients reach the elements they are made of.
A NaN-ignoring op fills NaNs with a neutral value through `where` before any
arithmetic, so a NaN never multiplies a zero gradient into a NaN one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, apply
from distkeras.ops.numpy import prod as _prod
from distkeras.ops.statistics import _axes, _common, _const, _float_dtype, _kind, _t

__all__ = [
    "average",
    "corrcoef",
    "correlate",
    "cumprod",
    "diff",
    "median",
    "nanargmax",
    "nanargmin",
    "nancumprod",
    "nancumsum",
    "nanmax",
    "nanmean",
    "nanmedian",
    "nanmin",
    "nanpercentile",
    "nanprod",
    "nanquantile",
    "nanstd",
    "nansum",
    "nanvar",
    "percentile",
    "ptp",
    "quantile",
    "trapezoid",
]

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


# ---------------------------------------------------------------- quantiles
def _quantile(x, q, axis, method, keepdims, ignore_nan, dtype=None):
    """Quantiles `q` (a float64 array in [0, 1]) of `x` over `axis`; q's axes lead the result."""
    xp = current_module()
    x = _t(x)
    if _kind(x) == "b":
        x = P.cast(x, floatx())
    x = P.cast(x, dtype or _float_dtype(x.data.dtype))
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}. Received: method={method!r}")
    qa = q
    nd = x.ndim
    if nd == 0:
        x, nd = P.reshape(x, (1,)), 1
    axes = _axes(axis, nd)
    rest = [a for a in range(nd) if a not in axes]
    rest_shape = tuple(x.shape[a] for a in rest)
    n = int(np.prod([x.shape[a] for a in axes]))
    xt = P.reshape(P.transpose(x, rest + list(axes)), (*rest_shape, n))
    nan = xp.isnan(xt.data)
    s = P.take_along_axis(xt, xp.argsort(xt.data, axis=-1, kind="stable"), axis=-1)
    if ignore_nan:
        cnt = (~nan).sum(axis=-1, keepdims=True)
        empty = cnt == 0
    else:
        cnt = xp.full((*rest_shape, 1), n)
        empty = nan.any(axis=-1, keepdims=True)
    pos = xp.asarray(qa.reshape(-1)) * (cnt - 1)
    top = xp.maximum(cnt - 1, 0)
    lo, hi = xp.floor(pos), xp.ceil(pos)
    frac = None
    if method == "linear":
        idx_lo, frac = lo, pos - lo
    elif method == "midpoint":
        idx_lo, frac = lo, xp.where(hi > lo, 0.5, 0.0)
    else:
        idx_lo = {"lower": lo, "higher": hi, "nearest": xp.around(pos)}[method]
    idx_lo = xp.clip(idx_lo, 0, top).astype("int64")
    out = P.take_along_axis(s, idx_lo, axis=-1)
    if frac is not None:
        idx_hi = xp.clip(hi, 0, top).astype("int64")
        step = P.subtract(P.take_along_axis(s, idx_hi, axis=-1), out)
        out = P.add(out, P.multiply(step, _const(frac.astype(out.data.dtype))))
    out = P.where(xp.broadcast_to(empty, out.shape), _const(xp.asarray(np.nan, out.dtype)), out)
    out = P.reshape(out, rest_shape + qa.shape)
    nr = len(rest_shape)
    out = P.transpose(out, list(range(nr, nr + qa.ndim)) + list(range(nr)))
    if keepdims:
        kept = tuple(1 if a in axes else x.shape[a] for a in range(nd))
        out = P.reshape(out, qa.shape + kept)
    return out


def _q(q: Any, scale: float, name: str) -> Any:
    """`q` as a float64 NumPy array of quantiles in [0, 1], checked."""
    data = q.data if isinstance(q, Tensor) else q
    qa = np.asarray(data.get() if hasattr(data, "get") else data, "float64")
    if qa.size and (bool((qa < 0).any()) or bool((qa > scale).any())):
        what = "Quantiles" if scale == 1 else "Percentiles"
        raise ValueError(f"{what} must be in the range [0, {scale:g}]. Received: {name}={q}")
    return qa / scale


def quantile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False):
    """The `q`-th quantiles (q in [0, 1]) of `x` over `axis`."""
    return _quantile(x, _q(q, 1, "q"), axis, method, keepdims, ignore_nan=False)


def percentile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False):
    """The `q`-th percentiles (q in [0, 100]) of `x` over `axis`."""
    return _quantile(x, _q(q, 100, "q"), axis, method, keepdims, ignore_nan=False)


def median(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Median of `x` over `axis`."""
    return _quantile(x, np.asarray(0.5), axis, "linear", keepdims, ignore_nan=False)


def nanquantile(x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False):
    """The `q`-th quantiles (q in [0, 1]) of `x` over `axis`, ignoring NaNs."""
    return _quantile(x, _q(q, 1, "q"), axis, method, keepdims, ignore_nan=True)


def nanpercentile(
    x: Any, q: Any, axis: Any = None, method: str = "linear", keepdims: bool = False
) -> Tensor:
    """The `q`-th percentiles (q in [0, 100]) of `x` over `axis`, ignoring NaNs."""
    return _quantile(x, _q(q, 100, "q"), axis, method, keepdims, ignore_nan=True)


def nanmedian(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Median of `x` over `axis`, ignoring NaNs."""
    return _quantile(x, np.asarray(0.5), axis, "linear", keepdims, ignore_nan=True)


# ---------------------------------------------------------------- averages and spreads
def average(x: Any, axis: Any = None, weights: Any = None) -> Tensor:
    """Mean of `x` over `axis`, weighted by `weights` when given."""
    x = _t(x)
    if weights is None:
        x = P.cast(x, _float_dtype(x.data.dtype))
        return P.mean(x, axis=_axes(axis, x.ndim) if axis is not None else None)
    x, w = _common(P.cast(x, _float_dtype(x.data.dtype)), _t(weights))
    if w.shape != x.shape:
        if axis is None or isinstance(axis, (list, tuple)):
            raise ValueError(
                "average: `axis` must be one axis when the shapes of x and weights differ. "
                f"Received: axis={axis}, x.shape={x.shape}, weights.shape={w.shape}"
            )
        ax = _axes(axis, x.ndim)[0]
        if w.ndim != 1 or w.shape[0] != x.shape[ax]:
            raise ValueError(
                "average: `weights` must be 1-D with the length of x along `axis` when the "
                f"shapes differ. Received: weights.shape={w.shape}, x.shape={x.shape}, "
                f"axis={axis}"
            )
        w = P.reshape(w, tuple(x.shape[ax] if a == ax else 1 for a in range(x.ndim)))
    axes = None if axis is None else _axes(axis, x.ndim)
    num = P.sum(P.multiply(x, w), axis=axes)
    return P.divide(num, P.sum(P.broadcast_to(w, x.shape), axis=axes))


def ptp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Range (maximum minus minimum) of `x` over `axis`."""
    x = _t(x)
    if _kind(x) == "b":
        raise TypeError("ptp: boolean tensors cannot be subtracted. Received: x.dtype=bool")
    axes = None if axis is None else _axes(axis, x.ndim)
    return P.subtract(
        P.max(x, axis=axes, keepdims=keepdims), P.min(x, axis=axes, keepdims=keepdims)
    )


# ---------------------------------------------------------------- cumulative and differences
def _cumprod(x, axis):
    xp = current_module()
    out = xp.cumprod(x, axis=axis, dtype=x.dtype)

    def vjp(g, needs):
        if not bool((x == 0).any()):  # d out_j / d x_i = out_j / x_i for j >= i
            rev = xp.flip(xp.cumsum(xp.flip(g * out, axis), axis=axis), axis)
            return (rev / x,)
        # with zeros: s_i = g_i + x_{i+1} * s_{i+1}, then the gradient is out_{i-1} * s_i
        gm, xm, om = (xp.moveaxis(a, axis, 0) for a in (g, x, out))
        s = xp.empty_like(gm)
        s[-1] = gm[-1]
        for i in range(gm.shape[0] - 2, -1, -1):
            s[i] = gm[i] + xm[i + 1] * s[i + 1]
        before = xp.concatenate([xp.ones_like(om[:1]), om[:-1]], axis=0)
        return (xp.moveaxis(before * s, 0, axis),)

    return out, vjp


def _cum_dtype(x: Tensor, dtype: Any) -> str:
    dt = np.dtype(dtype or x.data.dtype).name
    return "int32" if dt == "bool" else dt


def cumprod(x: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Cumulative product along `axis` (over the flattened tensor when None)."""
    x = _t(x)
    x = P.cast(x, _cum_dtype(x, dtype))
    if axis is None:
        x, axis = P.reshape(x, (-1,)), 0
    if x.ndim == 0:
        return x
    return apply(_cumprod, x, axis=_axes(axis, x.ndim)[0])


def diff(a: Any, n: int = 1, axis: int = -1) -> Tensor:
    """The `n`-th discrete difference of `a` along `axis`."""
    x = _t(a)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff: the order `n` must be a non-negative integer. Received: n={n}")
    ax = _axes(axis, x.ndim)[0]
    pre = (slice(None),) * ax
    for _ in range(n):
        later, earlier = P.getitem(x, (*pre, slice(1, None))), P.getitem(x, (*pre, slice(None, -1)))
        if _kind(x) == "b":
            x = _const(later.data != earlier.data)
        else:
            x = P.subtract(later, earlier)
    return x


def trapezoid(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1) -> Tensor:
    """Integral of `y` along `axis` by the trapezoidal rule (sample points `x` or spacing `dx`)."""
    y = _t(y)
    y = P.cast(y, _float_dtype(y.data.dtype))
    ax = _axes(axis, y.ndim)[0]
    if x is None:
        d = _t(dx)
    else:
        xt = _t(x)
        d = diff(xt, axis=-1 if xt.ndim == 1 else ax)
        if xt.ndim == 1:
            d = P.reshape(d, tuple(-1 if a == ax else 1 for a in range(y.ndim)))
    pre = (slice(None),) * ax
    mid = P.add(P.getitem(y, (*pre, slice(1, None))), P.getitem(y, (*pre, slice(None, -1))))
    out = P.sum(P.multiply(P.multiply(mid, 0.5), d), axis=ax)
    return out if out.dtype == y.dtype else P.cast(out, y.dtype)


# ---------------------------------------------------------------- correlation
def corrcoef(x: Any) -> Tensor:
    """Pearson correlation coefficients between the rows (variables) of `x`."""
    x = _t(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"corrcoef: `x` must be 1-D or 2-D. Received: x.shape={x.shape}")
    name = x.data.dtype.name
    dtype = "float64" if name in ("int64", "float64") else name if name == "float16" else floatx()
    x2 = P.cast(x, dtype) if x.ndim == 2 else P.reshape(P.cast(x, dtype), (1, -1))
    xc = P.subtract(x2, P.mean(x2, axis=1, keepdims=True))
    c = P.matmul(xc, P.transpose(xc, (1, 0)))
    s = P.sqrt(P.sum(P.square(xc), axis=1))
    r = P.clip(P.divide(c, P.multiply(P.reshape(s, (-1, 1)), P.reshape(s, (1, -1)))), -1, 1)
    return P.reshape(r, ()) if x.ndim == 1 else r


def correlate(x1: Any, x2: Any, mode: str = "valid") -> Tensor:
    """Cross-correlation of two 1-D tensors (`mode` 'valid', 'same' or 'full')."""
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"mode must be one of 'valid', 'same', or 'full'. Received: mode={mode!r}")
    a, v = _common(_t(x1), _t(x2))
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError(
            f"correlate: x1 and x2 must be 1-D. Received: x1.shape={a.shape}, x2.shape={v.shape}"
        )
    name = a.data.dtype.name
    dtype = "float64" if name == "int64" else name if name in ("float16", "float64") else "float32"
    a, v = P.cast(a, dtype), P.cast(v, dtype)
    n, m = a.shape[0], v.shape[0]
    if n == 0 or m == 0:
        raise ValueError(f"correlate: x1 and x2 cannot be empty. Received: {n=}, {m=}")
    xp = current_module()
    idx = xp.arange(n + m - 1)[:, None] + xp.arange(m)[None, :]
    full = P.matmul(P.take(P.pad(a, ((m - 1, m - 1),)), idx, axis=0), v)
    if mode == "full":
        return full
    if mode == "valid":
        start, length = min(n, m) - 1, abs(n - m) + 1
    else:
        start, length = ((m - 1) // 2 if n >= m else n // 2), max(n, m)
    return P.getitem(full, slice(start, start + length))


# ---------------------------------------------------------------- NaN-ignoring reductions
def _filled(x: Tensor, value: float) -> tuple[Tensor, Any]:
    """`x` with NaNs replaced by `value`, and the NaN mask (None for non-float tensors)."""
    if _kind(x) not in "fc":
        return x, None
    nan = current_module().isnan(x.data)
    return P.where(nan, _const(current_module().asarray(value, x.data.dtype)), x), nan


def _int_result(dtype: Any) -> str:
    """Keras's dtype of an integer sum or product: small ints widen to 32 bits."""
    name = np.dtype(dtype).name
    if name in ("bool", "int8", "int16"):
        return "int32"
    return "uint32" if name in ("uint8", "uint16") else name


def _red_axes(x: Tensor, axis: Any) -> Any:
    return None if axis is None else _axes(axis, x.ndim)


def _count(nan: Any, x: Tensor, axis: Any, keepdims: bool) -> Tensor:
    xp = current_module()
    valid = xp.ones(x.shape, bool) if nan is None else ~nan
    return _const(valid.sum(axis=axis, keepdims=keepdims).astype(x.data.dtype))


def nansum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum of `x` over `axis`, treating NaNs as zero."""
    x = _t(x)
    dtype = _int_result(x.data.dtype)
    filled, _ = _filled(x, 0.0)
    out = P.sum(filled, axis=_red_axes(x, axis), keepdims=keepdims)
    return out if out.dtype == dtype else P.cast(out, dtype)


def nanprod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Product of `x` over `axis`, treating NaNs as one."""
    x = _t(x)
    dtype = _int_result(x.data.dtype)
    filled, _ = _filled(x, 1.0)
    out = _prod(P.cast(filled, dtype), axis=_red_axes(x, axis), keepdims=keepdims)
    return out if out.dtype == dtype else P.cast(out, dtype)


def nanmean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean of `x` over `axis`, ignoring NaNs (NaN where all are NaN)."""
    x = _t(x)
    x = P.cast(x, _float_dtype(x.data.dtype))
    filled, nan = _filled(x, 0.0)
    axes = _red_axes(x, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return P.divide(P.sum(filled, axis=axes, keepdims=keepdims), _count(nan, x, axes, keepdims))


def nanvar(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Variance of `x` over `axis`, ignoring NaNs."""
    x = _t(x)
    dtype = _float_dtype(x.data.dtype)
    x = P.cast(x, "float32" if dtype == "float16" else dtype)  # float16 computes in float32
    filled, nan = _filled(x, 0.0)
    axes = _red_axes(x, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = P.divide(P.sum(filled, axis=axes, keepdims=True), _count(nan, x, axes, True))
        d = P.subtract(filled, m)
        if nan is not None:
            d = P.where(nan, _const(current_module().zeros((), x.data.dtype)), d)
        out = P.divide(
            P.sum(P.square(d), axis=axes, keepdims=keepdims), _count(nan, x, axes, keepdims)
        )
    return out if out.dtype == dtype else P.cast(out, dtype)


def nanstd(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Standard deviation of `x` over `axis`, ignoring NaNs."""
    return P.sqrt(nanvar(x, axis=axis, keepdims=keepdims))


def _nan_extremum(x: Any, axis: Any, keepdims: bool, largest: bool) -> Tensor:
    x = _t(x)
    fn = P.max if largest else P.min
    filled, nan = _filled(x, -np.inf if largest else np.inf)
    axes = _red_axes(x, axis)
    out = fn(filled, axis=axes, keepdims=keepdims)
    if nan is None:
        return out
    all_nan = nan.all(axis=axes, keepdims=keepdims)
    return P.where(all_nan, _const(current_module().asarray(np.nan, out.data.dtype)), out)


def nanmax(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Maximum of `x` over `axis`, ignoring NaNs (NaN where all are NaN)."""
    return _nan_extremum(x, axis, keepdims, largest=True)


def nanmin(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Minimum of `x` over `axis`, ignoring NaNs (NaN where all are NaN)."""
    return _nan_extremum(x, axis, keepdims, largest=False)


def _nan_arg(x: Any, axis: Any, keepdims: bool, largest: bool) -> Tensor:
    xp = current_module()
    data = _t(x).data
    if axis is not None:
        axis = _axes(axis, data.ndim)[0]
    find = xp.argmax if largest else xp.argmin
    if data.dtype.kind not in "fc":
        return _const(find(data, axis=axis, keepdims=keepdims).astype("int32"))
    nan = xp.isnan(data)
    idx = find(xp.where(nan, -np.inf if largest else np.inf, data), axis=axis, keepdims=keepdims)
    return _const(xp.where(nan.all(axis=axis, keepdims=keepdims), -1, idx).astype("int32"))


def nanargmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum over `axis`, ignoring NaNs (-1 where all are NaN; int32)."""
    return _nan_arg(x, axis, keepdims, largest=True)


def nanargmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the minimum over `axis`, ignoring NaNs (-1 where all are NaN; int32)."""
    return _nan_arg(x, axis, keepdims, largest=False)


def nancumsum(x: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Cumulative sum along `axis`, treating NaNs as zero."""
    x = _t(x)
    out_dtype = _cum_dtype(x, dtype)
    filled, _ = _filled(x, 0.0)
    filled = P.cast(filled, out_dtype)
    if axis is None:
        filled, axis = P.reshape(filled, (-1,)), 0
    out = P.cumsum(filled, axis=_axes(axis, filled.ndim)[0]) if filled.ndim else filled
    return out if out.dtype == out_dtype else P.cast(out, out_dtype)


def nancumprod(x: Any, axis: int | None = None, dtype: Any = None) -> Tensor:
    """Cumulative product along `axis`, treating NaNs as one."""
    x = _t(x)
    filled, _ = _filled(x, 1.0)
    return cumprod(filled, axis=axis, dtype=_cum_dtype(x, dtype))
