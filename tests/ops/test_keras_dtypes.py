"""Result dtypes of the basic ops against Keras 3's.

The expected dtypes were recorded from Keras 3.15.1 (`KERAS_BACKEND=numpy`)
on the same inputs. NumPy's own promotion differs from Keras's in each case
below: it widens int32 sums to int64, computes float functions of integers in
float64 (float16 for bool and 8-bit integers), and an integer array with a
Python float in float64. Where Keras's NumPy backend itself shows a NumPy
artifact (sigmoid of int32 in float64), distkeras gives floatx, as Keras's
torch and JAX backends do.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy

I32 = np.array([[1, 2], [3, 4]], "int32")
U8 = np.array([[1, 2], [3, 4]], "uint8")
B = np.array([[True, False], [True, True]])
F32 = np.array([[1.5, 2.0], [3.0, 4.0]], "float32")

# (label, call, Keras 3.15.1's dtype)
CASES = [
    ("convert_to_tensor(int list)", lambda: ops.convert_to_tensor([1, 2]), "int32"),
    ("convert_to_tensor(float list)", lambda: ops.convert_to_tensor([1.0, 2]), "float32"),
    ("convert_to_tensor(bool list)", lambda: ops.convert_to_tensor([True]), "bool"),
    ("add(int lists)", lambda: ops.add([1, 2], [3, 4]), "int32"),
    ("sum(int list)", lambda: ops.sum([1, 2, 3]), "int32"),
    ("arange(5)", lambda: ops.arange(5), "int32"),
    ("arange(0.0, 1.0, 0.25)", lambda: ops.arange(0.0, 1.0, 0.25), "float32"),
    ("arange(2, 7, 2)", lambda: ops.arange(2, 7, 2), "int32"),
    ("argmax(f32)", lambda: ops.argmax(F32), "int32"),
    ("argmin(i32)", lambda: ops.argmin(I32, axis=1), "int32"),
    ("argsort(f32)", lambda: ops.argsort(F32), "int32"),
    ("count_nonzero(i32)", lambda: ops.count_nonzero(I32), "int32"),
    ("sum(i32)", lambda: ops.sum(I32), "int32"),
    ("sum(bool)", lambda: ops.sum(B), "int32"),
    ("sum(u8)", lambda: ops.sum(U8, axis=0), "uint32"),
    ("prod(i32)", lambda: ops.prod(I32), "int32"),
    ("prod(bool)", lambda: ops.prod(B), "int32"),
    ("cumsum(i32)", lambda: ops.cumsum(I32), "int32"),
    ("cumsum(bool)", lambda: ops.cumsum(B), "int32"),
    ("cumsum(u8)", lambda: ops.cumsum(U8, axis=1), "uint8"),
    ("sqrt(i32)", lambda: ops.sqrt(I32), "float32"),
    ("exp(bool)", lambda: ops.exp(B), "float32"),
    ("log(u8)", lambda: ops.log(U8), "float32"),
    ("tanh(i32)", lambda: ops.tanh(I32), "float32"),
    ("sin(u8)", lambda: ops.sin(U8), "float32"),
    ("floor(i32)", lambda: ops.floor(I32), "float32"),
    ("ceil(bool)", lambda: ops.ceil(B), "float32"),
    ("divide(i32, int)", lambda: ops.divide(I32, 2), "float32"),
    ("divide(bool, i32)", lambda: ops.divide(B, I32), "float32"),
    ("divide(u8, i32)", lambda: ops.divide(U8, I32), "float32"),
    ("add(i32, float)", lambda: ops.add(I32, 2.5), "float32"),
    ("multiply(float, i32)", lambda: ops.multiply(2.5, I32), "float32"),
    ("floor_divide(i32, f32)", lambda: ops.floor_divide(I32, F32), "float32"),
    ("floor_divide(i32, float)", lambda: ops.floor_divide(I32, 2.5), "float32"),
    ("mod(i32, f32)", lambda: ops.mod(I32, F32), "float32"),
    ("matmul(i32, f32)", lambda: ops.matmul(I32, F32), "float32"),
    ("dot(i32, f32)", lambda: ops.dot(I32, F32), "float32"),
    ("add(i32, int)", lambda: ops.add(I32, 3), "int32"),
]


@pytest.mark.parametrize("label", [c[0] for c in CASES])
def test_result_dtype_is_keras(label):
    _, call, expected = next(c for c in CASES if c[0] == label)
    assert str(to_numpy(call()).dtype) == expected


# Activations of integer inputs: NumPy kept the integers (sigmoid(int32) came out
# int32, all zeros and ones); Keras computes them in floating point.
@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "gelu", "elu", "selu"])
def test_activations_of_integers_are_float_values(name):
    fn = getattr(ops, name)
    got = to_numpy(fn(I32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, to_numpy(fn(I32.astype("float32"))), rtol=1e-6)


def test_values_are_unchanged_by_the_dtype_rules():
    np.testing.assert_array_equal(to_numpy(ops.arange(0.0, 1.0, 0.25)), [0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(to_numpy(ops.arange(2, 7, 2)), [2, 4, 6])
    np.testing.assert_array_equal(to_numpy(ops.cumsum(B)), [1, 1, 2, 3])
    np.testing.assert_allclose(to_numpy(ops.divide(I32, 2)), I32 / 2)
    np.testing.assert_array_equal(to_numpy(ops.argmax(F32, axis=1)), [1, 1])


def test_where_with_only_a_condition_gives_the_indices():
    # Keras 3: `ops.where(condition)` is `nonzero`, one index tensor per axis.
    rows, cols = ops.where(B)
    np.testing.assert_array_equal(to_numpy(rows), [0, 1, 1])
    np.testing.assert_array_equal(to_numpy(cols), [0, 0, 1])
    np.testing.assert_array_equal(to_numpy(ops.where(B, x1=1.0, x2=0.0)), B.astype("float32"))
    with pytest.raises(ValueError, match="x1"):
        ops.where(B, x1=1.0)


def test_python_ints_out_of_int32_range_are_refused():
    # Keras converts Python ints to int32; a value beyond it is an error, not a wrap.
    with pytest.raises(OverflowError):
        ops.convert_to_tensor([2**40])
