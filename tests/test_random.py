"""`distkeras.random`: Keras 3's seeding rules, distributions, gradients, saved streams."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras
from distkeras import layers, random
from distkeras.utils import set_random_seed
from tests.harness import check_grad

N = 40_000  # samples for moment checks: standard errors near 0.5% of a unit scale


def test_import_path_and_public_names():
    import distkeras.random as mod

    assert distkeras.random is mod
    for name in mod.__all__:
        assert callable(getattr(mod, name)), name


@pytest.mark.parametrize(
    "draw",
    [
        lambda s: random.normal((3, 4), seed=s),
        lambda s: random.uniform((5,), seed=s),
        lambda s: random.randint((6,), 0, 100, seed=s),
        lambda s: random.truncated_normal((7,), seed=s),
        lambda s: random.gamma((4,), 2.0, seed=s),
        lambda s: random.beta((4,), 2.0, 3.0, seed=s),
        lambda s: random.binomial((4,), 10, 0.3, seed=s),
        lambda s: random.categorical(np.zeros((2, 5)), 6, seed=s),
        lambda s: random.shuffle(np.arange(10.0), seed=s),
        lambda s: random.dropout(np.ones((20,), "float32"), 0.5, seed=s),
    ],
)
def test_integer_seed_repeats_and_generator_advances(draw):
    a, b = np.asarray(draw(123)), np.asarray(draw(123))
    np.testing.assert_array_equal(a, b)  # Keras 3: an int seed gives the same numbers
    gen = random.SeedGenerator(7)
    first, second = np.asarray(draw(gen)), np.asarray(draw(gen))
    assert not np.array_equal(first, second)  # a generator is a stream
    again = random.SeedGenerator(7)
    np.testing.assert_array_equal(np.asarray(draw(again)), first)
    np.testing.assert_array_equal(np.asarray(draw(again)), second)


def test_unseeded_calls_follow_the_global_seed():
    set_random_seed(5)
    a = np.asarray(random.normal((4,)))
    b = np.asarray(random.normal((4,)))
    set_random_seed(5)
    np.testing.assert_array_equal(np.asarray(random.normal((4,))), a)
    assert not np.array_equal(a, b)


def test_generator_state_restores_the_stream():
    gen = random.SeedGenerator(11)
    random.uniform((3,), seed=gen)
    state = gen.get_state()
    expected = np.asarray(random.uniform((5,), seed=gen))
    gen.set_state(state)
    np.testing.assert_array_equal(np.asarray(random.uniform((5,), seed=gen)), expected)


def test_moments_match_the_distributions():
    x = np.asarray(random.normal((N,), mean=2.0, stddev=3.0, seed=1))
    assert x.dtype == np.float32
    assert abs(x.mean() - 2.0) < 0.05 and abs(x.std() - 3.0) < 0.05
    u = np.asarray(random.uniform((N,), minval=-1.0, maxval=3.0, dtype="float64", seed=2))
    assert u.dtype == np.float64 and u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.03
    r = np.asarray(random.randint((N,), 3, 7, seed=3))
    assert r.dtype == np.int32 and set(np.unique(r)) == {3, 4, 5, 6}
    t = np.asarray(random.truncated_normal((N,), mean=1.0, stddev=0.5, seed=4))
    assert t.min() >= 0.0 and t.max() <= 2.0  # within two standard deviations
    # the standard normal truncated to [-2, 2] has variance 1 - 4 phi(2) / (2 Phi(2) - 1)
    assert abs(t.std() - 0.5 * np.sqrt(0.77374)) < 0.01
    g = np.asarray(random.gamma((N,), 3.0, seed=5))
    assert abs(g.mean() - 3.0) < 0.06 and abs(g.var() - 3.0) < 0.2
    b = np.asarray(random.beta((N,), 2.0, 6.0, seed=6))
    assert abs(b.mean() - 0.25) < 0.01 and b.min() >= 0 and b.max() <= 1
    k = np.asarray(random.binomial((N,), 20, 0.25, seed=7))
    assert k.dtype == np.float32 and abs(k.mean() - 5.0) < 0.06 and abs(k.var() - 3.75) < 0.15


def test_categorical_frequencies_follow_the_softmax():
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0 + 1e-12]]))
    idx = np.asarray(random.categorical(logits, N, seed=8))
    assert idx.shape == (2, N) and idx.dtype == np.int32
    np.testing.assert_allclose(np.bincount(idx[0], minlength=3) / N, [0.1, 0.2, 0.7], atol=0.01)
    np.testing.assert_allclose(np.bincount(idx[1], minlength=3) / N, [0.5, 0.5, 0.0], atol=0.01)


def test_dropout_scales_kept_entries_and_passes_their_gradient():
    x = np.ones((N,), "float32")
    y = np.asarray(random.dropout(x, 0.3, seed=9))
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert abs((y == 0).mean() - 0.3) < 0.01
    shaped = np.asarray(random.dropout(np.ones((50, 4, 6)), 0.5, noise_shape=(None, 1, 6), seed=1))
    assert (shaped == shaped[:, :1, :]).all()
    check_grad(
        lambda a: random.dropout(a, 0.4, seed=3), np.random.default_rng(0).normal(size=(4, 5))
    )


def test_shuffle_permutes_one_axis_and_its_gradient():
    x = np.arange(24.0).reshape(4, 6)
    y = np.asarray(random.shuffle(x, axis=1, seed=2))
    assert sorted(y[0].tolist()) == x[0].tolist()
    np.testing.assert_array_equal(y - y[:, :1], np.broadcast_to(y[0] - y[0, 0], (4, 6)))
    check_grad(
        lambda a: random.shuffle(a, axis=0, seed=4), np.random.default_rng(1).normal(size=(5, 3))
    )


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: random.normal((2,), seed="x"), "seed="),
        (lambda: random.normal((2, -1)), "shape="),
        (lambda: random.normal((2,), dtype="int32"), "dtype="),
        (lambda: random.randint((2,), 5, 5), "maxval="),
        (lambda: random.dropout(np.ones(3), 1.0), "rate="),
        (lambda: random.shuffle(np.ones(3), axis=1), "axis="),
        (lambda: random.categorical(np.ones(3), 2), "shape="),
    ],
)
def test_bad_arguments_name_the_argument(call, arg):
    with pytest.raises(ValueError, match="Received: .*" + arg):
        call()


class _NoisyDense(layers.Layer):
    """A custom layer that draws from its own stream in `call` while training."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = random.SeedGenerator(42)
        self.dense = layers.Dense(3)

    def call(self, x, training=False):
        x = self.dense(x)
        if training:
            x = random.dropout(x, 0.5, seed=self.seed_generator)
        return x


