"""Sorting, searching, statistics and product ops: forward against NumPy, dtypes as
Keras gives them, gradients against finite differences, and argument errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

RNG = np.random.default_rng(11)
A = RNG.normal(size=(3, 4)).astype("float32")
A_NAN = A.copy()
A_NAN[0, 1] = A_NAN[2, 0] = A_NAN[2, 3] = np.nan
ALL_NAN_ROW = A_NAN.copy()
ALL_NAN_ROW[1] = np.nan
I32 = RNG.integers(0, 5, size=(3, 4)).astype("int32")


def _np(x):
    if isinstance(x, (tuple, list)):
        return [to_numpy(v) for v in x]
    return to_numpy(x)


def _same(got, expected, rtol=1e-5, dtype=None):
    got = to_numpy(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == np.dtype(dtype or expected.dtype), (got.dtype, dtype or expected.dtype)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-6, equal_nan=True)


# ---------------------------------------------------------------- forward against NumPy
FORWARD = {
    "einsum_matmul": (
        lambda a: ops.einsum("ij,kj->ik", a, a),
        lambda a: np.einsum("ij,kj->ik", a, a),
    ),
    "einsum_implicit": (
        lambda a: ops.einsum("ij,jk", a, a.T),
        lambda a: np.einsum("ij,jk", a, a.T),
    ),
    "einsum_ellipsis": (
        lambda a: ops.einsum("...j,j->...", a, a[0]),
        lambda a: np.einsum("...j,j->...", a, a[0]),
    ),
    "einsum_trace": (
        lambda a: ops.einsum("ii->i", a[:, :3]),
        lambda a: np.einsum("ii->i", a[:, :3]),
    ),
    "outer": (lambda a: ops.outer(a[0], a[1, :3]), lambda a: np.outer(a[0], a[1, :3])),
    "inner": (lambda a: ops.inner(a, a[:2]), lambda a: np.inner(a, a[:2])),
    "inner_scalar": (lambda a: ops.inner(a, 2.0), lambda a: np.inner(a, np.float32(2.0))),
    "vdot": (lambda a: ops.vdot(a, a[::-1]), lambda a: np.vdot(a, a[::-1])),
    "kron": (lambda a: ops.kron(a, a[:2, :2]), lambda a: np.kron(a, a[:2, :2])),
    "kron_ranks": (lambda a: ops.kron(a[0], a), lambda a: np.kron(a[0], a)),
    "cross3": (lambda a: ops.cross(a[:, :3], a[:, 1:]), lambda a: np.cross(a[:, :3], a[:, 1:])),
    "cross2": (lambda a: ops.cross(a[:, :2], a[:, 2:]), lambda a: np.cross(a[:, :2], a[:, 2:])),
    "cross23": (lambda a: ops.cross(a[:, :2], a[:, 1:]), lambda a: np.cross(a[:, :2], a[:, 1:])),
    "cross_axis": (
        lambda a: ops.cross(a[:3], a[:, ::-1][:3], axisa=0, axisb=0, axisc=0),
        lambda a: np.cross(a[:3], a[:, ::-1][:3], axisa=0, axisb=0, axisc=0),
    ),
    "sort": (lambda a: ops.sort(a), np.sort),
    "sort_axis0": (lambda a: ops.sort(a, axis=0), lambda a: np.sort(a, axis=0)),
    "sort_none": (lambda a: ops.sort(a, axis=None), lambda a: np.sort(a, axis=None)),
    "median": (lambda a: ops.median(a), np.median),
    "median_axis": (
        lambda a: ops.median(a, axis=0, keepdims=True),
        lambda a: np.median(a, axis=0, keepdims=True),
    ),
    "quantile_q_list": (
        lambda a: ops.quantile(a, [0.1, 0.5, 0.95], axis=1),
        lambda a: np.quantile(a, [0.1, 0.5, 0.95], axis=1).astype("float32"),
    ),
    "quantile_axes": (
        lambda a: ops.quantile(a, 0.3, axis=(0, 1), keepdims=True),
        lambda a: np.quantile(a, 0.3, axis=(0, 1), keepdims=True).astype("float32"),
    ),
    "percentile": (
        lambda a: ops.percentile(a, [[20.0], [75.0]], axis=0),
        lambda a: np.percentile(a, [[20.0], [75.0]], axis=0).astype("float32"),
    ),
    "average": (lambda a: ops.average(a, axis=1), lambda a: np.average(a, axis=1)),
    "average_weights": (
        lambda a: ops.average(a, axis=0, weights=np.abs(a[:, 0]) + 0.1),
        lambda a: np.average(a, axis=0, weights=np.abs(a[:, 0]) + 0.1),
    ),
    "average_full_weights": (
        lambda a: ops.average(a, weights=np.abs(a)),
        lambda a: np.average(a, weights=np.abs(a)),
    ),
    "ptp": (
        lambda a: ops.ptp(a, axis=1, keepdims=True),
        lambda a: np.ptp(a, axis=1, keepdims=True),
    ),
    "cumprod": (lambda a: ops.cumprod(a, axis=1), lambda a: np.cumprod(a, axis=1)),
    "cumprod_flat": (lambda a: ops.cumprod(a), np.cumprod),
    "diff": (lambda a: ops.diff(a), np.diff),
    "diff2_axis0": (lambda a: ops.diff(a, n=2, axis=0), lambda a: np.diff(a, n=2, axis=0)),
    "trapezoid": (lambda a: ops.trapezoid(a, dx=0.3), lambda a: np.trapezoid(a, dx=0.3)),
    "trapezoid_x": (
        lambda a: ops.trapezoid(a, x=np.array([0.0, 0.5, 2.0], "float32"), axis=0),
        lambda a: np.trapezoid(a, x=np.array([0.0, 0.5, 2.0], "float32"), axis=0),
    ),
    "corrcoef": (lambda a: ops.corrcoef(a), lambda a: np.corrcoef(a).astype("float32")),
    "select": (
        lambda a: ops.select([a > 0.5, a < -0.5], [a, -a], 7.0),
        lambda a: np.select([a > 0.5, a < -0.5], [a, -a], np.float32(7.0)),
    ),
    "nansum": (lambda a: ops.nansum(A_NAN, axis=1), lambda a: np.nansum(A_NAN, axis=1)),
    "nanmean": (lambda a: ops.nanmean(A_NAN, axis=0), lambda a: np.nanmean(A_NAN, axis=0)),
    "nanmax": (lambda a: ops.nanmax(A_NAN, axis=1), lambda a: np.nanmax(A_NAN, axis=1)),
    "nanmin": (lambda a: ops.nanmin(A_NAN), lambda a: np.nanmin(A_NAN)),
    "nanprod": (lambda a: ops.nanprod(A_NAN, axis=1), lambda a: np.nanprod(A_NAN, axis=1)),
    "nanvar": (lambda a: ops.nanvar(A_NAN, axis=1), lambda a: np.nanvar(A_NAN, axis=1)),
    "nanstd": (lambda a: ops.nanstd(A_NAN), lambda a: np.nanstd(A_NAN)),
    "nanmedian": (lambda a: ops.nanmedian(A_NAN, axis=1), lambda a: np.nanmedian(A_NAN, axis=1)),
    "nanquantile": (
        lambda a: ops.nanquantile(A_NAN, [0.2, 0.9], axis=1, method="nearest"),
        lambda a: np.nanquantile(A_NAN, [0.2, 0.9], axis=1, method="nearest"),
    ),
    "nanpercentile": (
        lambda a: ops.nanpercentile(A_NAN, 40, axis=0),
        lambda a: np.nanpercentile(A_NAN, 40, axis=0).astype("float32"),
    ),
    "nancumsum": (lambda a: ops.nancumsum(A_NAN, axis=1), lambda a: np.nancumsum(A_NAN, axis=1)),
    "nancumprod": (lambda a: ops.nancumprod(A_NAN), lambda a: np.nancumprod(A_NAN)),
}


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_forward_matches_numpy(name):
    ours, ref = FORWARD[name]
    _same(ours(A), ref(A))


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_methods_match_numpy(method):
    x = RNG.normal(size=(5, 6))
    q = [0.0, 0.125, 0.25, 0.5, 0.7, 1.0]
    _same(ops.quantile(x, q, axis=1, method=method), np.quantile(x, q, axis=1, method=method))
    _same(
        ops.nanquantile(A_NAN, q, axis=1, method=method),
        np.nanquantile(A_NAN, q, axis=1, method=method).astype("float32"),
    )


def test_nan_reductions_of_all_nan_rows():
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        for ours, ref in [
            (ops.nanmean, np.nanmean),
            (ops.nanmax, np.nanmax),
            (ops.nanmin, np.nanmin),
            (ops.nanvar, np.nanvar),
            (ops.nanmedian, np.nanmedian),
        ]:
            _same(ours(ALL_NAN_ROW, axis=1), ref(ALL_NAN_ROW, axis=1))
    # Keras returns -1 where a row is all NaN (recorded from Keras 3.15.1's numpy backend)
    got = _np(ops.nanargmax(ALL_NAN_ROW, axis=1))
    assert got.dtype == "int32" and got.tolist() == [
        int(np.nanargmax(ALL_NAN_ROW[0])),
        -1,
        int(np.nanargmax(ALL_NAN_ROW[2])),
    ]
    got = _np(ops.nanargmin(ALL_NAN_ROW, axis=1, keepdims=True))
    assert got.shape == (3, 1) and got[1, 0] == -1 and got[0, 0] == np.nanargmin(A_NAN[0])
    assert _np(ops.nanargmax(A_NAN)) == np.nanargmax(A_NAN)
    assert np.isnan(_np(ops.median(A_NAN, axis=1))).tolist() == [True, False, True]


def test_correlate_modes_and_lengths_match_numpy():
    for n, m in [(5, 3), (3, 5), (4, 4), (6, 2), (2, 6), (4, 5), (1, 1)]:
        a, v = RNG.normal(size=n).astype("float32"), RNG.normal(size=m).astype("float32")
        for mode in ("valid", "same", "full"):
            _same(ops.correlate(a, v, mode=mode), np.correlate(a, v, mode=mode))


def test_searching_and_counting_match_numpy():
    seq = np.sort(RNG.normal(size=7)).astype("float32")
    for side in ("left", "right"):
        _same(
            ops.searchsorted(seq, A, side=side), np.searchsorted(seq, A, side=side), dtype="int32"
        )
    _same(ops.searchsorted(seq, seq, side="right"), np.arange(1, 8), dtype="int32")
    _same(ops.digitize(A, seq), np.digitize(A, seq), dtype="int32")
    part = _np(ops.argpartition(A, 2, axis=1))
    assert part.dtype == "int32"
    np.testing.assert_array_equal(np.sort(part, axis=1), np.tile(np.arange(4), (3, 1)))
    kth = np.take_along_axis(A, part, axis=1)[:, 2]
    np.testing.assert_array_equal(kth, np.sort(A, axis=1)[:, 2])
    for got, want in zip(ops.nonzero(I32), np.nonzero(I32)):
        _same(got, want, dtype="int32")
    _same(ops.bincount(I32[0]), np.bincount(I32[0]), dtype="int32")
    _same(ops.bincount(I32, minlength=7), [np.bincount(r, minlength=7) for r in I32], dtype="int32")
    _same(ops.bincount(I32[0], weights=A[0]), np.bincount(I32[0], weights=A[0]), dtype="float32")
    counts, edges = ops.histogram(A.ravel(), bins=5, range=(-1.0, 1.0))
    ref_counts, ref_edges = np.histogram(A.ravel(), bins=5, range=(-1.0, 1.0))
    _same(counts, ref_counts, dtype="int64")
    _same(edges, ref_edges.astype("float32"))


def test_unique_with_every_return_and_size():
    x = np.array([3, 1, 3, 2, 1, 3], "int32")
    values, index, inverse, counts = ops.unique(
        x, return_index=True, return_inverse=True, return_counts=True
    )
    ref = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    for got, want, dtype in zip((values, index, inverse, counts), ref, ("int32", *["int64"] * 3)):
        _same(got, want, dtype=dtype)
    # recorded from Keras 3.15.1's numpy backend: ops.unique(np.array([3, 1, 3, 2]), size=5,
    # return_index=True, return_counts=True, fill_value=-1)
    got = ops.unique(x[:4], size=5, return_index=True, return_counts=True, fill_value=-1)
    assert [g.tolist() for g in _np(got)] == [[1, 2, 3, -1, -1], [1, 3, 0, 1, 1], [1, 1, 2, 0, 0]]
    assert _np(ops.unique(x, size=2)).tolist() == [1, 2]
    rows = np.array([[1, 2], [0, 5], [1, 2]], "float32")
    _same(ops.unique(rows, axis=0), np.unique(rows, axis=0))


# ---------------------------------------------------------------- dtypes as Keras gives them
F32, I = A, I32
BOOL = A > 0
# op -> (our call, dtype recorded from Keras 3.15.1's numpy backend)
DTYPES = {
    "einsum_int_float": (lambda: ops.einsum("ij,kj->ik", I, F32), "float32"),
    "einsum_bool": (lambda: ops.einsum("ij,kj->ik", BOOL, BOOL), "bool"),
    "einsum_int8": (lambda: ops.einsum("ij,kj->ik", I.astype("int8"), I.astype("int8")), "int32"),
    "outer_int_float": (lambda: ops.outer(I[0], F32[0]), "float32"),
    "outer_bool": (lambda: ops.outer(BOOL[0], BOOL[0]), "bool"),
    "vdot_int": (lambda: ops.vdot(I, I), "int32"),
    "kron_int_float": (lambda: ops.kron(I, F32), "float32"),
    "cross_int": (lambda: ops.cross(I[:, :3], I[:, 1:]), "int32"),
    "sort_bool": (lambda: ops.sort(BOOL), "bool"),
    "median_int": (lambda: ops.median(I), "float32"),
    "median_f16": (lambda: ops.median(F32.astype("float16")), "float16"),
    "quantile_bool": (lambda: ops.quantile(BOOL, 0.5), "float32"),
    "percentile_int": (lambda: ops.percentile(I, 50), "float32"),
    "average_int": (lambda: ops.average(I), "float32"),
    "average_weights_int": (lambda: ops.average(F32, weights=I), "float32"),
    "ptp_int": (lambda: ops.ptp(I), "int32"),
    "cumprod_bool": (lambda: ops.cumprod(BOOL), "int32"),
    "cumprod_int8": (lambda: ops.cumprod(I.astype("int8")), "int8"),
    "diff_bool": (lambda: ops.diff(BOOL), "bool"),
    "trapezoid_int": (lambda: ops.trapezoid(I), "float32"),
    "corrcoef_int": (lambda: ops.corrcoef(I), "float32"),
    "corrcoef_int64": (lambda: ops.corrcoef(I.astype("int64")), "float64"),
    "correlate_int": (lambda: ops.correlate(I[0], I[1]), "float32"),
    "select_int": (lambda: ops.select([BOOL], [I]), "int32"),
    "nansum_bool": (lambda: ops.nansum(BOOL), "int32"),
    "nansum_int": (lambda: ops.nansum(I), "int32"),
    "nanmean_int": (lambda: ops.nanmean(I), "float32"),
    "nanmax_int": (lambda: ops.nanmax(I), "int32"),
    "nanargmax_int": (lambda: ops.nanargmax(I), "int32"),
    "nanprod_bool": (lambda: ops.nanprod(BOOL), "int32"),
    "nanstd_int": (lambda: ops.nanstd(I), "float32"),
    "nanvar_f16": (lambda: ops.nanvar(F32.astype("float16")), "float16"),
    "nanmedian_int": (lambda: ops.nanmedian(I), "float32"),
    "nanpercentile_int": (lambda: ops.nanpercentile(I, 50), "float32"),
    "nancumsum_bool": (lambda: ops.nancumsum(BOOL), "int32"),
    "nancumsum_int": (lambda: ops.nancumsum(I), "int32"),
    "histogram_int_edges": (lambda: ops.histogram(I[0], bins=3)[1], "float64"),
}


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_dtypes_as_keras(name):
    fn, dtype = DTYPES[name]
    assert _np(fn()).dtype == dtype


def test_int_results_match_numpy_values():
    _same(ops.nansum(I, axis=0), np.sum(I, axis=0).astype("int32"))
    _same(ops.nancumsum(BOOL, axis=1), np.cumsum(BOOL, axis=1).astype("int32"))
    _same(ops.cumprod(I, axis=0), np.cumprod(I, axis=0).astype("int32"))
    _same(ops.ptp(I, axis=0), np.ptp(I, axis=0))
    _same(ops.diff(BOOL, axis=0), np.diff(BOOL, axis=0))
    _same(ops.einsum("ij,kj->ik", I.astype("int8"), I.astype("int8")), np.einsum("ij,kj->ik", I, I))


# ---------------------------------------------------------------- gradients
X64 = RNG.normal(size=(3, 4))
W64 = RNG.uniform(0.5, 2.0, size=(3, 4))
GRADS = {
    "einsum_attention": (lambda q, k: ops.einsum("bqd,bkd->bqk", q, k), [(2, 3, 4), (2, 5, 4)]),
    "einsum_broadcast": (lambda a, b: ops.einsum("...ij,jk->...ik", a, b), [(2, 1, 3), (3, 2)]),
    "einsum_summed_only": (lambda a, b: ops.einsum("ij,k->i", a, b), [(3, 4), (2,)]),
    "einsum_diagonal": (lambda a: ops.einsum("ii->i", a), [(3, 3)]),
    "einsum_trace_implicit": (lambda a, b: ops.einsum("ij,ji", a, b), [(3, 4), (4, 3)]),
    "outer": (ops.outer, [(3,), (2, 2)]),
    "inner": (ops.inner, [(3, 4), (2, 4)]),
    "vdot": (ops.vdot, [(3, 4), (12,)]),
    "kron": (ops.kron, [(2, 3), (3,)]),
    "cross": (ops.cross, [(4, 3), (1, 3)]),
    "cross2": (ops.cross, [(4, 2), (4, 2)]),
    "sort": (lambda a: ops.sort(a, axis=0), [(3, 4)]),
    "median": (lambda a: ops.median(a, axis=1), [(3, 4)]),
    "quantile": (lambda a: ops.quantile(a, [0.3, 0.8], axis=0, keepdims=True), [(5, 2)]),
    "percentile_midpoint": (lambda a: ops.percentile(a, 30, method="midpoint"), [(3, 4)]),
    "average": (lambda a, w: ops.average(a, axis=1, weights=w), [(3, 4), (4,)]),
    "ptp": (lambda a: ops.ptp(a, axis=0), [(3, 4)]),
    "cumprod": (lambda a: ops.cumprod(a, axis=1), [(3, 4)]),
    "diff": (lambda a: ops.diff(a, n=2), [(3, 4)]),
    "trapezoid": (lambda y, x: ops.trapezoid(y, x, axis=0), [(3, 4), (3,)]),
    "corrcoef": (ops.corrcoef, [(3, 5)]),
    "correlate": (lambda a, v: ops.correlate(a, v, mode="full"), [(5,), (3,)]),
    "select": (lambda a, b: ops.select([X64 > 0], [a], b), [(3, 4), (3, 4)]),
    "bincount_weights": (lambda w: ops.bincount(I32, weights=w, minlength=6), [(3, 4)]),
    "nansum": (lambda a: ops.nansum(ops.where(np.isnan(A_NAN), np.nan, a), axis=1), [(3, 4)]),
    "nanmean": (lambda a: ops.nanmean(ops.where(np.isnan(A_NAN), np.nan, a), axis=0), [(3, 4)]),
    "nanvar": (lambda a: ops.nanvar(ops.where(np.isnan(A_NAN), np.nan, a), axis=1), [(3, 4)]),
    "nanstd": (lambda a: ops.nanstd(ops.where(np.isnan(A_NAN), np.nan, a)), [(3, 4)]),
    "nanmax": (lambda a: ops.nanmax(ops.where(np.isnan(A_NAN), np.nan, a), axis=1), [(3, 4)]),
    "nanmin": (lambda a: ops.nanmin(ops.where(np.isnan(A_NAN), np.nan, a), axis=0), [(3, 4)]),
    "nanprod": (lambda a: ops.nanprod(ops.where(np.isnan(A_NAN), np.nan, a), axis=1), [(3, 4)]),
    "nanmedian": (lambda a: ops.nanmedian(ops.where(np.isnan(A_NAN), np.nan, a), axis=1), [(3, 4)]),
    "nancumsum": (lambda a: ops.nancumsum(ops.where(np.isnan(A_NAN), np.nan, a), axis=1), [(3, 4)]),
    "nancumprod": (lambda a: ops.nancumprod(ops.where(np.isnan(A_NAN), np.nan, a)), [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients_match_finite_differences(name):
    fn, shapes = GRADS[name]
    check_grad(fn, *[RNG.normal(size=s) for s in shapes], rtol=1e-4, atol=1e-6)


def test_cumprod_gradient_with_zeros():
    x = RNG.normal(size=(3, 5))
    x[0, 1] = x[1, 4] = x[2, 0] = x[2, 3] = 0.0
    check_grad(lambda a: ops.cumprod(a, axis=1), x)
    check_grad(lambda a: ops.cumprod(a, axis=0), x)


# ---------------------------------------------------------------- argument errors
ERRORS = [
    (lambda: ops.einsum("ij,jk->ik", A), ValueError, "Received: subscripts="),
    (lambda: ops.einsum("ijk->i", A), ValueError, "Received: subscripts="),
    (lambda: ops.cross(A, A), ValueError, "Received: x1.shape=.3, 4."),
    (lambda: ops.sort(A, axis=2), ValueError, "Received: axis=2"),
    (lambda: ops.searchsorted(A, A), ValueError, r"sorted_sequence.shape=\(3, 4\)"),
    (lambda: ops.searchsorted(A[0], A, side="middle"), ValueError, "side='middle'"),
    (lambda: ops.argpartition(A, 4), ValueError, "kth=4"),
    (lambda: ops.bincount(A), ValueError, "x.dtype=float32"),
    (lambda: ops.bincount(I32, sparse=True), ValueError, "sparse=True"),
    (lambda: ops.histogram(A), ValueError, r"input.shape=\(3, 4\)"),
    (lambda: ops.histogram(A[0], bins=2.5), TypeError, "bins=2.5"),
    (lambda: ops.histogram(A[0], range=(1, 0)), ValueError, r"range=\(1, 0\)"),
    (lambda: ops.select([BOOL], [A, A]), ValueError, "len"),
    (lambda: ops.quantile(A, 1.5), ValueError, "q=1.5"),
    (lambda: ops.percentile(A, -3), ValueError, "q=-3"),
    (lambda: ops.quantile(A, 0.5, method="cubic"), ValueError, "method='cubic'"),
    (lambda: ops.median(A, axis=(0, 5)), ValueError, r"axis=\(0, 5\)"),
    (lambda: ops.average(A, weights=A[0]), ValueError, "axis=None"),
    (lambda: ops.average(A, axis=1, weights=A[:, 0]), ValueError, r"weights.shape=\(3,\)"),
    (lambda: ops.diff(A, n=-1), ValueError, "n=-1"),
    (lambda: ops.correlate(A[0], A[1], mode="wide"), ValueError, "mode='wide'"),
    (lambda: ops.correlate(A, A[1]), ValueError, r"x1.shape=\(3, 4\)"),
    (lambda: ops.corrcoef(A[None]), ValueError, r"x.shape=\(1, 3, 4\)"),
    (lambda: ops.unique(A, size=-2), ValueError, "size=-2"),
    (lambda: ops.ptp(BOOL), TypeError, "bool"),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_bad_arguments_name_the_argument(case):
    fn, error, match = ERRORS[case]
    with pytest.raises(error, match=match):
        fn()


def test_symbolic_unique_and_nonzero_have_unknown_sizes():
    # Keras: sizes that depend on the values are None on symbolic tensors; stand-in
    # data of ones gave unique a static (1,) and nonzero of ints a static (0,).
    import distkeras as keras

    x = keras.Input((4,), dtype="int32")
    assert ops.unique(x).shape == (None,)
    assert ops.unique(x, size=3).shape == (3,)
    assert [t.shape for t in ops.nonzero(x)] == [(None,), (None,)]
    model = keras.Model(x, ops.unique(x))
    data = np.array([[3, 1, 3, 2], [1, 1, 1, 1]], "int32")
    np.testing.assert_array_equal(to_numpy(model(data)), [1, 2, 3])
