"""Keras guide "Writing a training loop from scratch" (the GradientTape version).

A loop over batches: forward under `distkeras.GradientTape`, loss, gradients,
`optimizer.apply`, metrics updated per batch, reported and reset per epoch, a
validation loop, and `model.losses` added to the loss. Stand-in data: the
bundled digits as (n, 64) float32 (MNIST: (n, 784)). Both frameworks start
from `_data.initial_weights` and see the batches in order; the Keras figures
(`reference/ref_writing_a_custom_training_loop.py`) come from `fit`, which
runs the same computation in Keras's JAX backend (which has no tape).
"""

from __future__ import annotations

import numpy as np

import distkeras as keras
from distkeras import layers, ops
from tests.keras_guides import _data

# Keras 3.15.1, SGD(1e-2), batch 32, 2 epochs, same start and batch order:
# per-epoch training loss (mean over samples), training and validation accuracy.
KERAS_PLAIN = {
    "loss": [2.25036, 2.15265],
    "acc": [0.13709, 0.254],
    "val_acc": [0.16389, 0.36667],
}
# The same with the guide's ActivityRegularizationLayer (1e-2 * sum) after the first Dense.
KERAS_WITH_ACTIVITY_LOSS = {
    "loss": [3.5105, 2.43387],
    "acc": [0.10647, 0.14266],
    "val_acc": [0.11667, 0.12222],
}
# Float32 rounding only: 1e-3 relative on losses; accuracies within 1 sample.


class ActivityRegularizationLayer(layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-2 * ops.sum(inputs))
        return inputs


def get_model(with_activity_loss=False):
    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu")(inputs)
    if with_activity_loss:
        x = ActivityRegularizationLayer()(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, name="predictions")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def run_loop(model, epochs=2, batch_size=32):
    (x_train, y_train), (x_val, y_val) = _data.digits_flat()
    optimizer = keras.optimizers.SGD(learning_rate=1e-2)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    val_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    record = {"loss": [], "acc": [], "val_acc": []}
    for _epoch in range(epochs):
        total, seen = 0.0, 0
        for step in range(0, len(x_train), batch_size):
            x_batch, y_batch = x_train[step : step + batch_size], y_train[step : step + batch_size]
            with keras.GradientTape() as tape:
                logits = model(x_batch, training=True)
                loss_value = loss_fn(y_batch, logits)
                if model.losses:
                    loss_value = loss_value + sum(model.losses)
            grads = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply(grads, model.trainable_weights)
            train_acc_metric.update_state(y_batch, logits)
            total += float(loss_value) * len(x_batch)
            seen += len(x_batch)
        record["loss"].append(total / seen)
        record["acc"].append(float(train_acc_metric.result()))
        train_acc_metric.reset_state()
        for step in range(0, len(x_val), 64):
            val_logits = model(x_val[step : step + 64], training=False)
            val_acc_metric.update_state(y_val[step : step + 64], val_logits)
        record["val_acc"].append(float(val_acc_metric.result()))
        val_acc_metric.reset_state()
    return record


def check(record, want):
    np.testing.assert_allclose(record["loss"], want["loss"], rtol=1e-3)
    np.testing.assert_allclose(record["acc"], want["acc"], atol=1.5 / 1437)
    np.testing.assert_allclose(record["val_acc"], want["val_acc"], atol=1.5 / 360)


def test_end_to_end_loop_with_metrics_and_validation():
    model = get_model()
    model.set_weights(_data.initial_weights(model.get_weights()))
    check(run_loop(model), KERAS_PLAIN)


def test_loop_with_add_loss():
    model = get_model(with_activity_loss=True)
    model.set_weights(_data.initial_weights(model.get_weights()))
    model(np.zeros((2, 64), dtype="float32"))
    assert len(model.losses) == 1  # collected at each call, reset at the next
    check(run_loop(model), KERAS_WITH_ACTIVITY_LOSS)
