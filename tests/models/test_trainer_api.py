"""Keras 3's public Trainer surface: overridable steps, compute_loss/compute_metrics,
metrics, compile without a loss, per-batch *_on_batch values, validation hooks."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras
from distkeras import callbacks, layers, metrics, ops, optimizers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed
from tests.harness import numeric_grad


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def _loss_grad(fn, arrays, i):
    """d fn / d arrays[i] for a scalar fn (numeric_grad weights the output by a fixed scalar)."""
    return numeric_grad(fn, arrays, i) / np.random.default_rng(0).normal(size=())


class Regressor(distkeras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(2)

    def call(self, x, training=False):
        return self.dense(x)


def _twin(cls, seed=1):
    set_random_seed(seed)
    model = cls()
    model(np.zeros((1, 4), "float32"))
    return model


class GuideStep(Regressor):
    """The Keras 3 guide's train_step: tape, compute_loss, optimizer.apply, self.metrics."""

    def train_step(self, data):
        x, y = data
        with distkeras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_custom_train_step_trains_like_the_built_in_one():
    x, y = _data()
    builtin, custom = _twin(Regressor), _twin(GuideStep)
    for m in (builtin, custom):
        m.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="mse", metrics=["mae"])
    h1 = builtin.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h2 = custom.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(builtin.get_weights(), custom.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The compiled "mae" is in self.metrics from the first batch on, as in Keras.
    np.testing.assert_allclose(h2.history["mae"], h1.history["mae"], rtol=1e-5)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-5)


def test_overridden_test_step_predict_step_and_compute_metrics_are_used():
    class Custom(Regressor):
        def test_step(self, data):
            x, y = data
            return {"sq": float(np.mean(np.square(self(x).numpy() - y)))}

        def predict_step(self, data):
            return self(data) * 2.0

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            logs = super().compute_metrics(x, y, y_pred, sample_weight)
            logs["batch_rows"] = float(len(x))
            return logs

    x, y = _data()
    model = _twin(Custom)
    model.compile(optimizer="sgd", loss="mse")
    hist = model.fit(x, y, batch_size=32, epochs=1, verbose=0, validation_data=(x, y))
    assert hist.history["batch_rows"] == [32.0]  # compute_metrics' extra key reached the logs
    assert "val_sq" in hist.history  # fit's validation runs the overridden test_step
    out = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    expected = float(np.mean(np.square(model.predict_on_batch(x) / 2.0 - y)))
    assert out == pytest.approx({"sq": expected}, rel=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), 2.0 * model(x).numpy(), rtol=1e-6)


def test_compute_loss_override_without_compiled_loss_is_the_trained_loss():
    class L1(Regressor):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return 3.0 * ops.mean(ops.abs(y_pred - y))

    x, y = _data(8)
    model = _twin(L1)
    model.compile(optimizer=optimizers.SGD(0.05))  # no loss: it comes from compute_loss
    k, b = (w.astype("float64") for w in model.get_weights())

    def loss(k, b):
        return np.asarray(3.0 * np.mean(np.abs(x @ k + b - y)))

    value = model.train_on_batch(x, y)
    assert value == pytest.approx(float(loss(k, b)), rel=1e-5)
    expected = [k - 0.05 * _loss_grad(loss, [k, b], 0), b - 0.05 * _loss_grad(loss, [k, b], 1)]
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


class Reconstruction(layers.Layer):
    """An endpoint layer: adds the reconstruction error as a loss, returns the reconstruction."""

    def call(self, inputs):
        x, recon = inputs
        self.add_loss(ops.mean(ops.square(x - recon)))
        return recon


