"""Elementwise math ops of `keras.ops` beyond the basic arithmetic in
`distkeras.ops.numpy`: trigonometric and hyperbolic functions, rounding,
predicates (`isclose`, `isinf`, ...), bitwise and integer ops.

Dtypes follow Keras 3: a float function of integer or bool input gives
`floatx()` (a few, as in Keras, give float64 for int64), float inputs keep
their dtype, and integer pairs promote as NumPy does. Unlike Keras's NumPy
backend, which narrows float64/int64 arrays on conversion, distkeras keeps
64-bit inputs (float64 is what gradient checks run in). The smooth functions
are primitives whose VJP sits next to the forward; predicates, rounding and
integer ops carry no gradient, as in Keras.
"""

from __future__ import annotations

import math as _math
from typing import Any

import numpy as _np

from distkeras.backend import current_module as _xp
from distkeras.backend import floatx as _floatx
from distkeras.backend import primitives as _P
from distkeras.backend.autodiff import Tensor, _holds_tensor
from distkeras.backend.autodiff import apply as _apply
from distkeras.backend.autodiff import convert_to_tensor as _convert
from distkeras.backend.primitives import _unary
from distkeras.backend.primitives import sum_to as _sum_to

__all__ = """
    allclose angle arccos arccosh arcsin arcsinh arctan arctan2 arctanh bitwise_and
    bitwise_invert bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor
    cbrt conj conjugate cosh deg2rad divide_no_nan exp2 fabs fmax fmin fmod gcd heaviside
    hypot i0 imag isclose isin isinf isneginf isposinf isreal lcm ldexp left_shift logaddexp
    logaddexp2 nan_to_num nextafter rad2deg real right_shift signbit sinc sinh tan trunc
""".split()


# ------------------------------------------------------------------ conversion and dtypes
def _tensor(x: Any) -> Tensor:
    """`x` as a Tensor; Python ints (also in lists) become int32, floats floatx, as in Keras."""
    if isinstance(x, Tensor):
        return x
    t = _convert(x)
    if type(x) in (list, tuple) and t.data.dtype == _np.int64 and not _holds_tensor(x):
        t = Tensor(t.data.astype("int32"))
    return t


def _is_weak(x: Any) -> bool:
    """Python scalars, whose type takes no part in promotion where Keras keeps them weak."""
    return isinstance(x, (bool, int, float)) and not isinstance(x, _np.generic)


def _promote(*dtypes: Any) -> _np.dtype:
    """Keras's promotion: floats win over ints and bools, keeping their own dtype."""
    floats = [d for d in dtypes if _np.dtype(d).kind in "fc"]
    return _np.result_type(*(floats or dtypes))


def _result_dtype(xs: tuple, ts: tuple, weak: bool = False) -> _np.dtype:
    """The result dtype of `ts` (converted from `xs`); with `weak`, Python scalars are weak."""
    strong = [t.data.dtype for x, t in zip(xs, ts) if not (weak and _is_weak(x))]
    dtype = _promote(*(strong or [t.data.dtype for t in ts]))
    if strong and dtype.kind in "biu" and any(isinstance(x, float) for x in xs):
        dtype = _np.dtype(_floatx())
    return dtype


def _to_float(dtype: _np.dtype, wide_int64: bool = False) -> _np.dtype:
    """The float dtype a float function gives for `dtype` (ints and bool: floatx)."""
    if dtype.kind in "fc":
        return dtype
    return _np.dtype("float64" if wide_int64 and dtype == _np.int64 else _floatx())


def _cast(t: Tensor, dtype: Any) -> Tensor:
    return t if t.data.dtype == dtype else _P.cast(t, _np.dtype(dtype).name)


def _float_operand(x: Any, wide_int64: bool = False) -> Tensor:
    t = _tensor(x)
    return _cast(t, _to_float(t.data.dtype, wide_int64))


