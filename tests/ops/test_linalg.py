"""distkeras.ops.linalg: values against NumPy and Keras 3.15.1, dtypes, errors, gradients."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

RNG = np.random.default_rng(7)
A = RNG.normal(size=(2, 3, 3))
B = RNG.normal(size=(2, 3, 2))
SPD = A @ np.swapaxes(A, -1, -2) + 3 * np.eye(3)
M3 = np.array([[1.0, 2, 0], [3, 1, 1], [0, 4, 2]], "float32")


def _sym(a):
    return ops.matmul(a, ops.transpose(a, (0, 2, 1))) + 3.0 * np.eye(3)


def close(got, want, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(to_numpy(got), want, rtol=rtol, atol=atol)


def test_top_level_and_namespace_names_match_keras():
    for name in ["cholesky", "cholesky_inverse", "det", "eig", "eigh", "inv", "lstsq"]:
        assert hasattr(ops, name) and hasattr(ops.linalg, name)
    for name in ["lu_factor", "matrix_rank", "pinv", "qr", "solve", "solve_triangular", "svd"]:
        assert hasattr(ops, name) and hasattr(ops.linalg, name)
    assert hasattr(ops, "slogdet") and hasattr(ops.linalg, "norm")


def test_forward_matches_numpy():
    close(ops.inv(A), np.linalg.inv(A))
    close(ops.det(A), np.linalg.det(A))
    sign, logdet = ops.slogdet(A)
    close(sign, np.linalg.slogdet(A)[0])
    close(logdet, np.linalg.slogdet(A)[1])
    close(ops.solve(A, B), np.linalg.solve(A, B))
    close(ops.solve(A[0], B[0, :, 0]), np.linalg.solve(A[0], B[0, :, 0]))
    close(ops.cholesky(SPD), np.linalg.cholesky(SPD))
    close(ops.cholesky(SPD, upper=True), np.linalg.cholesky(SPD, upper=True))
    w, v = ops.eigh(SPD)
    close(w, np.linalg.eigh(SPD)[0])
    close(np.abs(to_numpy(v)), np.abs(np.linalg.eigh(SPD)[1]))
    q, r = ops.qr(RNG.normal(size=(4, 3)))
    assert q.shape == (4, 3) and r.shape == (3, 3)
    q, r = ops.qr(A, mode="complete")
    close(to_numpy(q) @ to_numpy(r), A)
    u, s, vh = ops.svd(RNG.normal(size=(4, 3)))
    assert (u.shape, s.shape, vh.shape) == ((4, 4), (3,), (3, 3))
    close(ops.svd(A, compute_uv=False), np.linalg.svd(A, compute_uv=False))
    x = RNG.normal(size=(4, 3))
    close(ops.pinv(x), np.linalg.pinv(x))
    y = RNG.normal(size=(4, 2))
    close(ops.lstsq(x, y), np.linalg.lstsq(x, y, rcond=None)[0])
    assert ops.matrix_rank(np.array([[1.0, 2], [2, 4]], "float32")).dtype == "int32"
    assert int(ops.matrix_rank(A[0])) == 3


def test_float32_stays_float32():
    x = M3
    for out in [ops.inv(x), ops.det(x), ops.slogdet(x)[1], ops.pinv(x), ops.linalg.norm(x)]:
        assert out.dtype == "float32", out
    assert ops.eig(x)[0].dtype == "complex64"  # always complex, as JAX/TF/torch
    # int input: Keras's norm gives floatx
    assert ops.linalg.norm(np.array([[1, 2], [3, 4]], "int32"), ord="nuc").dtype == "float32"


def test_values_recorded_from_keras():
    # Recorded from Keras 3.15.1's numpy backend.
    lu, piv = ops.lu_factor(M3)
    close(lu, [[3.0, 1, 1], [0, 4, 2], [0.33333334, 0.41666666, -1.1666666]], rtol=1e-6)
    assert piv.dtype == "int32" and to_numpy(piv).tolist() == [1, 2, 2]
    close(ops.linalg.norm(np.array([[1, 2], [3, 4]], "int32"), ord="nuc"), 5.8309517)
    close(ops.linalg.norm(M3, ord=2), 5.197517, rtol=1e-6)
    close(ops.linalg.norm(M3, ord=-1), 3.0)
    close(ops.solve_triangular(M3, np.array([1.0, 2, 3], "float32"), lower=True), [1, -1, 3.5])
    want = [[0.2777778, -0.05555556], [-0.05555556, 0.11111112]]
    close(ops.cholesky_inverse(np.array([[2.0, 0], [1, 3]], "float32")), want)
    close(ops.cholesky_inverse(np.array([[2.0, 1], [0, 3]], "float32"), upper=True), want)
    sign, logdet = ops.slogdet(M3)
    close(sign, -1.0)
    close(logdet, 2.6390574, rtol=1e-6)


def test_batched_lu_factor_matches_the_2d_one():
    lu, piv = ops.lu_factor(A)
    for i in range(2):
        lu_i, piv_i = ops.lu_factor(A[i])
        close(to_numpy(lu)[i], to_numpy(lu_i))
        assert to_numpy(piv)[i].tolist() == to_numpy(piv_i).tolist()
    # P A = L U
    lu1, piv1 = (to_numpy(t) for t in ops.lu_factor(A[0]))
    perm = np.arange(3)
    for j, p in enumerate(piv1):
        perm[[j, p]] = perm[[p, j]]
    lower = np.tril(lu1, -1) + np.eye(3)
    close(lower @ np.triu(lu1), A[0][perm], rtol=1e-10)


@pytest.mark.parametrize("ord_", [None, 1, -1, 2, -2, np.inf, -np.inf, "fro", "nuc"])
def test_matrix_norms(ord_):
    close(ops.linalg.norm(A, ord=ord_, axis=(1, 2)), np.linalg.norm(A, ord=ord_, axis=(1, 2)))
    want = np.linalg.norm(A, ord=ord_, axis=(2, 1), keepdims=True)
    close(ops.linalg.norm(A, ord=ord_, axis=(2, 1), keepdims=True), want)
    check_grad(lambda a: ops.linalg.norm(a, ord=ord_, axis=(1, 2)), A)


@pytest.mark.parametrize("ord_", [None, 0, 1, -1, 2, 3, np.inf, -np.inf, 0.5])
def test_vector_norms(ord_):
    close(ops.linalg.norm(A, ord=ord_, axis=1), np.linalg.norm(A, ord=ord_, axis=1))
    close(ops.linalg.norm(A[0, 0], ord=ord_), np.linalg.norm(A[0, 0], ord=ord_))
    if ord_ != 0:
        check_grad(lambda a: ops.linalg.norm(a, ord=ord_, axis=-1), A)


def test_norm_without_axis_and_keepdims():
    close(ops.linalg.norm(A), np.linalg.norm(A))
    close(ops.linalg.norm(A, keepdims=True), np.linalg.norm(A, keepdims=True))
    close(ops.linalg.norm(A[0], ord=1), np.linalg.norm(A[0], ord=1))


def test_errors_name_the_argument_and_value():
    with pytest.raises(ValueError, match="Cholesky decomposition failed"):
        ops.cholesky(np.array([[1.0, 2], [2, 1]]))
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        ops.inv(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"Expected a square matrix.*\(2, 3\)"):
        ops.det(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Received: mode=r"):
        ops.qr(M3, mode="r")
    with pytest.raises(ValueError, match=r"rank >= 2. Received input with shape \(3,\)"):
        ops.inv(np.ones(3))
    with pytest.raises(ValueError, match="Received: ord=bad"):
        ops.linalg.norm(M3, ord="bad")
    with pytest.raises(ValueError, match="Received: ord=fro"):
        ops.linalg.norm(M3[0], ord="fro")
    with pytest.raises(ValueError, match="Received: a.shape"):
        ops.lstsq(np.ones((2, 2, 2)), np.ones(2))


def test_failures_are_nan_when_invalid_is_ignored():
    # the state symbolic shape inference runs in, on stand-in arrays of ones
    with np.errstate(invalid="ignore"):
        assert np.isnan(to_numpy(ops.inv(np.ones((2, 2))))).all()
        assert np.isnan(to_numpy(ops.cholesky(np.ones((2, 3, 3))))).all()
        assert ops.solve(np.ones((2, 3, 3)), np.ones((2, 3, 4))).shape == (2, 3, 4)


def test_gradients_match_finite_differences():
    check_grad(ops.inv, A)
    check_grad(ops.det, A)
    check_grad(lambda a: ops.slogdet(a)[1], A)
    check_grad(ops.solve, A, B)
    check_grad(ops.solve, A[0], B[0, :, 0])
    check_grad(lambda a, b: ops.solve_triangular(a, b, lower=True), A, B)
    check_grad(lambda a, b: ops.solve_triangular(a, b), A, B[..., 0])
    check_grad(ops.cholesky_inverse, A + 3 * np.eye(3))
    check_grad(lambda a: ops.cholesky(_sym(a)), A)
    check_grad(lambda a: ops.cholesky(_sym(a), upper=True), A)
    check_grad(lambda a: ops.eigh(_sym(a))[0], A)
    check_grad(lambda a: ops.eigh(_sym(a))[1] ** 2, A)  # squared: the sign is arbitrary
    check_grad(lambda a: ops.qr(a)[0], RNG.normal(size=(4, 3)))
    check_grad(lambda a: ops.qr(a)[1], RNG.normal(size=(2, 4, 3)))
    check_grad(lambda a: ops.svd(a, compute_uv=False), RNG.normal(size=(4, 3)))
    check_grad(lambda a: ops.svd(a)[1], RNG.normal(size=(3, 4)))
    for shape in [(4, 3), (3, 5), (2, 3, 3)]:  # u and vh squared: their signs are arbitrary
        x = RNG.normal(size=shape)
        check_grad(lambda a: ops.svd(a, full_matrices=False)[0] ** 2, x)
        check_grad(lambda a: ops.svd(a, full_matrices=False)[2] ** 2, x)
        check_grad(lambda a: ops.matmul(*ops.svd(a, full_matrices=False)[::2]), x)
    check_grad(lambda a: ops.svd(a)[0] ** 2 + ops.svd(a)[1], RNG.normal(size=(3, 3)))
    check_grad(ops.pinv, RNG.normal(size=(4, 3)))
    check_grad(ops.pinv, RNG.normal(size=(3, 5)))
    check_grad(ops.lstsq, RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2)))
    check_grad(ops.lstsq, RNG.normal(size=(5, 3)), RNG.normal(size=(5,)))


def test_svd_gradient_through_u_of_full_matrices_is_refused():
    from distkeras.backend import GradientTape, Variable

    x = Variable(RNG.normal(size=(4, 2)))
    with GradientTape() as tape:
        loss = ops.sum(ops.svd(x)[0])
    with pytest.raises(NotImplementedError, match="full_matrices=True"):
        tape.gradient(loss, x)


def test_qr_gradients_of_wide_and_complete_inputs():
    from distkeras.backend import GradientTape, Variable

    wide = RNG.normal(size=(2, 3, 5))
    check_grad(lambda a: ops.qr(a)[0] ** 2, wide)  # squared: column signs follow LAPACK's
    check_grad(lambda a: ops.qr(a)[1] * ops.sign(ops.qr(a)[1]), wide)
    check_grad(lambda a: ops.qr(a, mode="complete")[1] ** 2, wide[0])
    x = Variable(RNG.normal(size=(4, 2)))
    with GradientTape() as tape:
        q, r = ops.qr(x, mode="complete")
        loss = ops.sum(r)
    with pytest.raises(NotImplementedError, match="Received: x.shape=\\(4, 2\\), mode='complete'"):
        tape.gradient(loss, x)


@pytest.mark.parametrize("ord_", [None, "fro", "nuc", 1, -1, 2, -2, np.inf])
def test_top_level_norm_is_keras_matrix_norm(ord_):
    # keras.ops.norm is keras.ops.linalg.norm: ord=2 over a matrix is its largest
    # singular value (the old top-level op gave the Frobenius norm, ord=1 the sum).
    x = np.arange(9.0).reshape(3, 3) - 2.0
    expected = np.linalg.norm(x, ord_)
    np.testing.assert_allclose(to_numpy(ops.norm(x, ord=ord_)), expected, rtol=1e-10)
    np.testing.assert_allclose(to_numpy(ops.linalg.norm(x, ord=ord_)), expected, rtol=1e-10)
