"""Keras guide "Training & evaluation with the built-in methods", step by step.

Stand-in data: the bundled 8x8 digits flattened to (n, 64) float32 in place of
MNIST's (n, 784); labels are float32 as in the guide. Figures from real Keras
come from `reference/ref_training_with_built_in_methods.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops
from tests.keras_guides import _data

# Keras 3.15.1 (JAX backend), same data, model and schedule: test accuracy after
# 5 epochs of RMSprop (batch 64), mean over seeds 1, 2, 3 (range 0.894-0.914).
# Ours starts from other random weights, so we allow 0.05 (2.5x Keras's own range).
KERAS_TEST_ACCURACY = 0.907
# Keras 3.15.1: the same model with class_weight (class 5 weighted 2.0), 3
# epochs: recall of class 5 on the test set (1.0 for each of seeds 1, 2, 3).
KERAS_CLASS5_RECALL = 1.0


def load():
    (x_train, y_train), (x_test, y_test) = _data.digits_flat()
    y_train, y_test = y_train.astype("float32"), y_test.astype("float32")
    return (x_train[:-300], y_train[:-300]), (x_train[-300:], y_train[-300:]), (x_test, y_test)


def get_uncompiled_model():
    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def get_compiled_model():
    model = get_uncompiled_model()
    model.compile(
        optimizer="rmsprop",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model


def test_end_to_end_fit_evaluate_predict():
    keras.utils.set_random_seed(1)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load()
    model = get_uncompiled_model()
    model.compile(
        optimizer=keras.optimizers.RMSprop(),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    history = model.fit(
        x_train, y_train, batch_size=64, epochs=5, validation_data=(x_val, y_val), verbose=0
    )
    assert set(history.history) == {
        "loss",
        "sparse_categorical_accuracy",
        "val_loss",
        "val_sparse_categorical_accuracy",
    }
    assert len(history.history["loss"]) == 5
    assert history.history["loss"][-1] < history.history["loss"][0]
    results = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    assert len(results) == 2  # [test loss, test acc]
    assert abs(results[1] - KERAS_TEST_ACCURACY) < 0.05
    predictions = model.predict(x_test[:3], verbose=0)
    assert predictions.shape == (3, 10)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)


def test_custom_loss_function_and_class():
    keras.utils.set_random_seed(2)
    (x_train, y_train), _, _ = load()
    y_train_one_hot = ops.one_hot(y_train.astype("int64"), num_classes=10)

    def custom_mean_squared_error(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    model = get_uncompiled_model()
    model.compile(optimizer=keras.optimizers.Adam(), loss=custom_mean_squared_error)
    history = model.fit(x_train, y_train_one_hot, batch_size=64, epochs=1, verbose=0)
    pred = model.predict(x_train[:64], verbose=0)
    expected = np.mean(np.mean((np.asarray(y_train_one_hot[:64]) - pred) ** 2, axis=-1))
    assert model.evaluate(x_train[:64], y_train_one_hot[:64], verbose=0) == pytest.approx(
        expected, rel=1e-4
    )
    assert np.isfinite(history.history["loss"][0])

    class CustomMSE(keras.losses.Loss):
        def __init__(self, regularization_factor=0.1, name="custom_mse"):
            super().__init__(name=name)
            self.regularization_factor = regularization_factor

        def call(self, y_true, y_pred):
            mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
            reg = ops.mean(ops.square(0.5 - y_pred), axis=-1)
            return mse + reg * self.regularization_factor

    model = get_uncompiled_model()
    model.compile(optimizer=keras.optimizers.Adam(), loss=CustomMSE())
    model.fit(x_train, y_train_one_hot, batch_size=64, epochs=1, verbose=0)
    pred = model.predict(x_train[:64], verbose=0)
    y1 = np.asarray(y_train_one_hot[:64])
    expected = np.mean(((y1 - pred) ** 2).mean(-1) + 0.1 * ((0.5 - pred) ** 2).mean(-1))
    got = model.evaluate(x_train[:64], y1, verbose=0)
    assert got == pytest.approx(expected, rel=1e-4)


def test_custom_metric_subclass():
    class CategoricalTruePositives(keras.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
            values = ops.cast(values, "float32")
            if sample_weight is not None:
                values = ops.multiply(values, ops.cast(sample_weight, "float32"))
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    keras.utils.set_random_seed(3)
    (x_train, y_train), _, _ = load()
    model = get_uncompiled_model()
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[CategoricalTruePositives()],
    )
    history = model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0)
    counts = history.history["categorical_true_positives"]
    assert 0 < counts[0] < counts[-1]
    # As written in the guide, y_true (n,) meets y_pred (n, 1): the comparison
    # broadcasts to (n, n) and the metric counts matching pairs in each batch.
    # Keras 3.15.1 does exactly this (reference script: its evaluate() equals
    # this pair count, 4218 against 630 correct predictions); so must we.
    pred = model.predict(x_train, verbose=0).argmax(1)
    logs = model.evaluate(x_train, y_train, verbose=0, return_dict=True)
    pairs = sum(
        (y_train[i : i + 32][None, :] == pred[i : i + 32][:, None]).sum()
        for i in range(0, len(pred), 32)
    )
    assert logs["categorical_true_positives"] == pairs
    assert pairs > (pred == y_train).sum()


def test_add_loss_layer_and_endpoint_without_compiled_loss():
    class ActivityRegularizationLayer(layers.Layer):
        def call(self, inputs):
            self.add_loss(ops.sum(inputs) * 0.1)
            return inputs

    keras.utils.set_random_seed(4)
    (x_train, y_train), _, _ = load()
    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = ActivityRegularizationLayer()(x)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # The activity loss is much larger than the crossentropy, as in the guide's log.
    logs = model.evaluate(x_train[:64], y_train[:64], verbose=0, return_dict=True)
    model(x_train[:64])
    assert len(model.losses) == 1
    assert logs["loss"] > float(model.losses[0]) * 0.5
    model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)

    class LogisticEndpoint(layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits, sample_weights=None):
            loss = self.loss_fn(targets, logits, sample_weights)
            self.add_loss(loss)
            return ops.softmax(logits)

    inputs = keras.Input(shape=(3,), name="inputs")
    targets = keras.Input(shape=(10,), name="targets")
    logits = layers.Dense(10)(inputs)
    predictions = LogisticEndpoint(name="predictions")(targets, logits)
    model = keras.Model(inputs=[inputs, targets], outputs=predictions)
    model.compile(optimizer="adam")  # No loss argument!
    data = {
        "inputs": np.random.random((3, 3)).astype("float32"),
        "targets": np.random.random((3, 10)).astype("float32"),
    }
    before = model.evaluate(data, verbose=0)
    model.fit(data, epochs=20, verbose=0)
    assert model.evaluate(data, verbose=0) < before


def test_validation_split_class_and_sample_weights():
    keras.utils.set_random_seed(5)
    (x_train, y_train), _, (x_test, y_test) = load()
    model = get_compiled_model()
    history = model.fit(x_train, y_train, batch_size=64, validation_split=0.2, epochs=1, verbose=0)
    assert "val_loss" in history.history
    # validation_split holds out the *last* 20%: the val loss is that slice's evaluate().
    split_at = int(len(x_train) * (1 - 0.2))  # Keras's rule: train on the first 80%
    hold = model.evaluate(x_train[split_at:], y_train[split_at:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(hold[0], rel=1e-4)

    class_weight = {i: 1.0 for i in range(10)}
    class_weight[5] = 2.0
    model = get_compiled_model()
    model.fit(x_train, y_train, class_weight=class_weight, batch_size=64, epochs=3, verbose=0)
    pred = model.predict(x_test, verbose=0).argmax(1)
    recall5 = (pred[y_test == 5] == 5).mean()
    assert abs(recall5 - KERAS_CLASS5_RECALL) <= 0.1  # 1 in 10 of the ~30 test fives

    sample_weight = np.ones(shape=(len(y_train),))
    sample_weight[y_train == 5] = 2.0
    model = get_compiled_model()
    history = model.fit(
        x_train, y_train, sample_weight=sample_weight, batch_size=64, epochs=1, verbose=0
    )
    # The weighted mean of the loss: evaluate() with the same weights agrees with the formula.
    pred = model.predict(x_train, verbose=0)
    per_sample = -np.log(pred[np.arange(len(y_train)), y_train.astype(int)])
    expected = (per_sample * sample_weight).sum() / len(y_train)  # "sum_over_batch_size"
    got = model.evaluate(x_train, y_train, sample_weight=sample_weight, verbose=0)[0]
    assert got == pytest.approx(expected, rel=1e-3)


def test_multi_input_multi_output_and_callbacks(tmp_path):
    image_input = keras.Input(shape=(8, 8, 3), name="img_input")
    timeseries_input = keras.Input(shape=(None, 10), name="ts_input")
    x1 = layers.Conv2D(3, 3)(image_input)
    x1 = layers.GlobalMaxPooling2D()(x1)
    x2 = layers.Conv1D(3, 3)(timeseries_input)
    x2 = layers.GlobalMaxPooling1D()(x2)
    x = layers.concatenate([x1, x2])
    score_output = layers.Dense(1, name="score_output")(x)
    class_output = layers.Dense(5, name="class_output")(x)
    model = keras.Model(
        inputs=[image_input, timeseries_input], outputs=[score_output, class_output]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "score_output": keras.losses.MeanSquaredError(),
            "class_output": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        metrics={
            "score_output": [keras.metrics.MeanAbsolutePercentageError()],
            "class_output": [keras.metrics.CategoricalAccuracy()],
        },
        loss_weights={"score_output": 2.0, "class_output": 1.0},
    )
    rng = np.random.default_rng(0)
    img_data = rng.random((100, 8, 8, 3)).astype("float32")
    ts_data = rng.random((100, 12, 10)).astype("float32")
    score_targets = rng.random((100, 1)).astype("float32")
    class_targets = np.eye(5, dtype="float32")[rng.integers(0, 5, 100)]
    history = model.fit(
        {"img_input": img_data, "ts_input": ts_data},
        {"score_output": score_targets, "class_output": class_targets},
        batch_size=32,
        epochs=2,
        verbose=0,
    )
    logs = {k: v[-1] for k, v in history.history.items()}
    assert {"loss", "score_output_loss", "class_output_loss"} <= set(logs)
    ev = model.evaluate(
        [img_data, ts_data], [score_targets, class_targets], verbose=0, return_dict=True
    )
    # The total loss is the loss_weights-weighted sum of the two output losses.
    total = 2.0 * ev["score_output_loss"] + ev["class_output_loss"]
    assert ev["loss"] == pytest.approx(total, rel=1e-4)

    # Callbacks: EarlyStopping on val_loss and a ModelCheckpoint per epoch.
    (x_train, y_train), (x_val, y_val), _ = load()
    model = get_compiled_model()
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=1e-2, patience=2, verbose=0),
        keras.callbacks.ModelCheckpoint(
            filepath=str(tmp_path / "mymodel_{epoch}.keras"), save_best_only=False
        ),
    ]
    history = model.fit(
        x_train,
        y_train,
        epochs=30,
        batch_size=64,
        callbacks=callbacks,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    epochs = len(history.history["loss"])
    assert epochs < 30  # stopped early
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"mymodel_{i}.keras" for i in range(1, epochs + 1)
    )
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert epochs == best + 3 or min(val[-2:]) > val[best] - 1e-2  # patience 2 after the best