def _float_operands(x1: Any, x2: Any) -> tuple[Tensor, Tensor]:
    t1, t2 = _tensor(x1), _tensor(x2)
    dtype = _to_float(_promote(t1.data.dtype, t2.data.dtype))
    return _cast(t1, dtype), _cast(t2, dtype)


def _const(a: Any) -> Tensor:
    return Tensor(a)


# ------------------------------------------------------------------ unary float primitives
def _fwd(name: str):
    return lambda x: getattr(_xp(), name)(x)


def _sinc_d(x, out, g):
    xp = _xp()
    zero = x == 0
    safe = xp.where(zero, 1, x)
    return xp.where(zero, 0, g * (xp.cos(_math.pi * x) - out) / safe).astype(g.dtype)


def _i1(x: Any) -> Any:
    """Modified Bessel function of the first kind, order 1, by its power series in float64.

    Every term has the sign of x, so the sum loses no precision; it needs about
    |x| / 2 terms past the largest, which stays finite up to i0's own overflow.
    """
    xp = _xp()
    half = x.astype("float64") / 2
    q = half * half
    term = half.copy()
    total = term.copy()
    for k in range(1, 2000):
        term = term * q / (k * (k + 1))
        total += term
        if not bool(xp.any(xp.abs(term) > 1e-17 * xp.abs(total))):
            break
    return total


_UNARY = {
    "arccos": lambda x, out, g: -g / _xp().sqrt(1 - x * x),
    "arccosh": lambda x, out, g: g / _xp().sqrt(x * x - 1),
    "arcsin": lambda x, out, g: g / _xp().sqrt(1 - x * x),
    "arcsinh": lambda x, out, g: g / _xp().sqrt(x * x + 1),
    "arctan": lambda x, out, g: g / (1 + x * x),
    "arctanh": lambda x, out, g: g / (1 - x * x),
    "cbrt": lambda x, out, g: g / (3 * out * out),
    "cosh": lambda x, out, g: g * _xp().sinh(x),
    "sinh": lambda x, out, g: g * _xp().cosh(x),
    "tan": lambda x, out, g: g * (1 + out * out),
    "exp2": lambda x, out, g: g * out * _math.log(2.0),
    "deg2rad": lambda x, out, g: g * (_math.pi / 180),
    "rad2deg": lambda x, out, g: g * (180 / _math.pi),
    "sinc": _sinc_d,
    "i0": lambda x, out, g: (g * _i1(x)).astype(g.dtype),
}
_PRIMS = {name: _unary(_fwd(name), d) for name, d in _UNARY.items()}


def _float_unary(name: str, x: Any, wide_int64: bool = False) -> Tensor:
    return _apply(_PRIMS[name], _float_operand(x, wide_int64))


def arccos(x: Any) -> Tensor:
    """Elementwise inverse cosine; integer input gives floatx."""
    return _float_unary("arccos", x)


def arccosh(x: Any) -> Tensor:
    """Elementwise inverse hyperbolic cosine; integer input gives floatx."""
    return _float_unary("arccosh", x)


def arcsin(x: Any) -> Tensor:
    """Elementwise inverse sine; integer input gives floatx."""
    return _float_unary("arcsin", x)


def arcsinh(x: Any) -> Tensor:
    """Elementwise inverse hyperbolic sine; integer input gives floatx."""
    return _float_unary("arcsinh", x)


def arctan(x: Any) -> Tensor:
    """Elementwise inverse tangent; integer input gives floatx."""
    return _float_unary("arctan", x)


def arctanh(x: Any) -> Tensor:
    """Elementwise inverse hyperbolic tangent; integer input gives floatx."""
    return _float_unary("arctanh", x)


def cbrt(x: Any) -> Tensor:
    """Elementwise cube root; integer input gives floatx (int64: float64)."""
    return _float_unary("cbrt", x, wide_int64=True)


def cosh(x: Any) -> Tensor:
    """Elementwise hyperbolic cosine; integer input gives floatx."""
    return _float_unary("cosh", x)


