"""Optimizer gradient accumulation through `fit` (Horovod's `backward_passes_per_step`).

`gradient_accumulation_steps=N` with batch B must train like batch N*B without
accumulation: the trainer's per-batch mean gradients are summed over N calls
of `apply_flat` and divided by N, which is the mean over the N*B samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import layers, optimizers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

N_SAMPLES, BATCH = 48, 4


def train(batch_size, accumulation, epochs=3, **sgd_kwargs):
    set_random_seed(3)
    model = Sequential([layers.Dense(5, activation="tanh", input_shape=(4,)), layers.Dense(3)])
    opt = optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=accumulation, **sgd_kwargs)
    model.compile(optimizer=opt, loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES, 4)).astype("float32")
    y = rng.normal(size=(N_SAMPLES, 3)).astype("float32")
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model


def max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a.get_weights(), b.get_weights()))


@pytest.mark.parametrize("sgd_kwargs", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}])
@pytest.mark.parametrize("n", [2, 3])
def test_accumulated_fit_equals_larger_batch(n, sgd_kwargs):
    accumulated = train(BATCH, n, **sgd_kwargs)
    large = train(n * BATCH, None, **sgd_kwargs)
    untouched = train(BATCH, None, epochs=0, **sgd_kwargs)
    assert max_diff(accumulated, untouched) > 1e-3  # it trained
    assert max_diff(accumulated, large) < 1e-6
    # The counter advances once per batch (as in Keras), updates once per N batches.
    assert int(accumulated.optimizer.iterations.data) == n * int(large.optimizer.iterations.data)


def test_without_accumulation_small_batches_differ():
    """Guards the comparison above: batch B alone does not give batch 2B's weights."""
    assert max_diff(train(BATCH, None), train(2 * BATCH, None)) > 1e-4


def test_weights_move_only_on_the_nth_batch():
    model = train(BATCH, 2, epochs=0)
    x = np.ones((BATCH, 4), "float32")
    y = np.zeros((BATCH, 3), "float32")
    before = model.get_weights()
    model.train_on_batch(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.train_on_batch(x, y)
    assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
