"""A binary classifier with 1-D labels, as users write it from the Keras guides.

Dense -> sigmoid with `loss="binary_crossentropy"` and labels of shape (n,)
against an output of shape (n, 1): Keras matches the label rank to the
output's, so the loss is the per-sample crossentropy (not an (n, n)
broadcast). Stand-in data: a noisy linear threshold on 10 float32 features,
int64 labels of shape (n,). Both frameworks start from the same weights and
see the same batches; figures from `reference/ref_binary.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _data

# Keras 3.15.1 (JAX backend), same weights, data and batch order (batch 32,
# shuffle=False), 10 epochs of Adam: the training loss and accuracy per epoch,
# and evaluate() on the 100 held-out samples.
KERAS_LOSS = [
    0.70174,
    0.65473,
    0.61359,
    0.57681,
    0.54332,
    0.51245,
    0.48363,
    0.45676,
    0.43156,
    0.40792,
]
KERAS_ACCURACY = [0.622, 0.666, 0.704, 0.744, 0.768, 0.8, 0.838, 0.85, 0.868, 0.88]
KERAS_EVALUATE = (0.42365, 0.86)


def test_dense_sigmoid_with_rank_1_labels():
    x, y = _data.binary_table(n=600, features=10, seed=0)
    assert y.shape == (600,)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    # Before training: evaluate() is the mean per-sample crossentropy.
    p = model.predict(x[:500], verbose=0)[:, 0]
    bce = -np.mean(y[:500] * np.log(p) + (1 - y[:500]) * np.log(1 - p))
    assert model.evaluate(x[:500], y[:500], verbose=0)[0] == pytest.approx(bce, rel=1e-4)

    history = model.fit(x[:500], y[:500], epochs=10, batch_size=32, shuffle=False, verbose=0)
    # Same start, same batches: the same trajectory up to float32 rounding.
    np.testing.assert_allclose(history.history["loss"], KERAS_LOSS, rtol=1e-3)
    np.testing.assert_allclose(history.history["accuracy"], KERAS_ACCURACY, atol=0.005)
    loss, acc = model.evaluate(x[500:], y[500:], verbose=0)
    assert loss == pytest.approx(KERAS_EVALUATE[0], rel=1e-3)
    assert acc == pytest.approx(KERAS_EVALUATE[1], abs=0.011)  # one sample of 100
    assert model.predict(x[:3], verbose=0).shape == (3, 1)
