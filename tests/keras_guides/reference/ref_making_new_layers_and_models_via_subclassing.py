"""Keras 3 figures for test_making_new_layers_and_models_via_subclassing.py."""

import keras
from keras import layers, ops

from tests.keras_guides import _data
from tests.keras_guides.reference._common import over_seeds


class Sampling(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


class VAE(keras.Model):
    def __init__(self, original_dim, intermediate_dim, latent_dim):
        super().__init__()
        self.proj = layers.Dense(intermediate_dim, activation="relu")
        self.mean = layers.Dense(latent_dim)
        self.log_var = layers.Dense(latent_dim)
        self.sampling = Sampling()
        self.dec_proj = layers.Dense(intermediate_dim, activation="relu")
        self.dec_out = layers.Dense(original_dim, activation="sigmoid")

    def call(self, inputs):
        x = self.proj(inputs)
        z_mean, z_log_var = self.mean(x), self.log_var(x)
        z = self.sampling((z_mean, z_log_var))
        out = self.dec_out(self.dec_proj(z))
        self.add_loss(-0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1))
        return out


def vae(seed):
    (x_train, _), _ = _data.digits_flat()
    model = VAE(64, 32, 8)
    model.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.MeanSquaredError())
    history = model.fit(x_train, x_train, epochs=5, batch_size=64, verbose=0)
    return {"loss_epoch5": history.history["loss"][-1]}


if __name__ == "__main__":
    over_seeds(vae)
