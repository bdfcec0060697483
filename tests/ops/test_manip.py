"""Array creation and shape manipulation ops (distkeras/ops/manip.py, manip_2.py):
forward values and dtypes against NumPy, gradients against finite differences, errors.

Dtypes marked "Keras 3.15.1" were recorded from Keras 3.15.1's numpy backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

RNG = np.random.default_rng(7)
F32 = RNG.normal(size=(3, 4)).astype("float32")
I32 = np.arange(12, dtype="int32").reshape(3, 4)


def _np(x):
    return to_numpy(x)


def _same(got, expected):
    """Values and dtype of a Tensor against a NumPy result."""
    g = _np(got)
    e = np.asarray(expected)
    assert g.dtype == e.dtype, (g.dtype, e.dtype)
    assert g.shape == e.shape, (g.shape, e.shape)
    np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ creation
def test_identity_tri_empty_default_to_floatx_and_take_a_dtype():
    _same(ops.identity(3), np.identity(3, dtype="float32"))
    _same(ops.identity(2, dtype="int32"), np.identity(2, dtype="int32"))
    _same(ops.tri(3), np.tri(3, dtype="float32"))
    _same(ops.tri(3, 4, 1, dtype="int32"), np.tri(3, 4, 1, dtype="int32"))
    assert ops.tri(2, dtype="bool").dtype == "bool"
    e = ops.empty((2, 3))
    assert e.shape == (2, 3) and e.dtype == "float32"
    assert ops.empty((2,), dtype="int32").dtype == "int32"
    el = ops.empty_like(I32)
    assert el.shape == (3, 4) and el.dtype == "int32"  # Keras 3.15.1: int32
    assert ops.empty_like(I32, dtype="float16").dtype == "float16"


def test_array_and_copy():
    _same(ops.array([1.0, 2.0]), np.array([1.0, 2.0], "float32"))  # Keras 3.15.1: float32
    _same(ops.array(I32, dtype="float16"), I32.astype("float16"))
    c = ops.copy(F32)
    _same(c, F32)
    assert to_numpy(c) is not F32
    check_grad(ops.copy, F32)


def test_dtype_is_the_standardized_name():
    assert ops.dtype(F32) == "float32"
    assert ops.dtype(ops.convert_to_tensor(I32)) == "int32"
    assert ops.dtype(np.ones(2)) == "float64"  # Keras 3.15.1: 'float64'
    assert ops.dtype(keras.Input((2,), dtype="int32")) == "int32"  # symbolic: no graph node


@pytest.mark.parametrize(
    "args,kwargs",
    [((0, 5, 6), {}), ((0.0, 1.0, 5), {"endpoint": False}), ((2, 3, 4), {"dtype": "int32"})],
)
def test_linspace_logspace_against_numpy(args, kwargs):
    dt = kwargs.get("dtype", "float32")  # Keras 3.15.1: float32 from Python numbers
    kw = {**kwargs, "dtype": dt}
    _same(ops.linspace(*args, **kwargs), np.linspace(*args, **kw))
    _same(ops.logspace(*args, **kwargs), np.logspace(*args, **kw))
    _same(ops.logspace(*args, base=2, **kwargs), np.logspace(*args, base=2, **kw))
    _same(ops.geomspace(1, 1000, 4), np.geomspace(1, 1000, 4, dtype="float32"))
    _same(ops.geomspace(1, 100, 3, dtype="int32"), np.geomspace(1, 100, 3, dtype="int32"))


def test_linspace_with_arrays_axis_and_retstep():
    stop = np.array([5.0, 6.0], "float32")
    got = ops.linspace(np.float32(0), stop, 3, axis=1)
    _same(got, np.linspace(0, stop, 3, axis=1).astype("float32"))  # Keras 3.15.1: float32
    _same(ops.linspace(0, np.float16(1), 3), np.linspace(0, 1, 3, dtype="float32"))
    _same(ops.linspace(0, np.ones(2, "float16"), 3), np.linspace(0, np.ones(2), 3, dtype="float16"))
    start = ops.convert_to_tensor(np.array([0.0, 1.0], "float32"))
    _same(ops.linspace(start, 2.0, 5), np.linspace(start.numpy(), 2.0, 5).astype("float32"))
    samples, step = ops.linspace(0, 5, 3, retstep=True)
    _same(samples, np.array([0.0, 2.5, 5.0], "float32"))
    assert float(_np(step)) == 2.5
    _same(ops.linspace(0, 5, 3, dtype="int32"), np.array([0, 2, 5], "int32"))  # Keras 3.15.1
    with pytest.raises(ValueError, match="num=-1"):
        ops.linspace(0, 1, -1)


@pytest.mark.parametrize("name", ["bartlett", "blackman", "hamming", "hanning"])
def test_windows_are_floatx(name):
    for n in (0, 1, 6, np.array(5)):
        _same(getattr(ops, name)(n), getattr(np, name)(int(n)).astype("float32"))
    _same(ops.kaiser(7, 2.5), np.kaiser(7, 2.5).astype("float32"))
    with pytest.raises(ValueError, match="Received: x="):
        getattr(ops, name)("five")


# ------------------------------------------------------------------ flips, rolls
def test_flips_against_numpy():
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    for axis in (None, 0, -1, (0, 2)):
        _same(ops.flip(x, axis=axis), np.flip(x, axis=axis))
    _same(ops.fliplr(I32), np.fliplr(I32))
    _same(ops.flipud(I32), np.flipud(I32))
    with pytest.raises(ValueError, match="Received: axis=5"):
        ops.flip(x, axis=5)
    with pytest.raises(ValueError, match="x.shape=\\(3,\\)"):
        ops.fliplr(np.arange(3))
    with pytest.raises(ValueError, match="x.shape"):
        ops.flipud(np.float32(1))
    check_grad(lambda a: ops.flip(a, axis=(0, 2)), x)
    check_grad(ops.fliplr, x)
    check_grad(ops.flipud, x)


@pytest.mark.parametrize("shift,axis", [(1, None), (-2, 1), (5, 0), ((1, 2), (0, 1)), ((1, -1), 1)])
def test_roll_against_numpy(shift, axis):
    _same(ops.roll(I32, shift, axis=axis), np.roll(I32, shift, axis=axis))
    check_grad(lambda a: ops.roll(a, shift, axis=axis), F32)


def test_roll_errors():
    with pytest.raises(ValueError, match="Received: axis=2"):
        ops.roll(I32, 1, axis=2)
    with pytest.raises(ValueError, match="same length"):
        ops.roll(I32, (1, 2, 3), axis=(0, 1))


@pytest.mark.parametrize(
    "k,axes", [(1, (0, 1)), (2, (0, 1)), (3, (1, 2)), (-1, (2, 0)), (4, (0, 2))]
)
def test_rot90_against_numpy(k, axes):
    x = RNG.normal(size=(2, 3, 4))
    _same(ops.rot90(x, k=k, axes=axes), np.rot90(x, k=k, axes=axes))
    check_grad(lambda a: ops.rot90(a, k=k, axes=axes), x)


def test_rot90_errors_as_keras():
    with pytest.raises(ValueError, match="Received: array.ndim=1"):
        ops.rot90(np.arange(3))
    with pytest.raises(ValueError, match="Invalid axes"):
        ops.rot90(I32, axes=(0, 0))
    with pytest.raises(ValueError, match="Received: axes="):
        ops.rot90(I32, axes=(0, 3))


@pytest.mark.parametrize("k", [-1, 0, 2])
def test_tril_triu_against_numpy(k):
    x = RNG.normal(size=(2, 3, 4))
    for op in ("tril", "triu"):
        _same(getattr(ops, op)(x, k=k), getattr(np, op)(x, k=k))
        _same(getattr(ops, op)(I32, k=k), getattr(np, op)(I32, k=k))
        v = np.arange(1.0, 4.0)  # 1-D input: a square, as NumPy
        _same(getattr(ops, op)(v, k=k), getattr(np, op)(v, k=k))
        check_grad(lambda a, op=op: getattr(ops, op)(a, k=k), x)
        check_grad(lambda a, op=op: getattr(ops, op)(a, k=k), v)
    assert ops.tril(np.ones((2, 2), bool)).dtype == "bool"  # Keras 3.15.1: bool


# ------------------------------------------------------------------ stacks
def test_stacks_against_numpy():
    a, b = RNG.normal(size=(2, 3)).astype("float32"), RNG.normal(size=(2, 3)).astype("float32")
    for name in ("hstack", "vstack", "dstack"):
        fn, ref = getattr(ops, name), getattr(np, name)
        for xs in (
            [a, b],
            [a[0], b[0]],
            [np.float32(1), np.float32(2)],
            [a[..., None], b[..., None]],
        ):
            _same(fn(xs), ref(xs))
        check_grad(lambda x, y, fn=fn: fn([x, y]), a, b)
        check_grad(lambda x, y, fn=fn: fn([x, y]), a[0], b[0])


@pytest.mark.parametrize(
    "dtypes,expected",
    [
        (("int32", "float32"), "float32"),  # Keras 3.15.1: float32
        (("bool", "int32"), "int32"),  # Keras 3.15.1: int32
        (("float16", "int64"), "float16"),  # Keras 3.15.1: float16
        (("float16", "float32"), "float32"),
    ],
)
def test_stacks_and_append_unify_dtypes_as_keras(dtypes, expected):
    xs = [np.ones((2, 2), dt) for dt in dtypes]
    for fn in (ops.hstack, ops.vstack, ops.dstack):
        assert fn(xs).dtype == expected
    assert ops.append(*xs).dtype == expected


def test_append_against_numpy():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(4, 3))
    _same(ops.append(a, b), np.append(a, b))
    _same(ops.append(a, b, axis=0), np.append(a, b, axis=0))
    _same(ops.append(a, a, axis=-1), np.append(a, a, axis=-1))
    _same(ops.append([1, 2], [3.0]), np.array([1, 2, 3], "float32"))  # Keras 3.15.1: float32
    check_grad(lambda x, y: ops.append(x, y, axis=0), a, b)
    check_grad(ops.append, a, b)
    with pytest.raises(ValueError, match="axis=1"):
        ops.append(a, b, axis=1)
    with pytest.raises(ValueError, match="Received: axis=2"):
        ops.append(a, a, axis=2)


# ------------------------------------------------------------------ splits
def _same_list(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        _same(g, e)


@pytest.mark.parametrize("n,sections,axis", [(7, 3, 0), (6, 3, 1), (2, 4, -1), (5, 1, 0)])
def test_array_split_against_numpy(n, sections, axis):
    x = RNG.normal(size=(n, n)) if axis else RNG.normal(size=(n, 2))
    _same_list(ops.array_split(x, sections, axis=axis), np.array_split(x, sections, axis=axis))
    check_grad(lambda a: ops.concatenate(ops.array_split(a, sections, axis=axis)[:1], 0), x)


def test_array_split_errors_as_keras():
    with pytest.raises(TypeError, match="Received: indices_or_sections=\\[2, 5\\]"):
        ops.array_split(np.arange(7), [2, 5])
    with pytest.raises(ValueError, match="Received: indices_or_sections=0"):
        ops.array_split(np.arange(7), 0)


@pytest.mark.parametrize("ios", [2, [1, 3], [0, 9], [3, 1]])
def test_h_v_dsplit_against_numpy(ios):
    x = RNG.normal(size=(4, 4, 4))
    for name in ("hsplit", "vsplit", "dsplit"):
        _same_list(getattr(ops, name)(x, ios), getattr(np, name)(x, ios))
    _same_list(ops.hsplit(np.arange(4.0), ios), np.hsplit(np.arange(4.0), ios))
    check_grad(lambda a: ops.dsplit(a, ios)[-1], x)


def test_split_errors():
    with pytest.raises(ValueError, match="indices_or_sections=3"):
        ops.hsplit(np.ones((2, 4)), 3)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        ops.vsplit(np.arange(6.0), 2)
    with pytest.raises(ValueError, match="3 or more dimensions"):
        ops.dsplit(np.ones((2, 2)), 2)
    with pytest.raises(ValueError, match="1 or more dimensions"):
        ops.hsplit(np.float32(1), 1)


# ------------------------------------------------------------------ diagonals
@pytest.mark.parametrize("k", [-2, 0, 1, 5])
def test_diag_and_diagflat_against_numpy(k):
    v, m = RNG.normal(size=4), RNG.normal(size=(3, 4))
    _same(ops.diag(v, k=k), np.diag(v, k=k))
    _same(ops.diag(m, k=k), np.diag(m, k=k))
    _same(ops.diag(np.arange(3, dtype="int32"), k=k), np.diag(np.arange(3, dtype="int32"), k=k))
    _same(ops.diagflat(m, k=k), np.diagflat(m, k=k))
    check_grad(lambda a: ops.diag(a, k=k), v)
    check_grad(lambda a: ops.diagflat(a, k=k), m)
    if abs(k) < 3:
        check_grad(lambda a: ops.diag(a, k=k), m)
    inf = np.array([np.inf, 1.0])
    _same(ops.diag(inf), np.diag(inf))  # no inf * 0 off the diagonal
    with pytest.raises(ValueError, match="x.shape=\\(2, 2, 2\\)"):
        ops.diag(np.ones((2, 2, 2)))


@pytest.mark.parametrize("offset,a1,a2", [(0, 0, 1), (1, 1, 2), (-1, 2, 0), (2, -1, -2), (9, 0, 1)])
def test_diagonal_and_trace_against_numpy(offset, a1, a2):
    x = RNG.normal(size=(2, 3, 4))
    _same(ops.diagonal(x, offset, a1, a2), np.diagonal(x, offset, a1, a2))
    _same(ops.trace(x, offset, a1, a2), np.trace(x, offset, a1, a2))
    check_grad(lambda a: ops.diagonal(a, offset, a1, a2), x)
    check_grad(lambda a: ops.trace(a, offset, a1, a2), x)


@pytest.mark.parametrize(
    "dt,expected",
    # Keras 3.15.1: bool/int8/int16 -> int32, uint8/uint16 -> uint32, others unchanged
    [
        ("bool", "int32"),
        ("int8", "int32"),
        ("int16", "int32"),
        ("uint8", "uint32"),
        ("uint16", "uint32"),
        ("int32", "int32"),
        ("float16", "float16"),
        ("float32", "float32"),
    ],
)
def test_trace_dtypes_as_keras(dt, expected):
    x = np.arange(9).reshape(3, 3).astype(dt)
    out = ops.trace(x)
    assert out.dtype == expected
    assert float(_np(out)) == float(np.trace(x.astype("float64")))


def test_diagonal_errors():
    with pytest.raises(ValueError, match="axis1=1, axis2=-1"):
        ops.diagonal(np.ones((2, 2)), 0, 1, -1)
    with pytest.raises(ValueError, match="Received: axis2=3"):
        ops.diagonal(np.ones((2, 2)), 0, 0, 3)
    with pytest.raises(ValueError, match="x.shape=\\(2,\\)"):
        ops.diagonal(np.ones(2))


# ------------------------------------------------------------------ grids
@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_against_numpy(indexing):
    a, b, c = np.arange(3, dtype="int32"), RNG.normal(size=2).astype("float32"), RNG.normal(size=4)
    for xs in ((a,), (a, b), (a, b, c)):
        _same_list(ops.meshgrid(*xs, indexing=indexing), np.meshgrid(*xs, indexing=indexing))

    def grids(x, y):
        g = ops.meshgrid(x, y, indexing=indexing)
        return g[0] * 2 + g[1]

    check_grad(grids, c, c[:3])
    with pytest.raises(ValueError, match="indexing='bad'"):
        ops.meshgrid(a, indexing="bad")


@pytest.mark.parametrize("n,increasing", [(None, False), (4, True), (2, False), (0, False)])
def test_vander_against_numpy(n, increasing):
    x = RNG.normal(size=3)
    _same(ops.vander(x, n, increasing), np.vander(x, n, increasing))
    x32 = x.astype("float32")
    # NumPy widens to float64 / int64; Keras 3.15.1 keeps float32 / int32
    _same(ops.vander(x32, n, increasing), np.vander(x32, n, increasing).astype("float32"))
    xi = np.array([1, -2, 3], "int32")
    _same(ops.vander(xi, n, increasing), np.vander(xi, n, increasing).astype("int32"))
    if n != 0:
        check_grad(lambda a: ops.vander(a, n, increasing), np.array([0.0, 1.5, -0.7]))
    with pytest.raises(ValueError, match="input.shape=\\(3, 4\\)"):
        ops.vander(F32)


# ------------------------------------------------------------------ indices and views
def test_unravel_index_keeps_the_indices_dtype():
    for dt in ("int32", "int16", "int64"):
        idx = np.array([1, 5, 3], dt)
        got = ops.unravel_index(idx, (2, 3))
        assert isinstance(got, tuple)
        _same_list(got, [c.astype(dt) for c in np.unravel_index(idx, (2, 3))])
    _same_list(
        ops.unravel_index([1, 5], (2, 3)), [np.array([0, 1], "int32"), np.array([1, 2], "int32")]
    )
    with pytest.raises(ValueError, match="shape=\\(2, 3\\)"):
        ops.unravel_index(np.array([6]), (2, 3))
    with pytest.raises(TypeError, match="indices.dtype=float32"):
        ops.unravel_index(F32, (2, 3))


def test_view_reinterprets_bytes():
    _same(ops.view(F32, "int32"), F32.view("int32"))
    _same(ops.view(F32, "uint8"), F32.view("uint8"))
    _same(ops.view(I32, "float32"), I32.view("float32"))
    _same(ops.view(F32), F32)
    with pytest.raises(ValueError, match="dtype='int64'"):
        ops.view(np.ones(3, "float32"), "int64")
