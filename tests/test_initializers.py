"""Initializers: distributions and bounds, fans, seeding, identifiers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distkeras import initializers as I
from distkeras.backend import Variable
from distkeras.backend.random import SeedGenerator, set_global_seed
from tests.module_harness import (
    as_numpy,
    assert_config_roundtrip,
    assert_get_resolves,
    assert_unknown_identifier,
)

TRUNC = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


@pytest.mark.parametrize(
    "shape,fans",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((20, 30), (20, 30)),
        ((3, 3, 16, 32), (144, 288)),
        ((5, 4, 8), (20, 40)),
    ],
)
def test_compute_fans(shape, fans):
    assert I.compute_fans(shape) == fans


def test_compute_fans_with_axes():
    assert I.compute_fans((2, 3, 4), input_axes=(0, 1), output_axes=(2,)) == (6, 4)


# (identifier, shape, kind, parameter): "uniform" -> bound; "tnormal" -> stddev before
# truncation; "normal" -> (mean, stddev).
FAN = (200, 300)
CONV = (3, 3, 16, 32)
DIST_CASES = [
    ("glorot_uniform", FAN, "uniform", math.sqrt(6 / 500)),
    ("GlorotUniform", CONV, "uniform", math.sqrt(6 / (144 + 288))),
    ("he_uniform", FAN, "uniform", math.sqrt(6 / 200)),
    ("HeUniform", CONV, "uniform", math.sqrt(6 / 144)),
    ("lecun_uniform", FAN, "uniform", math.sqrt(3 / 200)),
    ("random_uniform", FAN, "uniform", 0.05),
    ("glorot_normal", FAN, "tnormal", math.sqrt(2 / 500) / TRUNC),
    ("he_normal", FAN, "tnormal", math.sqrt(2 / 200) / TRUNC),
    ("lecun_normal", CONV, "tnormal", math.sqrt(1 / 144) / TRUNC),
    ("truncated_normal", FAN, "tnormal", 0.05),
    ("variance_scaling", FAN, "tnormal", math.sqrt(1 / 200) / TRUNC),
    ("random_normal", FAN, "normal", (0.0, 0.05)),
    (I.RandomNormal(mean=1.0, stddev=0.5, seed=1), FAN, "normal", (1.0, 0.5)),
    (I.RandomUniform(minval=-2.0, maxval=-1.0, seed=2), FAN, "uniform_ab", (-2.0, -1.0)),
    (
        I.VarianceScaling(3.0, "fan_out", "untruncated_normal", seed=3),
        FAN,
        "normal",
        (0.0, math.sqrt(3 / 300)),
    ),
    (I.VarianceScaling(2.0, "fan_avg", "uniform", seed=4), FAN, "uniform", math.sqrt(6 / 250)),
]


@pytest.mark.parametrize("ident,shape,kind,param", DIST_CASES, ids=lambda v: str(v)[:24])
def test_distribution_statistics(ident, shape, kind, param):
    set_global_seed(1234)
    w = as_numpy(I.get(ident)(shape))
    assert w.shape == shape and w.dtype == np.float32
    w = w.astype(np.float64)
    if kind == "uniform":
        assert np.abs(w).max() <= param
        assert np.abs(w).max() > 0.98 * param
        np.testing.assert_allclose(w.var(), param**2 / 3, rtol=0.05)
        assert abs(w.mean()) < 0.02 * param
    elif kind == "uniform_ab":
        lo, hi = param
        assert w.min() >= lo and w.max() <= hi
        np.testing.assert_allclose(w.mean(), (lo + hi) / 2, atol=0.01)
    elif kind == "tnormal":
        assert np.abs(w).max() <= 2 * param
        np.testing.assert_allclose(w.std(), param * TRUNC, rtol=0.03)
        assert abs(w.mean()) < 0.03 * param
    else:
        mean, std = param
        np.testing.assert_allclose(w.mean(), mean, atol=0.02 * std)
        np.testing.assert_allclose(w.std(), std, rtol=0.03)
        assert np.abs(w - mean).max() > 3 * std  # not truncated


@pytest.mark.parametrize(
    "init,expected",
    [
        (I.Zeros(), np.zeros((2, 3))),
        (I.Ones(), np.ones((2, 3))),
        (I.Constant(3.5), np.full((2, 3), 3.5)),
        (I.Constant([1.0, 2.0, 3.0]), np.tile([1.0, 2.0, 3.0], (2, 1))),
        (I.Identity(gain=2.0), 2.0 * np.eye(2, 3)),
    ],
    ids=["zeros", "ones", "constant", "constant_row", "identity"],
)
def test_constant_initializers(init, expected):
    out = init((2, 3))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    assert init((2, 3), dtype="float64").dtype == np.float64
    assert_config_roundtrip(I, init)


def test_zeros_integer_dtype():
    assert I.get("zeros")((4,), dtype="int32").dtype == np.int32


def test_identity_rejects_non_2d():
    with pytest.raises(ValueError, match=r"2D matrices.*shape=\(2, 2, 2\)"):
        I.Identity()((2, 2, 2))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 3, 4, 8), (5, 5)])
def test_orthogonal(shape):
    w = as_numpy(I.Orthogonal(gain=1.5, seed=0)(shape, dtype="float64"))
    assert w.shape == shape
    flat = w.reshape(-1, shape[-1])
    small = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(small, 1.5**2 * np.eye(len(small)), atol=1e-10)


def test_orthogonal_rejects_vectors():
    with pytest.raises(ValueError, match="at least two-dimensional"):
        I.Orthogonal()((5,))


@pytest.mark.parametrize(
    "cls", [I.RandomNormal, I.RandomUniform, I.TruncatedNormal, I.GlorotUniform, I.Orthogonal]
)
def test_explicit_seed_is_deterministic(cls):
    a = cls(seed=3)
    first = as_numpy(a((8, 8)))
    np.testing.assert_array_equal(first, as_numpy(a((8, 8))))  # same at every call (Keras 3)
    np.testing.assert_array_equal(first, as_numpy(cls(seed=3)((8, 8))))
    assert not np.array_equal(first, as_numpy(cls(seed=4)((8, 8))))


def test_seed_generator_advances():
    init = I.RandomNormal(seed=SeedGenerator(5))
    assert not np.array_equal(init((4,)), init((4,)))


def test_unseeded_follows_global_seed():
    set_global_seed(7)
    a = I.GlorotUniform()
    b = I.HeNormal()
    wa, wb = as_numpy(a((5, 5))), as_numpy(b((5, 5)))
    np.testing.assert_array_equal(wa, as_numpy(a((5, 5))))
    assert not np.array_equal(wa, as_numpy(I.GlorotUniform()((5, 5))))
    set_global_seed(7)
    np.testing.assert_array_equal(wa, as_numpy(I.GlorotUniform()((5, 5))))
    np.testing.assert_array_equal(wb, as_numpy(I.HeNormal()((5, 5))))
    assert I.GlorotUniform().get_config()["seed"] is None


def test_dtypes():
    assert I.get("he_normal")((3, 4), dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="floating point dtype.*int32"):
        I.get("glorot_uniform")((3, 4), dtype="int32")


@pytest.mark.parametrize(
    "args,match",
    [
        ({"scale": -1.0}, "scale=-1.0"),
        ({"mode": "fan_sideways"}, "mode='fan_sideways'"),
        ({"distribution": "cauchy"}, "distribution='cauchy'"),
        ({"seed": "abc"}, "seed='abc'"),
    ],
)
def test_variance_scaling_validation(args, match):
    with pytest.raises(ValueError, match=match):
        I.VarianceScaling(**args)


def test_normal_distribution_alias():
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"


ALIASES = {
    "zeros": I.Zeros,
    "zero": I.Zeros,
    "Zeros": I.Zeros,
    "ones": I.Ones,
    "one": I.Ones,
    "constant": I.Constant,
    "identity": I.Identity,
    "IdentityInitializer": I.Identity,
    "random_normal": I.RandomNormal,
    "normal": I.RandomNormal,
    "random_uniform": I.RandomUniform,
    "uniform": I.RandomUniform,
    "truncated_normal": I.TruncatedNormal,
    "variance_scaling": I.VarianceScaling,
    "glorot_uniform": I.GlorotUniform,
    "GlorotUniform": I.GlorotUniform,
    "glorot_normal": I.GlorotNormal,
    "he_uniform": I.HeUniform,
    "he_normal": I.HeNormal,
    "lecun_uniform": I.LecunUniform,
    "lecun_normal": I.LecunNormal,
    "orthogonal": I.Orthogonal,
    "OrthogonalInitializer": I.Orthogonal,
}


def test_get_resolves_names():
    assert_get_resolves(I, ALIASES)
    assert I.glorot_uniform is I.GlorotUniform and I.he_normal is I.HeNormal


@pytest.mark.parametrize(
    "init",
    [
        I.GlorotUniform(seed=1),
        I.HeNormal(),
        I.RandomNormal(mean=0.5, stddev=2.0, seed=9),
        I.RandomUniform(-1.0, 1.0),
        I.TruncatedNormal(stddev=0.1, seed=2),
        I.VarianceScaling(2.0, "fan_out", "uniform", seed=5),
        I.Orthogonal(gain=2.0, seed=3),
    ],
    ids=lambda v: type(v).__name__,
)
def test_config_roundtrip(init):
    new = assert_config_roundtrip(I, init)
    if init.get_config()["seed"] is not None:
        np.testing.assert_array_equal(init((4, 4)), new((4, 4)))
    assert type(init.clone()) is type(init)


def test_get_from_array_value():
    value = np.arange(6.0).reshape(2, 3)
    init = I.get(value)
    np.testing.assert_array_equal(init((2, 3), dtype="float32"), value.astype(np.float32))
    with pytest.raises(ValueError, match="Expected `shape`"):
        init((3, 2))


def test_unknown_identifier():
    assert_unknown_identifier(I, "initializer")


def test_variable_accepts_initializer():
    v = Variable(I.get("he_uniform"), shape=(3, 4))
    assert v.shape == (3, 4) and v.dtype == "float32"
    assert np.abs(v.numpy()).max() <= math.sqrt(6 / 3)