def test_compile_without_loss_trains_on_add_loss_like_a_vae():
    inp = layers.Input((4,))
    code = layers.Dense(2, use_bias=False)(inp)
    recon = layers.Dense(4)(code)
    out = Reconstruction()([inp, recon])
    model = distkeras.Model(inp, out)
    model.compile(optimizer=optimizers.SGD(0.1))
    x, _ = _data(16)
    w1, w2, b2 = (w.astype("float64") for w in model.get_weights())

    def loss(w1, w2, b2):
        return np.asarray(np.mean(np.square(x - ((x @ w1) @ w2 + b2))))

    value = model.train_on_batch(x)
    assert value == pytest.approx(float(loss(w1, w2, b2)), rel=1e-5)
    arrays = [w1, w2, b2]
    for i, got in enumerate(model.get_weights()):
        want = arrays[i] - 0.1 * _loss_grad(loss, arrays, i)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    hist = model.fit(x, epochs=5, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_layer_losses_restart_at_each_top_level_call():
    inp = layers.Input((4,))
    out = Reconstruction()([inp, layers.Dense(4)(inp)])
    inner = distkeras.Model(inp, out)
    x, _ = _data(4)
    inner(x)
    inner(x)
    assert len(inner.losses) == 1  # not 2: the second call cleared the first call's loss

    class Outer(distkeras.Model):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def call(self, x):
            return self.inner(x) + self.inner(x)  # nested calls accumulate

    outer = Outer()
    outer(x)
    assert len(outer.losses) == 2
    outer(x)
    assert len(outer.losses) == 2


def test_metrics_lists_attribute_metrics_and_resets_them():
    class Tracked(Regressor):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seen = metrics.Sum(name="seen")

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            self.seen.update_state(float(len(x)))
            return super().compute_metrics(x, y, y_pred, sample_weight)

    x, y = _data()
    model = _twin(Tracked)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert model.metrics_names == ["loss", "mae", "seen"]
    assert hist.history["seen"] == [32.0, 32.0]  # reset at each epoch start
    assert model.get_metrics_result()["seen"] == 32.0
    model.reset_metrics()
    assert model.get_metrics_result()["seen"] == 0.0


# Keras 3.15.1 (jax backend) on the same inputs, weights and optimizer (see
# _on_batch_model): train_on_batch and test_on_batch return each batch's own values.
KERAS_TRAIN = [[1.1805908679962158, 0.25], [1.224839687347412, 0.0]]
KERAS_TEST = [[1.111962914466858, 0.25], [1.1849515438079834, 0.0]]
KERAS_KERNEL = [
    [-0.48451077938079834, -0.38969311118125916, -0.32579609751701355],
    [-0.18578900396823883, -0.06888633221387863, -0.04532463103532791],
    [0.13141530752182007, 0.2099069505929947, 0.25867775082588196],
    [0.4366871416568756, 0.5075445771217346, 0.5557683110237122],
]
KERAS_BIAS = [0.07715926319360733, -0.2036382108926773, 0.07647896558046341]


def _on_batch_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, 3, 16)
    model = Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
    kernel = np.arange(12, dtype="float32").reshape(4, 3) / 10.0 - 0.5
    model.set_weights([kernel, np.array([0.1, -0.2, 0.05], dtype="float32")])
    model.compile(
        optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model, x, y


def test_on_batch_methods_return_per_batch_values_like_keras():
    model, x, y = _on_batch_model()
    train = [model.train_on_batch(x[:8], y[:8]), model.train_on_batch(x[8:], y[8:])]
    test = [model.test_on_batch(x[:8], y[:8]), model.test_on_batch(x[8:], y[8:])]
    np.testing.assert_allclose(train, KERAS_TRAIN, rtol=1e-5)
    np.testing.assert_allclose(test, KERAS_TEST, rtol=1e-5)
    np.testing.assert_allclose(model.get_weights()[0], KERAS_KERNEL, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], KERAS_BIAS, rtol=1e-5, atol=1e-6)


def test_validation_in_fit_fires_the_test_hooks():
    events = []

    class Recorder(callbacks.Callback):
        def on_test_begin(self, logs=None):
            events.append("begin")

        def on_test_batch_begin(self, batch, logs=None):
            events.append(f"batch_begin{batch}")

        def on_test_batch_end(self, batch, logs=None):
            events.append(f"batch_end{batch}")
            assert "loss" in logs

        def on_test_end(self, logs=None):
            events.append(("end", sorted(logs)))

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end{epoch}")

    x, y = _data()
    model = _twin(Regressor)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(
        x, y, batch_size=8, epochs=2, validation_data=(x[:10], y[:10]), callbacks=[Recorder()],
        validation_batch_size=5, verbose=0,
    )  # fmt: skip
    one_epoch = ["begin", "batch_begin0", "batch_end0", "batch_begin1", "batch_end1"]
    one_epoch.append(("end", ["loss", "mae"]))
    assert events == one_epoch + ["epoch_end0"] + one_epoch + ["epoch_end1"]


def test_compile_without_any_loss_raises_at_the_first_step():
    x, y = _data(8)
    model = _twin(Regressor)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="No loss to compute"):
        model.fit(x, y, verbose=0)
