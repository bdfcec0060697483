"""The elementwise ops of `distkeras/ops/elementwise.py`: values against NumPy, dtypes and
special values recorded from Keras 3.15.1's numpy backend, gradients against finite
differences, and the errors for bad input.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import GradientTape, Variable, to_numpy
from tests.harness import check_grad

RNG = np.random.default_rng(7)


def _np(t):
    return to_numpy(t)


def _sample(domain, shape=(3, 4), dtype="float64"):
    lo, hi = domain
    return RNG.uniform(lo, hi, size=shape).astype(dtype)


# ------------------------------------------------------------------ unary float functions
# name -> (NumPy reference, domain sampled for values and gradients)
UNARY = {
    "arccos": (np.arccos, (-0.9, 0.9)),
    "arccosh": (np.arccosh, (1.2, 4.0)),
    "arcsin": (np.arcsin, (-0.9, 0.9)),
    "arcsinh": (np.arcsinh, (-3.0, 3.0)),
    "arctan": (np.arctan, (-3.0, 3.0)),
    "arctanh": (np.arctanh, (-0.9, 0.9)),
    "cbrt": (np.cbrt, (0.2, 5.0)),
    "cosh": (np.cosh, (-3.0, 3.0)),
    "sinh": (np.sinh, (-3.0, 3.0)),
    "tan": (np.tan, (-1.2, 1.2)),
    "exp2": (np.exp2, (-3.0, 3.0)),
    "deg2rad": (np.deg2rad, (-360.0, 360.0)),
    "rad2deg": (np.rad2deg, (-3.0, 3.0)),
    "fabs": (np.fabs, (-3.0, 3.0)),
    "sinc": (np.sinc, (-2.5, 2.5)),
    "i0": (np.i0, (-6.0, 6.0)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_float_values_and_dtypes_match_numpy(name, dtype):
    ref, domain = UNARY[name]
    x = _sample(domain, dtype=dtype)
    out = getattr(ops, name)(x)
    assert out.dtype == dtype
    np.testing.assert_allclose(_np(out), ref(x), rtol=2e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_float_gradients_match_finite_differences(name):
    _, domain = UNARY[name]
    check_grad(getattr(ops, name), _sample(domain), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["int32", "int8", "uint8", "bool", "float16"])
def test_unary_float_functions_promote_like_keras(name, dtype):
    # Recorded from Keras 3.15.1's numpy backend: every one of these gives float32 for
    # int32/int8/uint8/bool input and keeps float16.
    with np.errstate(all="ignore"):  # arccosh(0), arctanh(1)
        out = getattr(ops, name)(np.array([0, 1, 1]).astype(dtype))
    assert out.dtype == ("float16" if dtype == "float16" else "float32")


def test_int64_gives_float64_where_keras_says_so():
    # Keras's numpy backend code: cbrt, deg2rad, rad2deg, i0 and hypot give float64 for
    # int64 input (arccos & co. give floatx); distkeras keeps int64 arrays, so this shows.
    x = np.array([1, 8], "int64")
    for op in (ops.cbrt, ops.deg2rad, ops.rad2deg, ops.i0):
        assert op(x).dtype == "float64", op
    assert ops.hypot(x, x).dtype == "float64"
    assert ops.arccos(np.array([1, 0], "int64")).dtype == "float32"
    np.testing.assert_allclose(_np(ops.cbrt(x)), [1.0, 2.0])


def test_sinc_at_zero_and_its_gradient_there():
    # Keras 3.15.1 (numpy backend): sinc([0, 0.5, 1]) = [1, 0.63661975, -2.7827534e-08]
    out = _np(ops.sinc(np.array([0.0, 0.5, 1.0], "float32")))
    np.testing.assert_allclose(out, [1.0, 0.6366197466850281, -2.7827534054836178e-08], atol=1e-7)
    check_grad(ops.sinc, np.array([0.0, 1e-3, -0.7]))


def test_i0_gradient_holds_for_large_arguments():
    # d/dx I0 = I1; I1(30) is about 7.8e11, far out in the series. Central differences
    # with a step relative to x, one element at a time (no cancellation across elements).
    x = np.array([-30.0, -12.5, 0.0, 4.0, 30.0])
    v = Variable(x, dtype="float64")
    with GradientTape() as tape:
        total = ops.sum(ops.i0(v))
    got = _np(tape.gradient(total, v))
    h = 1e-6 * np.maximum(np.abs(x), 1.0)
    expected = (np.i0(x + h) - np.i0(x - h)) / (2 * h)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ binary float functions
def _divide_no_nan_ref(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, a / b)


# name -> (NumPy reference, domain of x1, domain of x2)
BINARY = {
    "arctan2": (np.arctan2, (-2.0, 2.0), (-2.0, 2.0)),
    "hypot": (np.hypot, (-2.0, 2.0), (-2.0, 2.0)),
    "logaddexp": (np.logaddexp, (-3.0, 3.0), (-3.0, 3.0)),
    "logaddexp2": (np.logaddexp2, (-3.0, 3.0), (-3.0, 3.0)),
    "fmax": (np.fmax, (-2.0, 2.0), (-2.0, 2.0)),
    "fmin": (np.fmin, (-2.0, 2.0), (-2.0, 2.0)),
    "fmod": (np.fmod, (-5.0, 5.0), (0.7, 1.9)),
    "divide_no_nan": (_divide_no_nan_ref, (-2.0, 2.0), (0.5, 2.0)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_float_values_match_numpy_with_broadcasting(name, dtype):
    ref, d1, d2 = BINARY[name]
    a, b = _sample(d1, (3, 4), dtype), _sample(d2, (4,), dtype)
    out = getattr(ops, name)(a, b)
    assert out.dtype == dtype and out.shape == (3, 4)
    np.testing.assert_allclose(_np(out), ref(a, b), rtol=2e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_float_gradients_match_finite_differences(name):
    _, d1, d2 = BINARY[name]
    check_grad(getattr(ops, name), _sample(d1, (3, 4)), _sample(d2, (1, 4)))


def test_divide_no_nan_is_zero_with_a_zero_gradient_where_the_divisor_is_zero():
    # Keras 3.15.1: divide_no_nan([1, -2, 0], [0, 4, 0]) = [0, -0.5, 0]
    a, b = np.array([1.0, -2.0, 0.0], "float32"), np.array([0.0, 4.0, 0.0], "float32")
    np.testing.assert_array_equal(_np(ops.divide_no_nan(a, b)), [0.0, -0.5, 0.0])
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.0, 4.0, 0.5])
    check_grad(ops.divide_no_nan, a, b, wrt=(0,))  # x2 jumps at 0: checked by hand below
    va, vb = Variable(a, dtype="float64"), Variable(b, dtype="float64")
    with GradientTape() as tape:
        total = ops.sum(ops.divide_no_nan(va, vb))
    ga, gb = (_np(g) for g in tape.gradient(total, [va, vb]))
    np.testing.assert_allclose(ga, [0.0, 1 / 4.0, 1 / 0.5])
    np.testing.assert_allclose(gb, [0.0, 2.0 / 16.0, -3.0 / 0.25])


def test_fmax_fmin_ignore_nan_and_fmod_keeps_the_sign_of_x1():
    # Keras 3.15.1: fmax([nan, 1, nan], [2, nan, nan]) = [2, 1, nan];
    # fmod([-7, 7, -7], [3, -3, -3]) = [-1, 1, -1] (floats and int32 alike)
    a = np.array([np.nan, 1.0, np.nan], "float32")
    b = np.array([2.0, np.nan, np.nan], "float32")
    np.testing.assert_array_equal(_np(ops.fmax(a, b)), [2.0, 1.0, np.nan])
    np.testing.assert_array_equal(_np(ops.fmin(a, b)), [2.0, 1.0, np.nan])
    x, y = np.array([-7, 7, -7]), np.array([3, -3, -3])
    np.testing.assert_array_equal(_np(ops.fmod(x.astype("f4"), y.astype("f4"))), [-1, 1, -1])
    out = ops.fmod(x.astype("int32"), y.astype("int32"))
    assert out.dtype == "int32" and _np(out).tolist() == [-1, 1, -1]


# (op, x1 dtype, x2 dtype) -> result dtype, recorded from Keras 3.15.1's numpy backend
BINARY_DTYPES = {
    "arctan2": {("int32", "int32"): "float32", ("float16", "int32"): "float16"},
    "logaddexp": {("int8", "int16"): "float32", ("bool", "bool"): "float32"},
    "logaddexp2": {("uint8", "int8"): "float32", ("float16", "float32"): "float32"},
    "hypot": {("int32", "int32"): "float32", ("bool", "bool"): "bool"},
    "heaviside": {("int32", "int32"): "float32", ("bool", "bool"): "bool"},
    "nextafter": {("int32", "int32"): "float32", ("float16", "int32"): "float16"},
    "divide_no_nan": {("int32", "int32"): "float32", ("bool", "bool"): "float32"},
    "fmax": {("int8", "int16"): "int16", ("bool", "bool"): "bool", ("float32", "int32"): "float32"},
    "fmin": {("uint8", "int8"): "int16", ("int32", "bool"): "int32"},
    "fmod": {
        ("bool", "bool"): "int32",
        ("int8", "int16"): "int16",
        ("float16", "int32"): "float16",
    },
    "gcd": {("int8", "int16"): "int16", ("uint8", "int8"): "int16", ("int32", "bool"): "int32"},
    "lcm": {("int32", "int32"): "int32"},
    "bitwise_and": {("bool", "bool"): "bool", ("int32", "bool"): "int32"},
    "bitwise_or": {("uint8", "int8"): "int16"},
    "bitwise_xor": {("int8", "int16"): "int16"},
    "left_shift": {("bool", "bool"): "int8", ("int32", "bool"): "int32"},
    "right_shift": {("uint8", "int8"): "int16"},
    "bitwise_left_shift": {("int8", "int16"): "int16"},
    "bitwise_right_shift": {("bool", "bool"): "int8"},
    "ldexp": {("int32", "int32"): "float32", ("float16", "int32"): "float16"},
    "isclose": {("float32", "int32"): "bool"},
}


@pytest.mark.parametrize(
    "name,d1,d2,expected",
    [(n, a, b, e) for n, table in sorted(BINARY_DTYPES.items()) for (a, b), e in table.items()],
)
def test_binary_result_dtypes_match_keras(name, d1, d2, expected):
    x1, x2 = np.array([1, 2, 3]).astype(d1), np.array([1, 1, 2]).astype(d2)
    out = getattr(ops, name)(x1, x2)
    assert out.dtype == expected


def test_python_scalars_are_weak_where_keras_keeps_them_so():
    # Keras 3.15.1: fmax(int32, 2.5) float32, fmax(int32, 2) int32, fmax(float16, 2) float16,
    # divide_no_nan(float16, 2.0) float16, left_shift(int8, 3) int8, gcd(int32, 4) int32.
    i32, f16 = np.array([1, 5], "int32"), np.array([1.0, 5.0], "float16")
    assert ops.fmax(i32, 2.5).dtype == "float32"
    assert ops.fmax(i32, 2).dtype == "int32"
    assert ops.fmax(f16, 2).dtype == "float16"
    assert ops.divide_no_nan(f16, 2.0).dtype == "float16"
    assert ops.left_shift(np.array([1, 2], "int8"), 3).dtype == "int8"
    assert ops.gcd(i32, 4).dtype == "int32"
    np.testing.assert_array_equal(_np(ops.fmax(i32, 2.5)), [2.5, 5.0])


# ------------------------------------------------------------------ no-gradient functions
def test_step_rounding_and_nextafter_values():
    # Keras 3.15.1: heaviside([-1, 0, 2], 0.5) = [0, 0.5, 1]; trunc([-1.7, 1.7]) = [-1, 1];
    # nextafter of int32 [1, 2] toward [2, 1] = [1, 2] (stepped in float64, then cast);
    # nextafter(float32 1, 2) = 1.0000001192092896; ldexp([1.5, 3], [2, -1]) = [6, 1.5].
    x = np.array([-1.0, 0.0, 2.0], "float32")
    np.testing.assert_array_equal(_np(ops.heaviside(x, np.array([0.5], "float32"))), [0, 0.5, 1])
    np.testing.assert_array_equal(_np(ops.trunc(np.array([-1.7, 1.7], "float32"))), [-1, 1])
    assert ops.trunc(np.array([3, -2], "int32")).dtype == "int32"
    i = ops.nextafter(np.array([1, 2], "int32"), np.array([2, 1], "int32"))
    assert _np(i).tolist() == [1.0, 2.0]
    f = ops.nextafter(np.array([1.0], "float32"), np.array([2.0], "float32"))
    assert _np(f).tolist() == [1.0000001192092896]
    out = ops.ldexp(np.array([1.5, 3.0], "float32"), np.array([2, -1], "int32"))
    assert out.dtype == "float32" and _np(out).tolist() == [6.0, 1.5]
    check_grad(lambda a: ops.ldexp(a, np.array([2, -1, 0])), np.array([1.5, 3.0, -0.25]))


def test_nan_to_num_defaults_custom_values_and_gradient():
    # Keras 3.15.1: nan_to_num([nan, inf, -inf, 2]) = [0, 3.4028235e38, -3.4028235e38, 2]
    x = np.array([np.nan, np.inf, -np.inf, 2.0], "float32")
    out = ops.nan_to_num(x)
    assert out.dtype == "float32"
    big = float(np.finfo("float32").max)
    np.testing.assert_array_equal(_np(out), [0.0, big, -big, 2.0])
    np.testing.assert_array_equal(
        _np(ops.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-5.0)), [1.0, 5.0, -5.0, 2.0]
    )
    assert ops.nan_to_num(np.array([1, 2], "int32")).dtype == "int32"
    check_grad(ops.nan_to_num, np.array([0.5, -1.0, 3.0]))


def test_predicates_match_numpy():
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, -2.0, 3.0], "float32")
    for name in ("isinf", "isneginf", "isposinf", "signbit", "isreal"):
        out = getattr(ops, name)(x)
        assert out.dtype == "bool"
        np.testing.assert_array_equal(_np(out), getattr(np, name)(x), err_msg=name)
    assert not _np(ops.signbit(np.array([True, False]))).any()
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(4,))
    c = a + RNG.normal(size=(3, 4)) * 1e-6
    for kw in ({}, {"rtol": 0.5}, {"atol": 1e-3}):
        np.testing.assert_array_equal(_np(ops.isclose(a, b, **kw)), np.isclose(a, b, **kw))
        assert bool(_np(ops.allclose(a, c, **kw))) == np.allclose(a, c, **kw)
    n = np.array([np.nan, 1.0])
    assert _np(ops.isclose(n, n, equal_nan=True)).tolist() == [True, True]
    assert not bool(_np(ops.allclose(n, n))) and bool(_np(ops.allclose(n, n, equal_nan=True)))


def test_isin_values_and_invert():
    # Keras 3.15.1: isin([1, 2, 3], [2, 5], invert=True) = [True, False, True]
    x, s = np.array([1, 2, 3]), np.array([2, 5])
    assert _np(ops.isin(x, s, invert=True)).tolist() == [True, False, True]
    m = RNG.integers(0, 6, size=(3, 4))
    np.testing.assert_array_equal(_np(ops.isin(m, [1, 4])), np.isin(m, [1, 4]))


def test_bitwise_and_integer_ops_match_numpy():
    a = RNG.integers(-50, 50, size=(3, 4)).astype("int32")
    b = RNG.integers(0, 5, size=(4,)).astype("int32")
    for name, ref in (
        ("bitwise_and", np.bitwise_and),
        ("bitwise_or", np.bitwise_or),
        ("bitwise_xor", np.bitwise_xor),
        ("bitwise_left_shift", np.left_shift),
        ("bitwise_right_shift", np.right_shift),
        ("left_shift", np.left_shift),
        ("right_shift", np.right_shift),
        ("gcd", np.gcd),
        ("lcm", np.lcm),
    ):
        out = getattr(ops, name)(a, b)
        assert out.dtype == "int32", name
        np.testing.assert_array_equal(_np(out), ref(a, b), err_msg=name)
    for name in ("bitwise_invert", "bitwise_not"):
        np.testing.assert_array_equal(_np(getattr(ops, name)(a)), np.invert(a))
    # Keras 3.15.1: bitwise_invert(int8 [0, 5]) = [-1, -6]; right_shift([-8, 8], 1) = [-4, 4];
    # gcd([12, -18], [8, 12]) = [4, 6]; lcm([4, -6], [6, 4]) = [12, 12]
    assert _np(ops.bitwise_invert(np.array([0, 5], "int8"))).tolist() == [-1, -6]
    assert _np(ops.right_shift(np.array([-8, 8], "int32"), 1)).tolist() == [-4, 4]
    assert _np(ops.gcd(np.array([12, -18]), np.array([8, 12]))).tolist() == [4, 6]
    assert _np(ops.lcm(np.array([4, -6]), np.array([6, 4]))).tolist() == [12, 12]
    assert _np(ops.bitwise_not(np.array([True, False]))).tolist() == [False, True]


def test_python_int_lists_are_int32_as_in_keras():
    out = ops.bitwise_and([3, 5, 6], [1, 4, 2])
    assert out.dtype == "int32" and _np(out).tolist() == [1, 4, 2]


def test_complex_parts():
    # Keras 3.15.1: angle(int32 [-2, 0, 3]) = [pi, 0, 0] float32; conj(1+2j) = 1-2j;
    # real(complex64) float32; imag(1+2j) = 2.
    a = ops.angle(np.array([-2, 0, 3], "int32"))
    assert a.dtype == "float32"
    np.testing.assert_allclose(_np(a), [np.pi, 0.0, 0.0], rtol=1e-7)
    z = np.array([1 + 2j, -3 - 0.5j], "complex64")
    np.testing.assert_array_equal(_np(ops.conj(z)), np.conj(z))
    np.testing.assert_array_equal(_np(ops.conjugate(z)), np.conj(z))
    assert ops.real(z).dtype == "float32" and _np(ops.real(z)).tolist() == [1.0, -3.0]
    assert _np(ops.imag(z)).tolist() == [2.0, -0.5]
    np.testing.assert_allclose(_np(ops.angle(z)), np.angle(z), rtol=1e-6)
    x = RNG.normal(size=(2, 3))
    np.testing.assert_array_equal(_np(ops.imag(x)), np.zeros((2, 3)))
    for op in (ops.real, ops.conj):
        np.testing.assert_array_equal(_np(op(x)), x)
        check_grad(op, x)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ops.ldexp([1.0], np.array([1.0], "float32")), "x2 dtype=float32"),
        (lambda: ops.ldexp([1.0], np.array([True])), "x2 dtype=bool"),
        (lambda: ops.bitwise_and(np.array([1.0]), [1]), "Received: x with dtype=float64"),
        (lambda: ops.bitwise_or([1], np.array([1.0], "float32")), "y with dtype=float32"),
        (lambda: ops.bitwise_invert(np.array([1.5])), "Received: x with dtype=float64"),
        (lambda: ops.left_shift(np.array([1.5]), 2), "Received: x with dtype=float64"),
        (lambda: ops.gcd(np.array([1.0]), [1]), "Received: x1 with dtype=float64"),
        (lambda: ops.lcm(np.array([True]), [False]), "Received: x1 with dtype=bool"),
    ],
)
def test_bad_dtypes_raise_type_errors_naming_the_argument(call, match):
    # Keras 3.15.1 raises TypeError for each of these (NumPy's ufunc errors for most); gcd and
    # lcm take one bool operand with an integer one, but not two bools.
    with pytest.raises(TypeError, match=match):
        call()
