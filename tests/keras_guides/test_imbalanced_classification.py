"""keras.io example "Imbalanced classification: credit card fraud detection".

Normalize with the training set's mean and std, a Dense stack ending in a
sigmoid, `binary_crossentropy` with rank-1 labels, the confusion-matrix
metrics, `class_weight` of 1 / count per class and `validation_data`.
Stand-in data: 2000 rows of 30 float32 features with 5% positives (the
example: 284,807 rows, 0.17% positives). The example's Dropout layers are
left out so that both frameworks, started from the same weights on the same
batches, give comparable figures (`reference/ref_binary.py`).
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from tests.keras_guides import _data

# Keras 3.15.1 (JAX backend), same weights and batches (batch 256,
# shuffle=False), Adam(1e-2), 10 epochs: the last epoch's validation counts.
KERAS_VAL = {"val_fn": 5.0, "val_fp": 7.0, "val_tn": 370.0, "val_tp": 18.0, "val_loss": 0.08415}


def test_fraud_detection_with_class_weight():
    x, y = _data.binary_table(n=2000, features=30, seed=1, positive_rate=0.05)
    x_train, y_train, x_val, y_val = x[:1600], y[:1600], x[1600:], y[1600:]
    counts = np.bincount(y_train)
    assert counts[1] / len(y_train) < 0.06  # the imbalance
    mean, std = np.mean(x_train, axis=0), np.std(x_train, axis=0)
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std

    model = keras.Sequential(
        [
            keras.Input(shape=(30,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.set_weights(_data.initial_weights(model.get_weights()))
    metrics = [
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics
    )
    class_weight = {0: 1.0 / counts[0], 1: 1.0 / counts[1]}
    history = model.fit(
        x_train,
        y_train,
        batch_size=256,
        epochs=10,
        verbose=0,
        shuffle=False,
        validation_data=(x_val, y_val),
        class_weight=class_weight,
    )
    last = {k: v[-1] for k, v in history.history.items()}
    # The counts add up to the sample counts, and precision/recall follow from them.
    assert last["fn"] + last["fp"] + last["tn"] + last["tp"] == len(y_train)
    assert last["val_fn"] + last["val_fp"] + last["val_tn"] + last["val_tp"] == len(y_val)
    assert last["val_recall"] == pytest.approx(
        last["val_tp"] / (last["val_tp"] + last["val_fn"]), rel=1e-5
    )
    # The same trajectory as Keras: validation counts within 2 samples of 400.
    for key in ("val_fn", "val_fp", "val_tn", "val_tp"):
        assert abs(last[key] - KERAS_VAL[key]) <= 2, key
    assert last["val_loss"] == pytest.approx(KERAS_VAL["val_loss"], rel=0.05)
    # The class weights give the rare class as much total weight as the common one:
    # most of the validation frauds are found.
    assert last["val_recall"] > 0.6
