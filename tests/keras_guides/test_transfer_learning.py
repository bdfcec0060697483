"""Keras guide "Transfer learning & fine-tuning", step by step.

`trainable` and the weight lists, freezing (also recursively), then the
typical workflow: a base model (here pre-trained in the test on digits 0-4),
frozen and called with `training=False` under a new head trained on digits
5-9, then unfrozen and fine-tuned with a low learning rate. Stand-in data:
the bundled 8x8 digits (the guide: Xception on cats vs dogs). Keras figures
from `reference/ref_transfer_learning.py` (same weights, unshuffled batches).
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _transfer

# Keras 3.15.1 (JAX backend): the new head's training loss after 3 epochs on the
# frozen base. BatchNormalization ran in training mode during pre-training, so
# its statistics go through more float32 steps than plain layers: 1% relative.
KERAS_HEAD_LOSS = 1.60505
# Known divergence, kept on purpose: in Keras 3.15.1 the fine-tuning `fit`
# passes training=True down into the base model, overriding the guide's
# `base_model(inputs, training=False)` once the base is trainable again
# (keras-team/keras#20285), so its BatchNormalization statistics move
# (fine-tune loss 1.7587). We keep the recorded training=False, as the guide
# describes: the statistics stay frozen (our fine-tune loss: about 1.64).


def test_trainable_weights_and_freezing():
    layer = layers.Dense(3)
    layer.build((None, 4))
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (
        2,
        2,
        0,
    )

    layer = layers.BatchNormalization()
    layer.build((None, 4))
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (
        4,
        2,
        2,
    )

    layer = layers.Dense(3)
    layer.build((None, 4))
    layer.trainable = False
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (
        2,
        0,
        2,
    )

    layer1 = layers.Dense(3, activation="relu")
    layer2 = layers.Dense(3, activation="sigmoid")
    model = keras.Sequential([keras.Input(shape=(3,)), layer1, layer2])
    layer1.trainable = False
    initial_layer1_weights_values = layer1.get_weights()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.random((2, 3)), np.random.random((2, 3)), verbose=0)
    for a, b in zip(initial_layer1_weights_values, layer1.get_weights()):
        np.testing.assert_array_equal(a, b)

    inner_model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            layers.Dense(3, activation="relu"),
            layers.Dense(3, activation="relu"),
        ]
    )
    model = keras.Sequential(
        [keras.Input(shape=(3,)), inner_model, layers.Dense(3, activation="sigmoid")]
    )
    model.trainable = False  # Freeze the outer model
    assert inner_model.trainable is False  # All layers in `model` are now frozen
    assert inner_model.layers[0].trainable is False  # `trainable` is propagated recursively


def test_freeze_train_head_then_fine_tune():
    figures = _transfer.run(keras)
    assert figures["trainable_frozen"] == 2  # only the new Dense head
    assert figures["base_unchanged"]
    assert figures["head_loss"] == pytest.approx(KERAS_HEAD_LOSS, rel=1e-2)
    assert figures["trainable_unfrozen"] == 10  # 2 Conv2D + 2 BN (gamma, beta) + head
    # The guide's point: called with training=False, BatchNormalization stays in
    # inference mode while the unfrozen base is fine-tuned (see the note above).
    assert figures["bn_stats_unchanged"]
    assert np.isfinite(figures["finetune_loss"]) and figures["finetune_loss"] < 2.0
