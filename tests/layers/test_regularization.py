"""Noise and spatial dropout layers: identity in inference, Keras formulas in training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distkeras import backend, layers
from distkeras.backend.random import SeedGenerator
from tests.harness import check_grad
from tests.layers.harness import run_layer_test

ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946

CASES = [
    ("gaussian_noise", layers.GaussianNoise, {"stddev": 0.3, "seed": 1}, (3, 4)),
    ("gaussian_dropout", layers.GaussianDropout, {"rate": 0.4, "seed": 1}, (3, 4)),
    ("alpha_dropout", layers.AlphaDropout, {"rate": 0.2, "seed": 1}, (3, 4)),
    (
        "alpha_dropout_noise_shape",
        layers.AlphaDropout,
        {"rate": 0.2, "noise_shape": (None, 1, 4), "seed": 1},
        (3, 2, 4),
    ),
    ("spatial1d", layers.SpatialDropout1D, {"rate": 0.5, "seed": 1}, (3, 4, 5)),
    ("spatial2d", layers.SpatialDropout2D, {"rate": 0.5, "seed": 1}, (3, 4, 2, 5)),
    (
        "spatial2d_cf",
        layers.SpatialDropout2D,
        {"rate": 0.5, "data_format": "channels_first", "seed": 1},
        (3, 4, 2, 5),
    ),
    ("spatial3d", layers.SpatialDropout3D, {"rate": 0.5, "seed": 1}, (2, 3, 2, 2, 4)),
]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name,cls,kwargs,shape", CASES, ids=[c[0] for c in CASES])
def test_regularization_layer(name, cls, kwargs, shape, training):
    x = np.random.default_rng(0).normal(size=shape)
    layer = run_layer_test(
        cls,
        kwargs,
        input_shape=shape,
        expected_output_shape=shape,
        expected_output=None if training else x,
        expected_num_trainable_weights=0,
        training=training,
    )
    out = np.asarray(layer(x, training=True))
    assert not np.allclose(out, x)  # the noise is on in training


def _noise(seed, shape, kind, *args):
    gen = SeedGenerator(seed)
    if kind == "normal":
        return gen.normal(shape, *args, dtype="float64")
    return gen.random(shape, dtype="float64")


def test_training_formulas_follow_keras():
    backend.set_floatx("float64")
    try:
        x = np.random.default_rng(0).normal(size=(50, 40))
        out = np.asarray(layers.GaussianNoise(0.3, seed=4)(x, training=True))
        np.testing.assert_allclose(out, x + _noise(4, x.shape, "normal", 0.0, 0.3))

        out = np.asarray(layers.GaussianDropout(0.4, seed=5)(x, training=True))
        sd = math.sqrt(0.4 / 0.6)
        np.testing.assert_allclose(out, x * _noise(5, x.shape, "normal", 1.0, sd))

        rate = 0.2
        out = np.asarray(layers.AlphaDropout(rate, seed=6)(x, training=True))
        kept = (_noise(6, x.shape, "uniform") >= rate).astype(float)
        a = ((1 - rate) * (1 + rate * ALPHA_P**2)) ** -0.5
        b = -a * ALPHA_P * rate
        np.testing.assert_allclose(out, a * (x * kept + ALPHA_P * (1 - kept)) + b)
    finally:
        backend.set_floatx("float32")


def test_alpha_dropout_keeps_selu_statistics():
    x = np.random.default_rng(0).normal(size=(400, 250)).astype("float32")
    out = np.asarray(layers.AlphaDropout(0.3, seed=1)(x, training=True))
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1.0) < 0.02


@pytest.mark.parametrize(
    "cls,fmt,shape",
    [
        (layers.SpatialDropout1D, None, (20, 6, 30)),
        (layers.SpatialDropout2D, "channels_last", (20, 3, 4, 30)),
        (layers.SpatialDropout2D, "channels_first", (20, 30, 3, 4)),
        (layers.SpatialDropout3D, "channels_last", (10, 2, 3, 2, 30)),
    ],
)
def test_spatial_dropout_drops_whole_feature_maps(cls, fmt, shape):
    kwargs = {} if fmt is None else {"data_format": fmt}
    x = np.ones(shape, "float32")
    out = np.asarray(cls(0.4, seed=3, **kwargs)(x, training=True))
    maps = np.moveaxis(out, 1 if fmt == "channels_first" else -1, 1).reshape(shape[0], 30, -1)
    for per_map in maps.reshape(-1, maps.shape[-1]):
        assert np.all(per_map == per_map[0])
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.6], rtol=1e-6)
    assert abs((maps[..., 0] == 0).mean() - 0.4) < 0.08


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.GaussianNoise(0.3, seed=2),
        lambda: layers.GaussianDropout(0.3, seed=2),
        lambda: layers.AlphaDropout(0.3, seed=2),
        lambda: layers.SpatialDropout1D(0.3, seed=2),
    ],
)
def test_seeded_reproducibility_and_training_gradient(make):
    x = np.random.default_rng(0).normal(size=(4, 3, 5))
    a, b = make(), make()
    first = np.asarray(a(x, training=True))
    np.testing.assert_array_equal(first, np.asarray(b(x, training=True)))
    state = a.rng_states()
    second = np.asarray(a(x, training=True))
    assert not np.array_equal(first, second)  # a fresh draw per call
    a.set_rng_states(state)
    np.testing.assert_array_equal(np.asarray(a(x, training=True)), second)
    backend.set_floatx("float64")
    try:
        layer = make()
        gen = layer.seed_generator
        fixed = gen.get_state()

        def fn(xa):
            gen.set_state(fixed)  # the same noise at every finite-difference probe
            return layer(xa, training=True)

        check_grad(fn, x)
    finally:
        backend.set_floatx("float32")


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.GaussianNoise(-0.1), "Received: stddev=-0.1"),
        (lambda: layers.GaussianNoise(1.5), "Received: stddev=1.5"),
        (lambda: layers.GaussianDropout(1.0), "Received: rate=1.0"),
        (lambda: layers.GaussianDropout(-0.2), "Received: rate=-0.2"),
        (lambda: layers.AlphaDropout(1.2), "Received: rate=1.2"),
        (lambda: layers.SpatialDropout2D(1.0), "Received: rate=1.0"),
        (lambda: layers.SpatialDropout2D(0.5, data_format="bad"), "data_format='bad'"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_spatial_dropout_checks_the_rank():
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.SpatialDropout2D(0.5)(np.zeros((2, 3, 4), "float32"))
