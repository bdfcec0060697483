"""Symbolic-op cases for `distkeras/ops/elementwise.py` (merged by test_keras_tensor.py).

name -> (function of symbolic-or-eager inputs, input specs without the batch axis); a spec
is (shape, dtype, kind) with kind 'normal' | 'pos' | 'bool' | 'int:N'.
"""

from __future__ import annotations

import numpy as np

from distkeras import ops

X = ((4,),)
P = ((4,), "float32", "pos")
I8 = ((4,), "int32", "int:8")
B = ((4,), "bool", "bool")
# +inf, NaN, -inf and a finite value in each row (multiplying normal data, no warnings)
SPECIAL = np.array([np.inf, np.nan, -np.inf, 1.0], "float32")

OP_CASES = {
    "allclose": (lambda a, b: ops.allclose(a, b, atol=0.5), [X, X]),
    "angle": (ops.angle, [X]),
    "arccos": (lambda a: ops.arccos(ops.tanh(a)), [X]),
    "arccosh": (lambda a: ops.arccosh(ops.add(a, 1.0)), [P]),
    "arcsin": (lambda a: ops.arcsin(ops.tanh(a)), [X]),
    "arcsinh": (ops.arcsinh, [X]),
    "arctan": (ops.arctan, [X]),
    "arctan2": (ops.arctan2, [X, X]),
    "arctanh": (lambda a: ops.arctanh(ops.tanh(a)), [X]),
    "bitwise_and": (ops.bitwise_and, [I8, I8]),
    "bitwise_invert": (ops.bitwise_invert, [I8]),
    "bitwise_left_shift": (ops.bitwise_left_shift, [I8, I8]),
    "bitwise_not": (ops.bitwise_not, [B]),
    "bitwise_or": (ops.bitwise_or, [I8, I8]),
    "bitwise_right_shift": (lambda a: ops.bitwise_right_shift(a, 1), [I8]),
    "bitwise_xor": (ops.bitwise_xor, [I8, B]),
    "cbrt": (ops.cbrt, [X]),
    "conj": (ops.conj, [X]),
    "conjugate": (ops.conjugate, [X]),
    "cosh": (ops.cosh, [X]),
    "deg2rad": (ops.deg2rad, [I8]),
    "divide_no_nan": (ops.divide_no_nan, [X, ((4,), "int32", "int:2")]),
    "exp2": (ops.exp2, [X]),
    "fabs": (ops.fabs, [X]),
    "fmax": (ops.fmax, [X, X]),
    "fmin": (lambda a: ops.fmin(a, 0.25), [X]),
    "fmod": (ops.fmod, [X, P]),
    "gcd": (ops.gcd, [I8, I8]),
    "heaviside": (lambda a: ops.heaviside(a, 0.5), [X]),
    "hypot": (ops.hypot, [X, X]),
    "i0": (ops.i0, [X]),
    "imag": (ops.imag, [X]),
    "isclose": (lambda a, b: ops.isclose(a, b, rtol=0.5), [X, X]),
    "isin": (lambda a: ops.isin(a, np.array([1, 3, 5], "int32")), [I8]),
    "isinf": (lambda a: ops.isinf(ops.multiply(a, SPECIAL)), [X]),
    "isneginf": (lambda a: ops.isneginf(ops.multiply(a, SPECIAL)), [X]),
    "isposinf": (lambda a: ops.isposinf(ops.multiply(a, SPECIAL)), [X]),
    "isreal": (ops.isreal, [X]),
    "lcm": (ops.lcm, [I8, I8]),
    "ldexp": (ops.ldexp, [X, I8]),
    "left_shift": (ops.left_shift, [I8, I8]),
    "logaddexp": (ops.logaddexp, [X, X]),
    "logaddexp2": (ops.logaddexp2, [X, X]),
    "nan_to_num": (lambda a: ops.nan_to_num(ops.multiply(a, SPECIAL), nan=-1.0, neginf=-9.0), [X]),
    "nextafter": (ops.nextafter, [X, X]),
    "rad2deg": (ops.rad2deg, [X]),
    "real": (ops.real, [X]),
    "right_shift": (ops.right_shift, [I8, I8]),
    "signbit": (ops.signbit, [X]),
    "sinc": (ops.sinc, [X]),
    "sinh": (ops.sinh, [X]),
    "tan": (ops.tan, [X]),
    "trunc": (lambda a: ops.trunc(ops.multiply(a, 3.0)), [X]),
}
