"""The `keras.ops.math` functions (erf, top_k, segment reductions, ...) and the
extra activation and normalization functions of `keras.ops.nn`.
"""

from __future__ import annotations

import math as _math
from typing import Any

import numpy as _np

from distkeras.backend import current_module as _xp
from distkeras.backend import primitives as P
from distkeras.backend import standardize_dtype as _std_dtype
from distkeras.backend.autodiff import Tensor, apply
from distkeras.backend.autodiff import convert_to_tensor as _tensor
from distkeras.backend.primitives import float_tensor as _float

__all__ = [
    "cdist",
    "erf",
    "erfc",
    "erfinv",
    "extract_sequences",
    "in_top_k",
    "logdet",
    "rsqrt",
    "saturate_cast",
    "segment_max",
    "segment_min",
    "segment_prod",
    "segment_sum",
    "top_k",
    "view_as_complex",
    "view_as_real",
]


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else _tensor(x).data


# ---------------------------------------------------------------- special functions
def _special(name: str) -> Any:
    """scipy.special's (or cupyx's) function `name`, or None when neither is installed."""
    try:
        if _xp() is _np:
            import scipy.special as sp  # noqa: PLC0415 - optional dependency
        else:
            import cupyx.scipy.special as sp  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    return getattr(sp, name)


def _host(x: Any) -> Any:
    return _np.asarray(x.get() if hasattr(x, "get") else x, dtype="float64")


_ERF64 = _np.vectorize(_math.erf, otypes=["float64"])


def _erf_array(x: Any) -> Any:
    fn = _special("erf")
    if fn is not None:
        return fn(x).astype(x.dtype, copy=False)
    return _xp().asarray(_ERF64(_host(x)).astype(x.dtype))


def _erfinv_array(y: Any) -> Any:
    fn = _special("erfinv")
    if fn is not None:
        return fn(y).astype(y.dtype, copy=False)
    # Without SciPy: bisection to a start within 2**-30, then Newton steps on erf(x) = y.
    y64 = _host(y)
    lo, hi = _np.full_like(y64, -6.0), _np.full_like(y64, 6.0)
    for _ in range(34):
        mid = (lo + hi) / 2
        below = _ERF64(mid) < y64
        lo, hi = _np.where(below, mid, lo), _np.where(below, hi, mid)
    x = (lo + hi) / 2
    for _ in range(2):
        x = x - (_ERF64(x) - y64) / (2 / _math.sqrt(_math.pi) * _np.exp(-x * x))
    x = _np.where(_np.abs(y64) == 1, _np.sign(y64) * _np.inf, x)
    x = _np.where(_np.abs(y64) > 1, _np.nan, x)
    return _xp().asarray(x.astype(y.dtype))


def _erf(x):
    out = _erf_array(x)

    def vjp(g, needs):
        return (g * (2 / _math.sqrt(_math.pi)) * _xp().exp(-x * x),)

    return out, vjp


def _erfinv(y):
    out = _erfinv_array(y)

    def vjp(g, needs):
        return (g * (_math.sqrt(_math.pi) / 2) * _xp().exp(out * out),)

    return out, vjp


def erf(x: Any) -> Tensor:
    """Elementwise error function (integer inputs give floats)."""
    return apply(_erf, _float(x))


def erfc(x: Any) -> Tensor:
    """Elementwise complementary error function 1 - erf(x) (integer inputs give floats)."""
    x = _float(x)
    fn = _special("erfc")
    if fn is None:
        return P.subtract(1.0, erf(x))
    return apply(_erfc, x)


def _erfc(x):
    out = _special("erfc")(x).astype(x.dtype, copy=False)

    def vjp(g, needs):
        return (g * (-2 / _math.sqrt(_math.pi)) * _xp().exp(-x * x),)

    return out, vjp


def erfinv(x: Any) -> Tensor:
    """Elementwise inverse error function (integer inputs give floats)."""
    return apply(_erfinv, _float(x))


def rsqrt(x: Any) -> Tensor:
    """Elementwise 1 / sqrt(x) (integer inputs give floats)."""
    return P.divide(1.0, P.sqrt(_float(x)))


def _logdet(x):
    xp = _xp()
    _, out = xp.linalg.slogdet(x)
    out = out.astype(x.dtype, copy=False)

    def vjp(g, needs):
        inv_t = xp.swapaxes(xp.linalg.inv(x), -1, -2)
        return (g[..., None, None] * inv_t,)

    return out, vjp


def logdet(x: Any) -> Tensor:
    """log|det(x)| of square matrices (batched over the leading axes)."""
    x = _float(x)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"Argument `x` must be a (batch of) square matrices. Received: x.shape={x.shape}"
        )
    return apply(_logdet, x)


