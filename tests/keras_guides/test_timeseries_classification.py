"""keras.io example "Timeseries classification from scratch", step by step.

The fully convolutional network (3 x Conv1D + BatchNormalization + ReLU,
GlobalAveragePooling1D, softmax) with the example's callbacks:
ModelCheckpoint(save_best_only on val_loss), ReduceLROnPlateau and
EarlyStopping, then the best model reloaded and evaluated. Stand-in data:
noisy sines of two frequencies, float32 (n, 64, 1) with int64 labels (the
example's FordA: (3601, 500, 1)); 16 filters in place of 64, 6 epochs in place
of 500 (patiences scaled down). Both frameworks start from
`_data.initial_weights` and see the batches in order; Keras figures from
`reference/ref_timeseries_classification.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from tests.keras_guides import _data, _timeseries

# Keras 3.15.1 (JAX backend), same start and batches (batch 32, shuffle=False,
# validation_split 0.2): per-epoch losses, and evaluate() of the best
# checkpoint (epoch 5, the lowest val_loss) on 100 fresh series.
KERAS_LOSS = [0.73852, 0.6115, 0.51379, 0.43813, 0.37675, 0.32325]
KERAS_VAL_LOSS = [0.6875, 0.68015, 0.67193, 0.665, 0.66149, 0.66303]
KERAS_ACCURACY = [0.45417, 0.49583, 0.79583, 0.95, 0.99583, 0.99583]
KERAS_BEST_TEST_LOSS = 0.65695
# BatchNormalization's batch statistics are deterministic: float32 rounding
# only, so 2e-3 relative on losses; accuracies within one of 240 samples.


def test_fcn_with_callbacks(tmp_path):
    x_train, y_train = _data.wave_series(n=300, length=64, seed=0)
    x_test, y_test = _data.wave_series(n=100, length=64, seed=1)
    num_classes = len(np.unique(y_train))
    assert num_classes == 2 and x_train.shape[1:] == (64, 1)

    model = _timeseries.make_model(keras, input_shape=x_train.shape[1:], num_classes=num_classes)
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    best_path = str(tmp_path / "best_model.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(best_path, save_best_only=True, monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=2, min_lr=0.0001
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, verbose=0),
    ]
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=6,
        callbacks=callbacks,
        validation_split=0.2,
        shuffle=False,
        verbose=0,
    )
    np.testing.assert_allclose(history.history["loss"], KERAS_LOSS, rtol=2e-3)
    np.testing.assert_allclose(history.history["val_loss"], KERAS_VAL_LOSS, rtol=2e-3)
    np.testing.assert_allclose(
        history.history["sparse_categorical_accuracy"], KERAS_ACCURACY, atol=1.5 / 240
    )
    # ReduceLROnPlateau logs the learning rate, as in Keras (unchanged: no plateau yet).
    np.testing.assert_allclose(history.history["learning_rate"], [0.001] * 6, rtol=1e-6)

    model = keras.models.load_model(best_path)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    assert test_loss == pytest.approx(KERAS_BEST_TEST_LOSS, rel=2e-3)
    assert 0.0 <= test_acc <= 1.0