def sinh(x: Any) -> Tensor:
    """Elementwise hyperbolic sine; integer input gives floatx."""
    return _float_unary("sinh", x)


def tan(x: Any) -> Tensor:
    """Elementwise tangent; integer input gives floatx."""
    return _float_unary("tan", x)


def exp2(x: Any) -> Tensor:
    """Elementwise 2**x; integer input gives floatx."""
    return _float_unary("exp2", x)


def deg2rad(x: Any) -> Tensor:
    """Converts angles from degrees to radians; integer input gives floatx (int64: float64)."""
    return _float_unary("deg2rad", x, wide_int64=True)


def rad2deg(x: Any) -> Tensor:
    """Converts angles from radians to degrees; integer input gives floatx (int64: float64)."""
    return _float_unary("rad2deg", x, wide_int64=True)


def sinc(x: Any) -> Tensor:
    """Elementwise normalized sinc, sin(pi x) / (pi x) and 1 at 0."""
    return _float_unary("sinc", x)


def i0(x: Any) -> Tensor:
    """Elementwise modified Bessel function of the first kind, order 0."""
    return _float_unary("i0", x, wide_int64=True)


def fabs(x: Any) -> Tensor:
    """Elementwise absolute value as a float; integer input gives floatx."""
    return _P.absolute(_float_operand(x))


def trunc(x: Any) -> Tensor:
    """Rounds toward zero; integer and bool input is returned unchanged (no gradient)."""
    t = _tensor(x)
    if t.data.dtype.kind in "biu":
        return _const(t.data)
    return _const(_xp().trunc(t.data))


def _nan_to_num(x, nan, posinf, neginf):
    xp = _xp()
    out = xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    def vjp(g, needs):
        return (xp.where(xp.isfinite(x), g, xp.zeros((), g.dtype)),)

    return out, vjp


def nan_to_num(x: Any, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None):
    """Replaces NaN by `nan` and infinities by `posinf`/`neginf` (default: the dtype's extremes)."""
    return _apply(_nan_to_num, _tensor(x), nan=nan, posinf=posinf, neginf=neginf)


# ------------------------------------------------------------------ binary float primitives
def _binary(fwd, d1, d2):
    """An elementwise primitive of two same-dtype arrays from `d_i(a, b, out, g)`."""

    def prim(a, b):
        out = fwd(a, b)

        def vjp(g, needs):
            return (
                _sum_to(d1(a, b, out, g), a.shape) if needs[0] else None,
                _sum_to(d2(a, b, out, g), b.shape) if needs[1] else None,
            )

        return out, vjp

    return prim


def _hypot_d(a, b, out, g):
    xp = _xp()
    return xp.where(out == 0, 0, g * a / xp.where(out == 0, 1, out)).astype(g.dtype)


def _arctan2_d(sign):
    def d(a, b, out, g):
        r2 = a * a + b * b
        num = b if sign > 0 else -a
        return g * num / r2

    return d


_ARCTAN2 = _binary(lambda a, b: _xp().arctan2(a, b), _arctan2_d(1), _arctan2_d(-1))
_HYPOT = _binary(
    lambda a, b: _xp().hypot(a, b), _hypot_d, lambda a, b, out, g: _hypot_d(b, a, out, g)
)
_LOGADDEXP = _binary(
    lambda a, b: _xp().logaddexp(a, b),
    lambda a, b, out, g: g * _xp().exp(a - out),
    lambda a, b, out, g: g * _xp().exp(b - out),
)
_LOGADDEXP2 = _binary(
    lambda a, b: _xp().logaddexp2(a, b),
    lambda a, b, out, g: g * _xp().exp2(a - out),
    lambda a, b, out, g: g * _xp().exp2(b - out),
)