def test_a_layer_streams_is_saved_and_restored_with_its_rng_states():
    layer = _NoisyDense()
    x = np.ones((8, 4), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(layer(x)))  # inference
    states = layer.rng_states()
    first = np.asarray(layer(x, training=True))
    second = np.asarray(layer(x, training=True))
    assert not np.array_equal(first, second)
    layer.set_rng_states(states)
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), first)


# ------------------------------------------------------------ deterministic data-parallel
@pytest.mark.parametrize(
    "draw",
    [
        lambda gen, n: random.uniform((n, 3), seed=gen),
        lambda gen, n: random.normal((n, 3), seed=gen),
        lambda gen, n: random.dropout(np.ones((n, 3), "float32"), 0.5, seed=gen),
    ],
    ids=["uniform", "normal", "dropout"],
)
def test_seed_generator_draws_per_global_sample_inside_a_deterministic_step(draw):
    """Inside `sample_stream` (a deterministic step), a custom layer's draws with its
    SeedGenerator depend on the sample's global index: two ranks holding rows 0-2 and
    3-7 get the rows of the whole batch, whatever the generators' own states."""
    from distkeras.backend.random import sample_stream

    with sample_stream(seed=11, step=3, offset=0, rows=8):
        whole = random_values(draw(random.SeedGenerator(5), 8))

    def part(offset, rows, state_seed):
        gen = random.SeedGenerator(5)
        gen.numpy_rng.random(state_seed)  # a rank's own stream state does not matter
        with sample_stream(seed=11, step=3, offset=offset, rows=rows):
            out = random_values(draw(gen, rows))
        return out

    first, second = part(0, 3, 1), part(3, 5, 7)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    with sample_stream(seed=11, step=4, offset=0, rows=8):
        other_step = random_values(draw(random.SeedGenerator(5), 8))
    assert not np.array_equal(other_step, whole)


def random_values(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)
