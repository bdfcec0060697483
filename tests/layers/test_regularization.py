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


# ---------------------------------------------------------------- per-sample streams
# In deterministic training every forward pass runs in a `sample_stream` keyed by
# (seed, step, global offset of its first sample): the noise of a sample must not
# depend on which rank draws it, on how many samples that rank holds, nor on the
# layer's own stream state (other ranks' layers were seeded differently).
def _mha():
    return layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5)


RANDOM_LAYERS = [
    ("dropout", lambda: layers.Dropout(0.3), (12, 5)),
    ("dropout_noise_shape", lambda: layers.Dropout(0.5, noise_shape=(None, 1, 4)), (12, 3, 4)),
    ("spatial1d", lambda: layers.SpatialDropout1D(0.5), (12, 3, 4)),
    ("spatial2d", lambda: layers.SpatialDropout2D(0.5), (12, 2, 2, 3)),
    ("spatial3d", lambda: layers.SpatialDropout3D(0.5), (12, 2, 1, 2, 3)),
    ("gaussian_noise", lambda: layers.GaussianNoise(0.5), (12, 5)),
    ("gaussian_dropout", lambda: layers.GaussianDropout(0.3), (12, 5)),
    ("alpha_dropout", lambda: layers.AlphaDropout(0.3), (12, 5)),
    ("random_flip", lambda: layers.RandomFlip(), (12, 4, 4, 2)),
    ("random_rotation", lambda: layers.RandomRotation(0.2), (12, 4, 4, 2)),
    ("random_zoom", lambda: layers.RandomZoom(0.3), (12, 4, 4, 2)),
    ("random_translation", lambda: layers.RandomTranslation(0.3, 0.3), (12, 4, 4, 2)),
    ("random_contrast", lambda: layers.RandomContrast(0.5, value_range=(0, 1)), (12, 4, 4, 2)),
    ("lstm_dropout", lambda: layers.LSTM(4, dropout=0.4, recurrent_dropout=0.4), (12, 3, 2)),
]


def _call(layer, x):
    if isinstance(layer, layers.MultiHeadAttention):
        return np.asarray(layer(x, x, training=True))
    return np.asarray(layer(x, training=True))


def _rank_replica(make, x, global_seed, weights):
    """The layer as another rank holds it: other auto seed, other stream state, same weights."""
    from distkeras.utils import set_random_seed

    set_random_seed(global_seed)
    layer = make()
    _call(layer, x[:1])  # builds, and moves the layer's own stream
    if weights is not None:
        layer.set_weights(weights)
    return layer


@pytest.mark.parametrize(
    "make,shape",
    [(m, s) for _, m, s in RANDOM_LAYERS] + [(_mha, (12, 3, 4))],
    ids=[c[0] for c in RANDOM_LAYERS] + ["attention_dropout"],
)
def test_sample_stream_noise_is_independent_of_the_split_into_ranks(make, shape):
    from distkeras.backend.random import sample_stream

    x = np.random.default_rng(0).uniform(size=shape).astype("float32")
    one = _rank_replica(make, x, 1, None)
    weights = one.get_weights() or None
    with sample_stream(seed=11, step=3, offset=0, rows=12):
        full = _call(one, x)
    for cuts in ([0, 6, 12], [0, 5, 9, 12], [0, 1, 2, 12]):  # 2 and 3 ranks, uneven slices
        pieces = []
        for r, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
            layer = _rank_replica(make, x, 100 + r, weights)
            with sample_stream(seed=11, step=3, offset=lo, rows=hi - lo):
                pieces.append(_call(layer, x[lo:hi]))
        if isinstance(one, (layers.LSTM, layers.MultiHeadAttention)):
            # GEMMs round differently with the batch size; a wrong mask moves outputs by ~0.1
            np.testing.assert_allclose(np.concatenate(pieces), full, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(np.concatenate(pieces), full)
    with sample_stream(seed=11, step=4, offset=0, rows=12):
        assert not np.array_equal(_call(one, x), full)  # a new step draws new noise
    with sample_stream(seed=12, step=3, offset=0, rows=12):
        assert not np.array_equal(_call(one, x), full)  # and a new seed too
    assert not np.array_equal(full, _call(one, x))  # the noise is on


def test_sample_stream_keys_each_draw_of_a_pass_and_a_users_seed():
    from distkeras.backend.random import sample_stream

    x = np.ones((64, 32), "float32")
    a, b = layers.Dropout(0.5), layers.Dropout(0.5)
    with sample_stream(seed=1, step=0, offset=0, rows=64):
        first, second = np.asarray(a(x, training=True)), np.asarray(b(x, training=True))
    assert not np.array_equal(first, second)  # two layers of one pass: two masks
    with sample_stream(seed=1, step=0, offset=0, rows=64):
        seeded = np.asarray(layers.Dropout(0.5, seed=5)(x, training=True))
    assert not np.array_equal(first, seeded)  # a seed given by the user enters the key


def test_sample_stream_numbers_are_uniform_and_normal():
    from distkeras.backend.random import sample_stream

    gen = SeedGenerator(0)
    n = 200_000
    with sample_stream(seed=3, step=7, offset=5, rows=n):
        u32 = gen.random((n,), dtype="float32")
        u64 = gen.random((n,), dtype="float64")
        z = gen.normal((n,), dtype="float64")
        mask = gen.random((n, 8), dtype="float32") < 0.8
    for u in (u32, u64):
        assert u.min() >= 0.0 and u.max() < 1.0
        assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
        assert abs(u.var() - 1 / 12) < 5 * 0.0745 / math.sqrt(n)  # sd of the var estimate
        counts = np.histogram(u, bins=10, range=(0, 1))[0]
        assert np.all(np.abs(counts - n / 10) < 5 * math.sqrt(n / 10))
    assert abs(z.mean()) < 5 / math.sqrt(n) and abs(z.std() - 1) < 5 / math.sqrt(2 * n)
    assert abs(np.mean(np.abs(z) < 1.0) - 0.682689) < 5 * math.sqrt(0.2166 / n)
    assert abs(mask.mean() - 0.8) < 5 * math.sqrt(0.16 / mask.size)
    assert abs(np.corrcoef(u64[:-1], u64[1:])[0, 1]) < 5 / math.sqrt(n)  # neighbours


def test_default_mode_draws_from_the_layers_own_pcg64_stream():
    """Outside a sample stream nothing changes: the layer's NumPy PCG64 generator."""
    gen = SeedGenerator(42)
    ref = np.random.Generator(np.random.PCG64(42))
    np.testing.assert_array_equal(gen.random((3, 4), dtype="float32"), ref.random((3, 4), "f4"))
    np.testing.assert_array_equal(gen.normal((5,), dtype="float64"), ref.normal(0.0, 1.0, 5))
    np.testing.assert_array_equal(gen.host_uniform(4, -1.0, 2.0), ref.uniform(-1.0, 2.0, 4))