def _fminmax(name):
    def pick_a(a, b):  # where the result is a (NaN in b picks a; ties go to a)
        xp = _xp()
        return (a >= b if name == "fmax" else a <= b) | xp.isnan(b)

    return _binary(
        lambda a, b: getattr(_xp(), name)(a, b),
        lambda a, b, out, g: g * pick_a(a, b),
        lambda a, b, out, g: g * ~pick_a(a, b),
    )


_FMAX, _FMIN = _fminmax("fmax"), _fminmax("fmin")
_FMOD = _binary(
    lambda a, b: _xp().fmod(a, b),
    lambda a, b, out, g: g,
    lambda a, b, out, g: -g * _xp().trunc(a / b),
)


def arctan2(x1: Any, x2: Any) -> Tensor:
    """Elementwise angle of the point (x2, x1), in [-pi, pi]; integer inputs give floatx."""
    return _apply(_ARCTAN2, *_float_operands(x1, x2))


def hypot(x1: Any, x2: Any) -> Tensor:
    """Elementwise sqrt(x1**2 + x2**2) without overflow; integer inputs give floatx."""
    t1, t2 = _tensor(x1), _tensor(x2)
    dtype = _promote(t1.data.dtype, t2.data.dtype)
    if dtype == _np.bool_:  # Keras computes in float and casts back to bool
        return _const(_xp().hypot(t1.data, t2.data).astype(bool))
    dtype = _to_float(dtype, wide_int64=True)
    return _apply(_HYPOT, _cast(t1, dtype), _cast(t2, dtype))


def logaddexp(x1: Any, x2: Any) -> Tensor:
    """Elementwise log(exp(x1) + exp(x2)), computed stably; integer inputs give floatx."""
    return _apply(_LOGADDEXP, *_float_operands(x1, x2))


def logaddexp2(x1: Any, x2: Any) -> Tensor:
    """Elementwise log2(2**x1 + 2**x2), computed stably; integer inputs give floatx."""
    return _apply(_LOGADDEXP2, *_float_operands(x1, x2))


def _same_dtype_pair(x1: Any, x2: Any, weak: bool) -> tuple[Tensor, Tensor]:
    t1, t2 = _tensor(x1), _tensor(x2)
    dtype = _result_dtype((x1, x2), (t1, t2), weak=weak)
    return _cast(t1, dtype), _cast(t2, dtype)


def fmax(x1: Any, x2: Any) -> Tensor:
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    return _apply(_FMAX, *_same_dtype_pair(x1, x2, weak=True))


def fmin(x1: Any, x2: Any) -> Tensor:
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    return _apply(_FMIN, *_same_dtype_pair(x1, x2, weak=True))


def fmod(x1: Any, x2: Any) -> Tensor:
    """Elementwise remainder of truncated division, with the sign of `x1` (bools give int32)."""
    t1, t2 = _same_dtype_pair(x1, x2, weak=False)
    if t1.data.dtype == _np.bool_:
        t1, t2 = _cast(t1, "int32"), _cast(t2, "int32")
    if t1.data.dtype.kind in "iu":
        return _const(_xp().fmod(t1.data, t2.data))
    return _apply(_FMOD, t1, t2)


def divide_no_nan(x1: Any, x2: Any) -> Tensor:
    """Elementwise x1 / x2, and 0 where x2 is 0 (with a zero gradient there)."""
    t1, t2 = _tensor(x1), _tensor(x2)
    dtype = _to_float(_result_dtype((x1, x2), (t1, t2), weak=True))
    t1, t2 = _cast(t1, dtype), _cast(t2, dtype)
    zero = t2.data == 0
    xp = _xp()
    safe = _P.where(zero, xp.ones((), dtype), t2)  # the double where: no NaN in the gradient
    return _P.where(zero, xp.zeros((), dtype), _P.divide(t1, safe))