# ---------------------------------------------------------------- top-k
def top_k(x: Any, k: int, sorted: bool = True) -> tuple[Tensor, Tensor]:  # noqa: A002
    """The k largest values along the last axis and their int32 indices."""
    x = _tensor(x)
    if x.ndim < 1:
        raise ValueError(f"Argument `x` must have rank >= 1. Received: x.shape={x.shape}")
    if not isinstance(k, (int, _np.integer)) or not 0 <= k <= x.shape[-1]:
        raise ValueError(
            f"Argument `k` must be an int in [0, {x.shape[-1]}] (the size of the last axis). "
            f"Received: k={k}"
        )
    xp = _xp()
    d = x.data
    # Stable on -x: equal values keep their order, the lower index first (as TF and JAX).
    idx = xp.argsort(-d if d.dtype.kind != "b" else ~d, axis=-1, kind="stable")[..., :k]
    return P.take_along_axis(x, idx, axis=-1), Tensor(idx.astype("int32"))


def in_top_k(targets: Any, predictions: Any, k: int) -> Tensor:
    """Whether each target's prediction is among the k largest of its row (bool)."""
    t = _data(targets).astype("int64")
    p = _data(predictions)
    if t.ndim != 1 or p.ndim != 2 or t.shape[0] != p.shape[0]:
        raise ValueError(
            "Arguments `targets` and `predictions` must have shapes (batch,) and "
            f"(batch, classes). Received: targets.shape={tuple(t.shape)}, "
            f"predictions.shape={tuple(p.shape)}"
        )
    if k < 1:
        return Tensor(_xp().zeros(t.shape, dtype=bool))
    kth = -_xp().sort(-p, axis=-1)[:, min(k, p.shape[-1]) - 1]
    target_values = _xp().take_along_axis(p, t[:, None], axis=-1)[:, 0]
    return Tensor(target_values >= kth)


# ---------------------------------------------------------------- segment reductions
def _segments(data: Any, segment_ids: Any, num_segments: Any) -> tuple[Tensor, Any, int]:
    data = _tensor(data)
    ids = _data(segment_ids)
    if ids.ndim != 1:
        raise ValueError(
            "Argument `segment_ids` should be an 1-D vector. "
            f"Received: segment_ids.shape={tuple(ids.shape)}"
        )
    if data.ndim < 1 or ids.shape[0] != data.shape[0]:
        raise ValueError(
            "Arguments `segment_ids` and `data` should have the same leading dimension. "
            f"Received: segment_ids.shape={tuple(ids.shape)}, data.shape={data.shape}"
        )
    ids = ids.astype("int64")
    if num_segments is None:
        num_segments = int(ids.max()) + 1 if ids.size else 0
    return data, ids, int(num_segments)


def _seg_sum(data, ids, n):
    xp = _xp()
    valid = ids >= 0
    out = xp.zeros((n, *data.shape[1:]), dtype=data.dtype)
    xp.add.at(out, ids[valid], data[valid])

    def vjp(g, needs):
        gx = g[xp.where(valid, ids, 0)]
        gx[~valid] = 0
        return (gx,)

    return out, vjp


def _seg_extreme(data, ids, n, is_max):
    xp = _xp()
    valid = ids >= 0
    fill = -xp.inf if is_max else xp.inf
    if data.dtype.kind in "iub":
        info = xp.iinfo(data.dtype) if data.dtype.kind != "b" else None
        fill = (info.min if is_max else info.max) if info is not None else (not is_max)
    out = xp.full((n, *data.shape[1:]), fill, dtype=data.dtype)
    (xp.maximum if is_max else xp.minimum).at(out, ids[valid], data[valid])

    def vjp(g, needs):
        safe = xp.where(valid, ids, 0)
        hit = (data == out[safe]) & valid.reshape((-1,) + (1,) * (data.ndim - 1))
        count = xp.zeros(out.shape, dtype=g.dtype)
        xp.add.at(count, ids[valid], hit[valid].astype(g.dtype))
        return (xp.where(hit, g[safe] / xp.maximum(count[safe], 1), 0).astype(g.dtype),)

    return out, vjp


def _seg_prod(data, ids, n):
    xp = _xp()
    valid = ids >= 0
    out = xp.ones((n, *data.shape[1:]), dtype=data.dtype)
    xp.multiply.at(out, ids[valid], data[valid])

    def vjp(g, needs):
        # d out_s / d x_i is the product of the segment's other elements, zeros included.
        safe = xp.where(valid, ids, 0)
        zero = data == 0
        nonzero_prod = xp.ones(out.shape, dtype=data.dtype)
        xp.multiply.at(nonzero_prod, ids[valid], xp.where(zero, 1, data)[valid])
        zeros = xp.zeros(out.shape, dtype="int64")
        xp.add.at(zeros, ids[valid], zero[valid])
        nz, zc = nonzero_prod[safe], zeros[safe]
        others = xp.where(
            zero, xp.where(zc == 1, nz, 0), xp.where(zc == 0, nz / xp.where(zero, 1, data), 0)
        )
        keep = valid.reshape((-1,) + (1,) * (data.ndim - 1))
        return (xp.where(keep, g[safe] * others, 0).astype(g.dtype),)

    return out, vjp


