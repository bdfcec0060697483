"""Keras guide "Making new layers and models via subclassing", step by step.

The end-to-end VAE trains on the bundled 8x8 digits flattened to (n, 64)
float32 in [0, 1], in place of MNIST's (n, 784). Keras figures come from
`reference/ref_making_new_layers_and_models_via_subclassing.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops
from tests.keras_guides import _data

# Keras 3.15.1 (JAX backend): the VAE below (64 -> 32 -> latent 8), Adam(1e-3),
# MSE + KL, batch 64: training loss of the 5th epoch, mean of seeds 1, 2, 3
# (range 0.109-0.114). Other initial weights and sampling noise: we allow 15%.
KERAS_VAE_LOSS_EPOCH5 = 0.1123


class Linear(layers.Layer):
    """The guide's final `Linear`: weights deferred to `build`, serializable."""

    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_layer_with_weights_in_init_and_non_trainable_state():
    class EagerLinear(layers.Layer):
        def __init__(self, units=32, input_dim=32):
            super().__init__()
            self.w = self.add_weight(
                shape=(input_dim, units), initializer="random_normal", trainable=True
            )
            self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

    x = ops.ones((2, 2))
    linear_layer = EagerLinear(4, 2)
    y = linear_layer(x)
    w = linear_layer.w.numpy()
    np.testing.assert_allclose(np.asarray(y), np.ones((2, 2)) @ w, rtol=1e-6)
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]

    class ComputeSum(layers.Layer):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

        def call(self, inputs):
            self.total.assign_add(ops.sum(inputs, axis=0))
            return self.total

    x = ops.ones((2, 2))
    my_sum = ComputeSum(2)
    np.testing.assert_array_equal(np.asarray(my_sum(x)), [2.0, 2.0])
    np.testing.assert_array_equal(np.asarray(my_sum(x)), [4.0, 4.0])
    assert len(my_sum.weights) == 1
    assert len(my_sum.non_trainable_weights) == 1
    assert len(my_sum.trainable_weights) == 0


def test_deferred_build_and_nested_layers():
    linear_layer = Linear(32)
    assert not linear_layer.built and linear_layer.weights == []
    y = linear_layer(np.ones((2, 5), dtype="float32"))  # build() gets the input shape
    assert linear_layer.built and y.shape == (2, 32)
    assert tuple(linear_layer.w.shape) == (5, 32)

    class MLPBlock(layers.Layer):
        def __init__(self):
            super().__init__()
            self.linear_1 = Linear(32)
            self.linear_2 = Linear(32)
            self.linear_3 = Linear(1)

        def call(self, inputs):
            x = self.linear_1(inputs)
            x = ops.relu(x)
            x = self.linear_2(x)
            x = ops.relu(x)
            return self.linear_3(x)

    mlp = MLPBlock()
    y = mlp(ops.ones(shape=(3, 64)))
    assert y.shape == (3, 1)
    assert len(mlp.weights) == 6
    assert len(mlp.trainable_weights) == 6


def test_add_loss_nested_and_regularizers_then_fit():
    class ActivityRegularizationLayer(layers.Layer):
        def __init__(self, rate=1e-2):
            super().__init__()
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * ops.mean(inputs))
            return inputs

    class OuterLayer(layers.Layer):
        def __init__(self):
            super().__init__()
            self.activity_reg = ActivityRegularizationLayer(1e-2)

        def call(self, inputs):
            return self.activity_reg(inputs)

    layer = OuterLayer()
    assert len(layer.losses) == 0  # No losses yet since the layer has never been called
    layer(ops.zeros((1, 1)))
    assert len(layer.losses) == 1  # We created one loss value
    layer(ops.zeros((1, 1)))
    assert len(layer.losses) == 1  # `layer.losses` gets reset at the start of any __call__
    layer(np.full((1, 1), 3.0, dtype="float32"))
    assert float(layer.losses[0]) == pytest.approx(0.03)

    class OuterLayerWithKernelRegularizer(layers.Layer):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(32, kernel_regularizer=keras.regularizers.l2(1e-3))

        def call(self, inputs):
            return self.dense(inputs)

    layer = OuterLayerWithKernelRegularizer()
    layer(ops.zeros((1, 1)))
    assert len(layer.losses) == 1
    kernel = layer.dense.kernel.numpy()
    assert float(layer.losses[0]) == pytest.approx(1e-3 * np.sum(kernel**2), rel=1e-5)

    inputs = keras.Input(shape=(3,))
    outputs = ActivityRegularizationLayer()(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x, y = np.random.random((2, 3)), np.random.random((2, 3))
    expected = np.mean((x - y) ** 2) + 1e-2 * np.mean(x)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
    model.fit(x, y, verbose=0)
    model.compile(optimizer="adam")  # the add_loss term alone is the loss
    assert model.evaluate(x, y, verbose=0) == pytest.approx(1e-2 * np.mean(x), rel=1e-5)
    model.fit(x, y, verbose=0)


def test_get_config_from_config_and_training_argument():
    layer = Linear(64)
    config = layer.get_config()
    assert config["units"] == 64 and "name" in config and "trainable" in config
    new_layer = Linear.from_config(config)
    assert new_layer.units == 64 and new_layer.name == layer.name

    class CustomDropout(layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs, training=None):
            if training:
                return keras.random.dropout(inputs, rate=self.rate, seed=self.seed_generator)
            return inputs

    drop = CustomDropout(0.5)
    x = np.ones((200, 50), dtype="float32")
    np.testing.assert_array_equal(np.asarray(drop(x)), x)  # inference: identity
    out = np.asarray(drop(x, training=True))
    assert set(np.unique(out)) == {0.0, 2.0}  # kept units scaled by 1 / (1 - rate)
    assert abs((out == 0).mean() - 0.5) < 0.02


class Sampling(layers.Layer):
    """Draws z from N(z_mean, exp(z_log_var))."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class Encoder(layers.Layer):
    def __init__(self, latent_dim=32, intermediate_dim=64, name="encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_mean = layers.Dense(latent_dim)
        self.dense_log_var = layers.Dense(latent_dim)
        self.sampling = Sampling()

    def call(self, inputs):
        x = self.dense_proj(inputs)
        z_mean, z_log_var = self.dense_mean(x), self.dense_log_var(x)
        return z_mean, z_log_var, self.sampling((z_mean, z_log_var))


class Decoder(layers.Layer):
    def __init__(self, original_dim, intermediate_dim=64, name="decoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dense_output = layers.Dense(original_dim, activation="sigmoid")

    def call(self, inputs):
        return self.dense_output(self.dense_proj(inputs))


class VariationalAutoEncoder(keras.Model):
    def __init__(self, original_dim, intermediate_dim=64, latent_dim=32, name="autoencoder"):
        super().__init__(name=name)
        self.original_dim = original_dim
        self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
        self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        reconstructed = self.decoder(z)
        kl_loss = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        return reconstructed


def test_end_to_end_vae():
    keras.utils.set_random_seed(1)
    (x_train, _), _ = _data.digits_flat()
    vae = VariationalAutoEncoder(64, 32, 8)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    vae.compile(optimizer, loss=keras.losses.MeanSquaredError())
    history = vae.fit(x_train, x_train, epochs=5, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert abs(losses[-1] - KERAS_VAE_LOSS_EPOCH5) < 0.15 * KERAS_VAE_LOSS_EPOCH5
    assert len(vae.losses) == 1  # the KL term of the last call
    # The nested layers' weights are all tracked by the model: 3 + 2 Dense layers.
    assert len(vae.trainable_weights) == 10
    assert vae.predict(x_train[:5], verbose=0).shape == (5, 64)