def ldexp(x1: Any, x2: Any) -> Tensor:
    """Elementwise x1 * 2**x2 for an integer exponent `x2`."""
    t1, t2 = _tensor(x1), _tensor(x2)
    if t2.data.dtype.kind not in "iu":
        raise TypeError(
            f"ldexp exponent must be an integer type. Received: x2 dtype={t2.data.dtype.name}"
        )
    dtype = _to_float(_promote(t1.data.dtype, t2.data.dtype))
    scale = _xp().ldexp(_xp().ones((), dtype), t2.data).astype(dtype)
    return _P.multiply(_cast(t1, dtype), _const(scale))


def heaviside(x1: Any, x2: Any) -> Tensor:
    """Heaviside step: 0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0 (no gradient)."""
    t1, t2 = _tensor(x1), _tensor(x2)
    dtype = _promote(t1.data.dtype, t2.data.dtype)
    if dtype != _np.bool_:  # bool stays bool, as in Keras
        dtype = _to_float(dtype, wide_int64=True)
    return _const(_xp().heaviside(t1.data, t2.data).astype(dtype))


def nextafter(x1: Any, x2: Any) -> Tensor:
    """The next representable float after x1 toward x2 (computed as NumPy promotes, then cast)."""
    t1, t2 = _tensor(x1), _tensor(x2)
    dtype = _to_float(_promote(t1.data.dtype, t2.data.dtype))
    return _const(_xp().nextafter(t1.data, t2.data).astype(dtype))


