"""Keras guide "Customizing what happens in fit()", the backend-agnostic parts.

The guide's TensorFlow and PyTorch versions differ only in how gradients are
taken; here that is `distkeras.GradientTape` and `self.optimizer.apply`.
Stand-in data: the guide's (1000, 32) -> (1000, 1) float arrays, with a
learnable linear target instead of pure noise so that losses can be compared;
the GAN trains on the bundled 8x8 digits instead of 28x28 MNIST. Keras
figures come from `reference/ref_customizing_what_happens_in_fit.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import ops
from tests.keras_guides import _data, _gan

# Keras 3.15.1 (JAX backend) has no GradientTape; its reference runs the
# built-in train step, which computes what the guide's custom step does
# (forward, compiled MSE, gradients, Adam update), from the same starting
# weights (`_data.initial_weights`) over the same batches (shuffle=False).
# The only difference left: the guide's step feeds the loss tracker one value
# per batch, Keras's built-in step weights it by batch size (the last batch
# has 8 samples, not 32), so losses agree to 2%, other metrics to 1e-3.
# - compile(adam, mse, [mae]), 3 epochs: final loss and mae.
KERAS_LOSS_EPOCH3, KERAS_MAE_EPOCH3 = 0.42510, 0.52429
# - the same for 5 epochs: final mae (the "going lower-level" model).
KERAS_MAE_EPOCH5 = 0.42126
# - with sample_weight=sw (uniform [0, 1) per sample), 3 epochs: final loss.
KERAS_WEIGHTED_LOSS_EPOCH3 = 0.21523


def functional_model(cls):
    inputs = keras.Input(shape=(32,))
    model = cls(inputs, keras.layers.Dense(1)(inputs))
    model.set_weights(_data.initial_weights(model.get_weights()))
    return model


def simple_model_class():
    class CustomModel(keras.Model):
        def train_step(self, data):
            x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    return CustomModel


def test_a_first_simple_example():
    x, y = _data.regression()
    model = functional_model(simple_model_class())
    assert type(model).__name__ == "CustomModel" and len(model.layers) == 2
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=3, verbose=0, shuffle=False)
    assert set(history.history) == {"loss", "mae"}
    assert history.history["loss"][-1] == pytest.approx(KERAS_LOSS_EPOCH3, rel=2e-2)
    assert history.history["mae"][-1] == pytest.approx(KERAS_MAE_EPOCH3, rel=1e-3)
    assert model.optimizer.iterations.numpy() == 3 * 32  # ceil(1000 / 32) steps per epoch


def test_going_lower_level_own_metrics_property():
    class CustomModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.loss_fn(y, y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    x, y = _data.regression()
    model = functional_model(CustomModel)
    model.compile(optimizer="adam")  # no loss, no metrics
    history = model.fit(x, y, epochs=5, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert set(history.history) == {"loss", "mae"} and losses[-1] < losses[0]
    # The trackers are reset each epoch (listed in `metrics`), so the epoch-5
    # mae is that epoch's alone, as Keras's.
    assert history.history["mae"][-1] == pytest.approx(KERAS_MAE_EPOCH5, rel=1e-3)


def test_supporting_sample_weight_and_custom_test_step():
    class CustomModel(keras.Model):
        def train_step(self, data):
            if len(data) == 3:
                x, y, sample_weight = data
            else:
                sample_weight = None
                x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sample_weight)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    x, y = _data.regression()
    sw = np.random.default_rng(1).random((1000, 1)).astype("float32")
    model = functional_model(CustomModel)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, sample_weight=sw, epochs=3, verbose=0, shuffle=False)
    final = history.history["loss"][-1]
    assert final == pytest.approx(KERAS_WEIGHTED_LOSS_EPOCH3, rel=2e-2)

    # Evaluate with the custom test_step: the mean of per-batch MSEs (batch 32;
    # the tracker weights each batch's loss equally, as in the guide).
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    per_batch = [np.mean((pred[i : i + 32] - y[i : i + 32]) ** 2) for i in range(0, 1000, 32)]
    assert logs["loss"] == pytest.approx(np.mean(per_batch), rel=1e-4)
    assert logs["mae"] == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-4)


def _tape_gradients(loss_fn, weights):
    with keras.GradientTape() as tape:
        loss = loss_fn()
    return loss, tape.gradient(loss, weights)


def test_end_to_end_gan_with_two_optimizers():
    keras.utils.set_random_seed(4)
    (x_train, _), (x_test, _) = _data.digits_images()
    all_digits = np.concatenate([x_train, x_test])[:512]
    discriminator, generator = _gan.discriminator(keras), _gan.generator(keras)
    gan = _gan.gan_class(keras, _tape_gradients)(discriminator, generator, _gan.LATENT_DIM)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
        g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    d_before = [w.numpy().copy() for w in discriminator.trainable_weights]
    g_before = [w.numpy().copy() for w in generator.trainable_weights]
    history = gan.fit(all_digits, batch_size=64, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    # Each optimizer stepped once per batch, on its own network only.
    assert gan.d_optimizer.iterations.numpy() == gan.g_optimizer.iterations.numpy() == 16
    assert all(
        not np.array_equal(w.numpy(), b) for w, b in zip(discriminator.trainable_weights, d_before)
    )
    assert all(
        not np.array_equal(w.numpy(), b) for w, b in zip(generator.trainable_weights, g_before)
    )
    # Binary crossentropy of a discriminator near chance is about ln 2; the
    # generator's is positive. (No Keras figure: Keras's JAX backend has no tape.)
    d_loss, g_loss = history.history["d_loss"][-1], history.history["g_loss"][-1]
    assert 0.3 < d_loss < 1.0 and 0.0 < g_loss < 3.0
    images = generator.predict(np.zeros((2, _gan.LATENT_DIM), "float32"), verbose=0)
    assert images.shape == (2, 8, 8, 1) and (images >= 0).all() and (images <= 1).all()
    assert ops.shape(images) == (2, 8, 8, 1)
