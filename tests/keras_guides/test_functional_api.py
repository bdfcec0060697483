"""Keras guide "The Functional API", step by step.

Stand-in data: the bundled digits as (n, 64) float32 in place of MNIST's
(n, 784); random ticket data of the guide's structure (smaller vocabulary and
lengths); the toy ResNet on 16x16 images instead of 32x32 CIFAR-10. Trained
models start from `_data.initial_weights` on unshuffled batches in both
frameworks; Keras figures from `reference/ref_functional_api.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _data, _functional

# Keras 3.15.1 (JAX backend), same weights and batches: the MNIST-style model,
# RMSprop, batch 64, validation_split 0.2, 2 epochs: history and test evaluate().
KERAS_MNIST_HISTORY = {
    "accuracy": [0.40818, 0.75544],
    "loss": [2.04108, 1.55639],
    "val_accuracy": [0.64931, 0.81944],
    "val_loss": [1.7849, 1.32679],
}
KERAS_MNIST_TEST = (1.28935, 0.83056)
KERAS_MNIST_PARAMS = 8970
# Keras 3.15.1: the ticket model (Embedding + LSTM, two named outputs,
# loss_weights 1.0 / 0.2), RMSprop(1e-3), batch 32, 2 epochs, from the same
# `set_weights(list)`: both order the weights by the graph (deepest layers
# first, dict outputs by sorted key: "department" before "priority").
KERAS_TICKET_HISTORY = {
    "department_loss": [3.01157, 2.98637],
    "loss": [1.34366, 1.33257],
    "priority_loss": [0.74135, 0.7353],
}
KERAS_TICKET_PARAMS = 33261
KERAS_RESNET_PARAMS = 13866
# Same start and batches: float32 rounding only, so 1e-3 relative on losses
# (accuracies: 1 sample).


def test_mnist_model_train_evaluate_save(tmp_path):
    (x_train, y_train), (x_test, y_test) = _data.digits_flat()
    model = _functional.mnist_model(keras)
    assert model.name == "mnist_model" and model.count_params() == KERAS_MNIST_PARAMS
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train, y_train, batch_size=64, epochs=2, validation_split=0.2, shuffle=False, verbose=0
    )
    for key, want in KERAS_MNIST_HISTORY.items():
        tol = dict(atol=1.5 / 288) if "accuracy" in key else dict(rtol=1e-3)
        np.testing.assert_allclose(history.history[key], want, err_msg=key, **tol)
    test_scores = model.evaluate(x_test, y_test, verbose=0)
    assert test_scores[0] == pytest.approx(KERAS_MNIST_TEST[0], rel=1e-3)
    assert test_scores[1] == pytest.approx(KERAS_MNIST_TEST[1], abs=1.5 / 360)

    model.save(tmp_path / "my_model.keras")
    del model
    model = keras.models.load_model(tmp_path / "my_model.keras")
    assert model.evaluate(x_test, y_test, verbose=0)[0] == pytest.approx(test_scores[0], rel=1e-6)


def test_same_graph_to_define_multiple_models_and_ensembling():
    encoder_input = keras.Input(shape=(28, 28, 1), name="img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    assert encoder.output_shape == (None, 16)

    x = layers.Reshape((4, 4, 1))(encoder_output)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")
    assert autoencoder.output_shape == (None, 28, 28, 1)
    # The two models share the encoder's layers (and weights).
    assert all(layer in autoencoder.layers for layer in encoder.layers)

    # Models are callable, like layers: an ensemble averages three of them.
    def get_model():
        inputs = keras.Input(shape=(128,))
        return keras.Model(inputs, layers.Dense(1)(inputs))

    model1, model2, model3 = get_model(), get_model(), get_model()
    inputs = keras.Input(shape=(128,))
    outputs = layers.average([model1(inputs), model2(inputs), model3(inputs)])
    ensemble_model = keras.Model(inputs=inputs, outputs=outputs)
    x = np.random.default_rng(0).random((4, 128)).astype("float32")
    want = np.mean([m.predict(x, verbose=0) for m in (model1, model2, model3)], axis=0)
    np.testing.assert_allclose(ensemble_model.predict(x, verbose=0), want, rtol=1e-5)


def test_multi_input_multi_output_ticket_model():
    model = _functional.ticket_model(keras)
    assert model.count_params() == KERAS_TICKET_PARAMS
    model.set_weights(_data.initial_weights(model.get_weights(), seed=1))
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    (title, body, tags), (priority, department) = _functional.ticket_data()
    history = model.fit(
        {"title": title, "body": body, "tags": tags},
        {"priority": priority, "department": department},
        epochs=2,
        batch_size=32,
        shuffle=False,
        verbose=0,
    )
    for key, want in KERAS_TICKET_HISTORY.items():
        np.testing.assert_allclose(history.history[key], want, rtol=1e-3, err_msg=key)


def test_toy_resnet_shared_layers_and_custom_layer():
    model = _functional.toy_resnet(keras)
    assert model.count_params() == KERAS_RESNET_PARAMS
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 16, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)
    history = model.fit(x, y, batch_size=32, epochs=1, validation_split=0.2, verbose=0)
    assert {"loss", "acc", "val_loss", "val_acc"} <= set(history.history)

    # Shared layers: one Embedding applied to two inputs holds one weight.
    shared_embedding = layers.Embedding(1000, 128)
    text_input_a = keras.Input(shape=(None,), dtype="int32")
    text_input_b = keras.Input(shape=(None,), dtype="int32")
    model = keras.Model(
        [text_input_a, text_input_b],
        [shared_embedding(text_input_a), shared_embedding(text_input_b)],
    )
    assert len(model.weights) == 1

    # A custom layer with get_config, rebuilt from the model's config.
    class CustomDense(layers.Layer):
        def __init__(self, units=32):
            super().__init__()
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
            )
            self.b = self.add_weight(
                shape=(self.units,), initializer="random_normal", trainable=True
            )

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            return {"units": self.units}

    inputs = keras.Input((4,))
    model = keras.Model(inputs, CustomDense(10)(inputs))
    config = model.get_config()
    new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    assert new_model.output_shape == (None, 10)
    assert isinstance(new_model.layers[-1], CustomDense)