def segment_sum(
    data: Any,
    segment_ids: Any,
    num_segments: int | None = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Sums the rows of `data` that share a segment id (ids < 0 are dropped)."""
    data, ids, n = _segments(data, segment_ids, num_segments)
    return apply(_seg_sum, data, ids, n)


def segment_max(
    data: Any,
    segment_ids: Any,
    num_segments: int | None = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Maximum of the rows of `data` per segment id (-inf for an empty segment)."""
    data, ids, n = _segments(data, segment_ids, num_segments)
    return apply(_seg_extreme, data, ids, n, True)


def segment_min(
    data: Any,
    segment_ids: Any,
    num_segments: int | None = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Minimum of the rows of `data` per segment id (inf for an empty segment)."""
    data, ids, n = _segments(data, segment_ids, num_segments)
    return apply(_seg_extreme, data, ids, n, False)


def segment_prod(
    data: Any,
    segment_ids: Any,
    num_segments: int | None = None,
    sorted: bool = False,  # noqa: A002
) -> Tensor:
    """Product of the rows of `data` per segment id (1 for an empty segment)."""
    data, ids, n = _segments(data, segment_ids, num_segments)
    return apply(_seg_prod, data, ids, n)


# ---------------------------------------------------------------- sequences and casts
def extract_sequences(x: Any, sequence_length: int, sequence_stride: int) -> Tensor:
    """Frames of `sequence_length` along the last axis, `sequence_stride` apart."""
    x = _tensor(x)
    if x.ndim < 1:
        raise ValueError(f"Input should have rank >= 1. Received: input.shape = {x.shape}")
    for name, v in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride)):
        if not isinstance(v, (int, _np.integer)) or v < 1:
            raise ValueError(f"Argument `{name}` must be a positive int. Received: {name}={v}")
    num = (x.shape[-1] - (sequence_length - sequence_stride)) // sequence_stride
    num = max(num, 0)
    xp = _xp()
    idx = xp.arange(num)[:, None] * sequence_stride + xp.arange(sequence_length)[None, :]
    return P.take(x, idx, axis=x.ndim - 1)


def _limits(dtype: str) -> tuple[Any, Any]:
    if dtype == "bool":
        return 0, 1
    if "int" in dtype:
        info = _np.iinfo(dtype)
    else:
        info = _np.finfo(dtype)
    return info.min, info.max


def saturate_cast(x: Any, dtype: Any) -> Tensor:
    """Casts to `dtype`, first clipping to the range `dtype` can hold."""
    x = _tensor(x)
    dtype = _std_dtype(dtype)
    in_dtype = x.dtype
    in_min, in_max = _limits(in_dtype)
    out_min, out_max = _limits(dtype)
    with _np.errstate(over="ignore"):
        lo = _np.asarray(max(in_min, out_min)).astype(in_dtype)
        hi = _np.asarray(min(in_max, out_max)).astype(in_dtype)
    # The limit may round outside the output range in the input dtype: step back inside.
    # (compared as Python numbers, exactly: float32(2**31) > 2**31 - 1 is False in NumPy)
    if lo.item() < out_min:
        lo = _np.nextafter(lo, _np.asarray(0, in_dtype))
    if hi.item() > out_max:
        hi = _np.nextafter(hi, _np.asarray(0, in_dtype))
    return P.cast(P.clip(x, lo.item(), hi.item()), dtype)


# ---------------------------------------------------------------- distances and complex views
def cdist(x: Any, y: Any) -> Tensor:
    """Euclidean distances between the rows of x (..., m, d) and y (..., n, d): (..., m, n)."""
    x, y = _float(x), _float(y)
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(
            f"`cdist` inputs must have rank >= 2. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            "Last dimension of inputs to `cdist` must match. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    diff = P.subtract(
        P.reshape(x, (*x.shape[:-1], 1, x.shape[-1])),
        P.reshape(y, (*y.shape[:-2], 1, *y.shape[-2:])),
    )
    return apply(_safe_sqrt, P.sum(P.square(diff), axis=-1))


def _safe_sqrt(s):
    """sqrt whose gradient at 0 is 0 (a point's distance to itself), not inf."""
    xp = _xp()
    out = xp.sqrt(s)

    def vjp(g, needs):
        return (xp.where(out > 0, g / (2 * xp.where(out > 0, out, 1)), 0).astype(s.dtype),)

    return out, vjp


def view_as_complex(x: Any) -> Tensor:
    """A real tensor (..., 2) of (real, imag) pairs as a complex64 tensor (...)."""
    x = _tensor(x)
    if x.ndim < 1 or x.shape[-1] != 2:
        raise ValueError(
            "Last dimension of input must be size 2 (real and imaginary). "
            f"Received shape: {x.shape}"
        )
    d = x.data
    return Tensor(d[..., 0].astype("complex64") + 1j * d[..., 1].astype("complex64"))


def view_as_real(x: Any) -> Tensor:
    """A complex tensor (...) as a real tensor (..., 2) of (real, imag) pairs."""
    d = _tensor(x).data
    return Tensor(_xp().stack([d.real, d.imag], axis=-1))
