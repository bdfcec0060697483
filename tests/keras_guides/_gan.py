"""The GAN of the guide "Customizing what happens in fit()", scaled to 8x8 images.

Written against a `keras` module passed in, so that the test (distkeras) and
its reference script (real Keras) build the same networks.
"""

from __future__ import annotations

LATENT_DIM = 16


def discriminator(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(16, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(32, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.GlobalMaxPooling2D(),
            layers.Dense(1),
        ],
        name="discriminator",
    )


def generator(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(LATENT_DIM,)),
            layers.Dense(2 * 2 * 32),  # 2x2x32 maps, upsampled twice to 8x8
            layers.LeakyReLU(negative_slope=0.2),
            layers.Reshape((2, 2, 32)),
            layers.Conv2DTranspose(32, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(32, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, (3, 3), padding="same", activation="sigmoid"),
        ],
        name="generator",
    )


def gan_class(keras, gradients):
    """The guide's GAN model; `gradients(loss_fn, weights)` returns (loss, grads)."""
    ops = keras.ops

    class GAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
            self.seed_generator = keras.random.SeedGenerator(1337)

        @property
        def metrics(self):
            return [self.d_loss_tracker, self.g_loss_tracker]

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.loss_fn = loss_fn

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            batch_size = ops.shape(real_images)[0]
            latent = keras.random.normal(
                shape=(batch_size, self.latent_dim), seed=self.seed_generator
            )
            generated = self.generator(latent)
            combined = ops.concatenate([generated, real_images], axis=0)
            labels = ops.concatenate(
                [ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0
            )
            labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
            d_weights = self.discriminator.trainable_weights
            d_loss, grads = gradients(
                lambda: self.loss_fn(labels, self.discriminator(combined)), d_weights
            )
            self.d_optimizer.apply(grads, d_weights)

            latent = keras.random.normal(
                shape=(batch_size, self.latent_dim), seed=self.seed_generator
            )
            misleading_labels = ops.zeros((batch_size, 1))
            g_weights = self.generator.trainable_weights
            g_loss, grads = gradients(
                lambda: self.loss_fn(misleading_labels, self.discriminator(self.generator(latent))),
                g_weights,
            )
            self.g_optimizer.apply(grads, g_weights)
            self.d_loss_tracker.update_state(d_loss)
            self.g_loss_tracker.update_state(g_loss)
            return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    return GAN
