"""distkeras/ops/math.py: forward against NumPy / math, dtypes, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from distkeras.ops import math as dk_math
from tests.harness import check_grad

R = np.random.default_rng(5)
_ERF = np.vectorize(math.erf)


def _x(*shape, dtype="float32"):
    return R.normal(size=shape).astype(dtype)


def test_erf_rsqrt_forward_dtype_and_gradient():
    x = _x(3, 4)
    out = ops.erf(x)
    assert out.dtype == "float32"
    np.testing.assert_allclose(to_numpy(out), _ERF(x), rtol=1e-6, atol=1e-7)
    assert ops.erf(np.array([0, 1], "int32")).dtype == "float32"
    p = R.uniform(0.5, 2.0, size=(3, 4)).astype("float32")
    np.testing.assert_allclose(to_numpy(ops.rsqrt(p)), 1 / np.sqrt(p), rtol=1e-6)
    assert ops.rsqrt(p.astype("float64")).dtype == "float64"
    check_grad(ops.erf, _x(2, 3))
    check_grad(ops.rsqrt, R.uniform(0.5, 2.0, size=(2, 3)))


@pytest.mark.parametrize("scipy_available", [True, False])
def test_erfinv_inverts_erf(monkeypatch, scipy_available):
    if not scipy_available:
        monkeypatch.setattr(dk_math, "_special", lambda name: None)
        assert float(ops.erf(np.array(0.5))) == pytest.approx(math.erf(0.5), abs=1e-15)
    y = R.uniform(-0.99, 0.99, size=(3, 4))
    out = ops.erfinv(y)
    assert out.dtype == "float64"
    np.testing.assert_allclose(_ERF(to_numpy(out)), y, rtol=1e-12, atol=1e-13)
    assert ops.erfinv(y.astype("float32")).dtype == "float32"
    assert to_numpy(ops.erfinv(np.array([-1.0, 1.0]))).tolist() == [-np.inf, np.inf]
    check_grad(ops.erfinv, R.uniform(-0.9, 0.9, size=(2, 3)))


def test_logdet():
    a = _x(2, 3, 3) + 3 * np.eye(3, dtype="float32")
    out = ops.logdet(a)
    assert out.shape == (2,) and out.dtype == "float32"
    np.testing.assert_allclose(to_numpy(out), np.log(np.abs(np.linalg.det(a))), rtol=1e-5)
    # recorded from Keras 3.15.1's numpy backend: log|det| for a negative determinant
    assert float(ops.logdet(np.array([[-2.0, 0.0], [0.0, 1.0]]))) == pytest.approx(
        0.6931471805599453
    )
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 3\)"):
        ops.logdet(np.ones((2, 3)))
    check_grad(ops.logdet, R.normal(size=(2, 3, 3)) + 3 * np.eye(3))


def test_top_k():
    x = _x(3, 6)
    values, indices = ops.top_k(x, 3)
    order = np.argsort(-x, axis=-1, kind="stable")[:, :3]
    assert indices.dtype == "int32" and values.dtype == "float32"
    assert to_numpy(indices).tolist() == order.tolist()
    np.testing.assert_array_equal(to_numpy(values), np.take_along_axis(x, order, -1))
    # Keras 3.15.1's numpy backend gives values [3, 3, 2] here (indices [2, 1, 3]);
    # equal values come lower index first, as in TF and JAX.
    v, i = ops.top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), 3)
    assert to_numpy(v).tolist() == [[3.0, 3.0, 2.0]] and to_numpy(i).tolist() == [[1, 2, 3]]
    with pytest.raises(ValueError, match="Received: k=7"):
        ops.top_k(x, 7)
    check_grad(lambda a: ops.top_k(a, 2)[0], _x(2, 5))


def test_in_top_k():
    preds = np.array([[1.0, 3.0, 3.0, 2.0], [0.1, 0.5, 0.2, 0.9]])
    out = ops.in_top_k(np.array([2, 0]), preds, 2)
    # recorded from Keras 3.15.1's numpy backend (first row): [True, False]
    assert out.dtype == "bool" and to_numpy(out).tolist() == [True, False]
    assert to_numpy(ops.in_top_k([3, 2], preds, 3)).tolist() == [True, True]
    with pytest.raises(ValueError, match="targets.shape"):
        ops.in_top_k(np.array([[0]]), preds, 1)


IDS = np.array([0, 2, 0, -1, 2, 0])


def _np_segment(reduce, init, data, ids, n):
    out = np.full((n, *data.shape[1:]), init, dtype=data.dtype)
    for s in range(n):
        rows = data[ids == s]
        if len(rows):
            out[s] = reduce(rows, axis=0)
    return out


SEGMENTS = {
    "segment_sum": (ops.segment_sum, np.sum, 0.0),
    "segment_max": (ops.segment_max, np.max, -np.inf),
    "segment_min": (ops.segment_min, np.min, np.inf),
    "segment_prod": (ops.segment_prod, np.prod, 1.0),
}


@pytest.mark.parametrize("name", sorted(SEGMENTS))
def test_segment_reductions(name):
    op, reduce, init = SEGMENTS[name]
    data = _x(6, 2)
    for n in (None, 4):
        out = op(data, IDS, num_segments=n)
        ref = _np_segment(reduce, init, data, IDS, 3 if n is None else n)
        assert out.dtype == "float32"
        np.testing.assert_allclose(to_numpy(out), ref, rtol=1e-6)
    ints = op(np.arange(6, dtype="int32") + 1, IDS, sorted=True)
    assert ints.dtype == "int32"
    with pytest.raises(ValueError, match=r"segment_ids.shape=\(1, 6\)"):
        op(data, IDS[None])
    with pytest.raises(ValueError, match=r"data.shape=\(5, 2\)"):
        op(data[:5], IDS)
    # the non-empty segments 0 and 2 (an empty one is +-inf for max/min)
    check_grad(lambda d: op(d, IDS)[0::2], _x(6, 2).astype("float64"))


def test_segment_sum_matches_keras_and_prod_gradient_with_zeros():
    # recorded from Keras 3.15.1's numpy backend
    out = ops.segment_sum(np.array([1, 2, 3], "int32"), np.array([0, -1, 2]))
    assert to_numpy(out).tolist() == [1, 0, 3]
    out = ops.segment_max(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 2]), num_segments=4)
    assert to_numpy(out).tolist() == [2.0, -np.inf, 3.0, -np.inf]
    data = np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 4.0], [5.0, 1.5]])
    ids = np.array([0, 0, 1, 1])
    check_grad(lambda d: ops.segment_prod(d, ids), data)
    data[1, 1] = 2.0  # one zero in a segment
    check_grad(lambda d: ops.segment_prod(d, ids), data)


def test_extract_sequences():
    x = _x(2, 10)
    out = ops.extract_sequences(x, 4, 3)
    ref = np.stack([x[:, s : s + 4] for s in (0, 3, 6)], axis=1)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(to_numpy(out), ref)
    assert ops.extract_sequences(np.arange(10.0), 4, 3).shape == (3, 4)  # as Keras 3.15.1
    with pytest.raises(ValueError, match="Received: sequence_stride=0"):
        ops.extract_sequences(x, 4, 0)
    check_grad(lambda a: ops.extract_sequences(a, 3, 2), _x(2, 7))


def test_saturate_cast():
    x = np.array([-3.0, 300.5, 1e10, np.inf, 7.6])
    # recorded from Keras 3.15.1's numpy backend (first four)
    out = ops.saturate_cast(x, "uint8")
    assert out.dtype == "uint8" and to_numpy(out).tolist() == [0, 255, 255, 255, 7]
    out = ops.saturate_cast(x.astype("float32"), "int32")
    # the largest float32 below 2**31 (Keras's numpy backend wraps 1e10 to -2**31 instead)
    assert to_numpy(out).tolist() == [-3, 300, 2147483520, 2147483520, 7]
    out = ops.saturate_cast(np.array([70000, -5], "int32"), "float16")
    assert out.dtype == "float16" and to_numpy(out).tolist() == [65504.0, -5.0]
    check_grad(lambda a: ops.saturate_cast(a, "float64"), np.array([0.5, -1.25]))


def test_erfc_forward_dtype_gradient_and_without_scipy(monkeypatch):
    x = _x(3, 4)
    out = ops.erfc(x)
    assert out.dtype == "float32"
    np.testing.assert_allclose(to_numpy(out), 1 - _ERF(x), rtol=1e-6, atol=1e-7)
    assert ops.erfc(np.array([0, 1], "int32")).dtype == "float32"
    check_grad(ops.erfc, _x(2, 3))
    monkeypatch.setattr(dk_math, "_special", lambda name: None)
    np.testing.assert_allclose(to_numpy(ops.erfc(x)), 1 - _ERF(x), rtol=1e-6, atol=1e-7)


def test_cdist_against_numpy_dtypes_gradient_and_errors():
    x, y = _x(2, 3, 4), _x(2, 5, 4)
    out = ops.cdist(x, y)
    assert out.shape == (2, 3, 5) and out.dtype == "float32"
    expected = np.sqrt(((x[:, :, None] - y[:, None]) ** 2).sum(-1))
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-5)
    # Keras 3.15.1's compute_output_spec: float32 for ints, float64 with a float64 input
    assert ops.cdist(np.ones((2, 3), "int32"), np.zeros((4, 3), "int32")).dtype == "float32"
    assert ops.cdist(x[0], y[0].astype("float64")).dtype == "float64"
    check_grad(ops.cdist, _x(3, 2), _x(4, 2))
    # A zero distance has a zero gradient, not inf or nan.
    var = np.array([[1.0, 2.0]])
    check_grad(lambda a: ops.cdist(a, var), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"Received: x.shape=\(3,\), y.shape=\(2, 3\)"):
        ops.cdist(np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"must match. Received: x.shape=\(2, 3\)"):
        ops.cdist(np.ones((2, 3)), np.ones((2, 4)))


def test_complex_views_and_polar():
    pairs = np.array([[1.0, 2.0], [3.0, 4.0]])
    z = ops.view_as_complex(pairs)
    assert z.dtype == "complex64" and to_numpy(z).tolist() == [1 + 2j, 3 + 4j]
    back = ops.view_as_real(np.array([1 + 2j, 3 + 4j], "complex64"))
    assert back.dtype == "float32" and to_numpy(back).tolist() == pairs.tolist()
    assert ops.view_as_real(np.array([1 + 2j])).dtype == "float64"
    with pytest.raises(ValueError, match=r"Received shape: \(2, 3\)"):
        ops.view_as_complex(np.ones((2, 3)))
    r, t = np.array([1.0, 2.0]), np.array([0.5, 1.0])
    p = ops.polar(r, t)
    assert p.dtype == "complex64"  # as Keras 3.15.1, float64 inputs too
    np.testing.assert_allclose(to_numpy(p), r * np.exp(1j * t), rtol=1e-6)
    with pytest.raises(ValueError, match=r"angle.shape=\(3,\)"):
        ops.polar(r, np.ones(3))