# ------------------------------------------------------------------ predicates
def isclose(x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False):
    """Elementwise |x1 - x2| <= atol + rtol * |x2| (boolean, no gradient)."""
    a, b = _tensor(x1).data, _tensor(x2).data
    return _const(_xp().isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(x1: Any, x2: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False):
    """Whether `isclose` holds everywhere, as a scalar boolean tensor."""
    return _const(_xp().all(isclose(x1, x2, rtol=rtol, atol=atol, equal_nan=equal_nan).data))


def isinf(x: Any) -> Tensor:
    """Elementwise test for positive or negative infinity."""
    return _const(_xp().isinf(_tensor(x).data))


def isposinf(x: Any) -> Tensor:
    """Elementwise test for positive infinity."""
    a = _tensor(x).data
    return _const(_xp().isinf(a) & (a > 0))


def isneginf(x: Any) -> Tensor:
    """Elementwise test for negative infinity."""
    a = _tensor(x).data
    return _const(_xp().isinf(a) & (a < 0))


def isreal(x: Any) -> Tensor:
    """Elementwise test for a zero imaginary part (True everywhere for real dtypes)."""
    return _const(_xp().isreal(_tensor(x).data))


def signbit(x: Any) -> Tensor:
    """Elementwise test for a set sign bit (True for negative numbers and -0.0)."""
    a = _tensor(x).data
    return _const(_xp().signbit(a) if a.dtype.kind != "b" else _xp().zeros(a.shape, bool))


def isin(x1: Any, x2: Any, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Elementwise test whether each element of `x1` occurs in `x2` (negated with `invert`)."""
    a, b = _tensor(x1).data, _tensor(x2).data
    return _const(_xp().isin(a, b, assume_unique=assume_unique, invert=invert))


# ------------------------------------------------------------------ bitwise and integer ops
def _integer(t: Tensor, op: str, arg: str, bool_ok: bool = True) -> Any:
    """The array of `t`, or a TypeError naming `op`'s argument `arg` when it is not integral."""
    kinds = "biu" if bool_ok else "iu"
    if t.data.dtype.kind not in kinds:
        what = "integer or boolean" if bool_ok else "integer"
        raise TypeError(
            f"{op} expects {what} inputs. Received: {arg} with dtype={t.data.dtype.name}"
        )
    return t.data


def _int_pair(x: Any, y: Any, op: str, names=("x", "y"), bool_ok: bool = True) -> tuple:
    a, b = _integer(_tensor(x), op, names[0]), _integer(_tensor(y), op, names[1])
    dtype = _np.result_type(a.dtype, b.dtype)
    if dtype == _np.bool_ and not bool_ok:  # one bool with an integer is fine, as in Keras
        _integer(_tensor(x), op, names[0], bool_ok=False)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def bitwise_and(x: Any, y: Any) -> Tensor:
    """Elementwise bitwise AND of integers or booleans."""
    return _const(_xp().bitwise_and(*_int_pair(x, y, "bitwise_and")))


def bitwise_or(x: Any, y: Any) -> Tensor:
    """Elementwise bitwise OR of integers or booleans."""
    return _const(_xp().bitwise_or(*_int_pair(x, y, "bitwise_or")))


def bitwise_xor(x: Any, y: Any) -> Tensor:
    """Elementwise bitwise XOR of integers or booleans."""
    return _const(_xp().bitwise_xor(*_int_pair(x, y, "bitwise_xor")))


def bitwise_invert(x: Any) -> Tensor:
    """Elementwise bitwise NOT of integers (logical NOT of booleans)."""
    return _const(_xp().invert(_integer(_tensor(x), "bitwise_invert", "x")))


def bitwise_not(x: Any) -> Tensor:
    """Elementwise bitwise NOT of integers (logical NOT of booleans)."""
    return _const(_xp().invert(_integer(_tensor(x), "bitwise_not", "x")))


def _shift(name: str, x: Any, y: Any) -> Tensor:
    xp = _xp()
    if isinstance(y, int) and not isinstance(y, bool):  # a Python int keeps x's dtype
        return _const(getattr(xp, name)(_integer(_tensor(x), name, "x"), y))
    a, b = _int_pair(x, y, name)
    return _const(getattr(xp, name)(a, b))


def bitwise_left_shift(x: Any, y: Any) -> Tensor:
    """Elementwise x << y for integers."""
    return _shift("left_shift", x, y)


def bitwise_right_shift(x: Any, y: Any) -> Tensor:
    """Elementwise x >> y for integers (arithmetic for signed types)."""
    return _shift("right_shift", x, y)


def left_shift(x: Any, y: Any) -> Tensor:
    """Elementwise x << y for integers."""
    return _shift("left_shift", x, y)


def right_shift(x: Any, y: Any) -> Tensor:
    """Elementwise x >> y for integers (arithmetic for signed types)."""
    return _shift("right_shift", x, y)


def gcd(x1: Any, x2: Any) -> Tensor:
    """Elementwise greatest common divisor of integers (non-negative)."""
    return _const(_xp().gcd(*_int_pair(x1, x2, "gcd", ("x1", "x2"), bool_ok=False)))


def lcm(x1: Any, x2: Any) -> Tensor:
    """Elementwise least common multiple of integers (non-negative)."""
    return _const(_xp().lcm(*_int_pair(x1, x2, "lcm", ("x1", "x2"), bool_ok=False)))


# ------------------------------------------------------------------ complex parts
def _conjugate(x):
    xp = _xp()
    return xp.conjugate(x), lambda g, needs: (xp.conjugate(g),)


def _real(x):
    xp = _xp()
    return xp.real(x).copy(), lambda g, needs: (g.astype(x.dtype),)


def conjugate(x: Any) -> Tensor:
    """Elementwise complex conjugate (the input's values for real dtypes)."""
    return _apply(_conjugate, _tensor(x))


def conj(x: Any) -> Tensor:
    """Elementwise complex conjugate (the input's values for real dtypes)."""
    return _apply(_conjugate, _tensor(x))


def real(x: Any) -> Tensor:
    """Elementwise real part (the input itself for real dtypes)."""
    return _apply(_real, _tensor(x))


def imag(x: Any) -> Tensor:
    """Elementwise imaginary part (zeros of the input's dtype for real dtypes; no gradient)."""
    return _const(_xp().imag(_tensor(x).data).copy())


def angle(x: Any) -> Tensor:
    """Elementwise complex argument (0 or pi for real input; integers give floatx; no gradient)."""
    t = _tensor(x)
    if t.data.dtype.kind != "c":
        t = _float_operand(t)
    return _const(_xp().angle(t.data))
