"""compile/fit/evaluate/predict end to end, including the bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras
from distkeras import callbacks, layers, losses, optimizers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed, to_categorical


def small_model(out=3, activation="softmax", **dense_kwargs):
    return Sequential(
        [
            layers.Dense(8, activation="tanh", input_shape=(4,), **dense_kwargs),
            layers.Dense(out, activation=activation),
        ]
    )


def data(n=40, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = rng.integers(0, classes, n)
    return x, y


def test_fit_on_digits_reaches_95_percent():
    set_random_seed(1)
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
    x_train = x_train.reshape(-1, 64).astype("float32") / 16
    x_test = x_test.reshape(-1, 64).astype("float32") / 16
    model = Sequential(
        [
            layers.Dense(512, activation="relu", input_shape=(64,)),
            layers.Dropout(0.2),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, to_categorical(y_train, 10), batch_size=128, epochs=12, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    _, acc = model.evaluate(x_test, to_categorical(y_test, 10), verbose=0)
    assert acc >= 0.95


def test_one_sgd_step_equals_finite_difference_gradient():
    """The whole step (loss, regularization, reducer, update) against finite differences."""
    distkeras.backend.set_floatx("float64")
    try:
        x, y = data(10)
        model = small_model(kernel_regularizer="l2")
        model.compile(
            optimizer=optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy"
        )
        model.build((None, 4))
        before = model.get_weights()

        def loss_at(weights):
            model.set_weights(weights)
            pred = model(x)
            data_loss = float(np.mean(np.asarray(losses.sparse_categorical_crossentropy(y, pred))))
            return data_loss + sum(float(p) for p in model.losses)

        expected = []
        for i, w in enumerate(before):
            g = np.zeros_like(w)
            for idx in np.ndindex(w.shape):
                for sign in (1, -1):
                    ws = [b.copy() for b in before]
                    ws[i][idx] += sign * 1e-6
                    g[idx] += sign * loss_at(ws) / 2e-6
            expected.append(g)
        model.set_weights(before)
        model.train_on_batch(x, y)
        for b, a, g in zip(before, model.get_weights(), expected):
            np.testing.assert_allclose(b - a, g, rtol=1e-5, atol=1e-8)
    finally:
        distkeras.backend.set_floatx("float32")


def test_sample_and_class_weights_follow_keras_formula():
    x, y = data(12)
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    sw = np.linspace(0.5, 2.0, 12)
    per_sample = np.asarray(losses.sparse_categorical_crossentropy(y, model(x)))
    got = model.evaluate(x, y, sample_weight=sw, batch_size=12, verbose=0)
    np.testing.assert_allclose(got, np.sum(per_sample * sw) / 12, rtol=1e-5)
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    expected_w = np.array([cw[int(c)] for c in y])
    before = model.get_weights()
    model.fit(x, y, class_weight=cw, batch_size=12, epochs=1, shuffle=False, verbose=0)
    after_cw = model.get_weights()
    model.set_weights(before)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, sample_weight=expected_w, batch_size=12, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(after_cw, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_validation_split_uses_the_last_samples():
    x, y = data(50)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    hist = model.fit(x, y, validation_split=0.2, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "acc", "val_loss", "val_acc"}
    val = model.evaluate(x[40:], y[40:], verbose=0, return_dict=True)
    np.testing.assert_allclose(hist.history["val_loss"][-1], val["loss"], rtol=1e-5)


def test_validation_freq_and_initial_epoch():
    x, y = data(20)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(
        x, y, validation_data=(x, y), validation_freq=2, epochs=4, initial_epoch=1, verbose=0
    )
    assert hist.epoch == [1, 2, 3]
    assert len(hist.history["val_loss"]) == 2  # after epochs 2 and 4 (indices 1, 3)


def test_generator_and_pydataset_inputs():
    x, y = data(32)

    def gen():
        while True:
            for i in range(0, 32, 8):
                yield x[i : i + 8], y[i : i + 8]

    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(gen(), steps_per_epoch=4, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2

    from distkeras.utils import PyDataset

    class Batches(PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    hist = model.fit(Batches(), epochs=1, verbose=0)
    np.testing.assert_allclose(
        model.evaluate(Batches(), verbose=0),
        model.evaluate(x, y, batch_size=8, verbose=0),
        rtol=1e-5,
    )
    assert model.predict(Batches(), verbose=0).shape == (32, 3)


def test_early_stopping_and_history():
    x, y = data(20)
    model = small_model()
    model.compile(optimizer=optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    stopper = callbacks.EarlyStopping(monitor="loss", patience=1)
    hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[stopper])
    assert len(hist.epoch) == 2 and stopper.stopped_epoch == 1


def test_terminate_on_nan_stops_training():
    x, y = data(16)
    x[3] = np.nan
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    hist = model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[callbacks.TerminateOnNaN()],
        check_finite=False,  # the NaN must reach the loss (fit refuses it by default)
    )
    assert len(hist.epoch) == 1 and np.isnan(hist.history["loss"][0])


def test_progress_bar_outputs(capsys):
    x, y = data(16)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "s/step" in out
    assert "loss:" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""


def test_train_test_predict_on_batch():
    x, y = data(8)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.train_on_batch(x, y)
    assert loss > 0 and 0 <= acc <= 1
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, verbose=0), rtol=1e-6)


# ------------------------------------------------------------------ errors
def test_loss_none_at_fit():
    x, y = data(8)
    model = small_model()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="Received: loss=None"):
        model.fit(x, y, verbose=0)


def test_fit_before_compile():
    x, y = data(8)
    with pytest.raises(ValueError, match="compile"):
        small_model().fit(x, y, verbose=0)


def test_x_and_y_of_different_lengths():
    x, y = data(8)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"x sizes=\[8\], y sizes=\[7\]"):
        model.fit(x, y[:7], verbose=0)


def test_sparse_labels_out_of_range():
    x, y = data(8)
    y[2] = 3
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="Received: label=3"):
        model.fit(x, y, verbose=0)


def test_wrong_input_shape_to_built_model():
    model = small_model()
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4\), found shape=\(2, 5\)"):
        model.predict(np.zeros((2, 5)), verbose=0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"optimizer": "adamm", "loss": "mse"}, "adamm"),
        ({"optimizer": "adam", "loss": "msee"}, "msee"),
    ],
)
def test_unknown_string_identifiers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_model().compile(**kwargs)


def test_bad_batch_size_and_validation_split():
    x, y = data(8)
    model = small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="Received: validation_split=1.5"):
        model.fit(x, y, validation_split=1.5, verbose=0)


def test_subclassed_model_trains():
    class TwoLayer(distkeras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(8, activation="relu")
            self.out = layers.Dense(3, activation="softmax")

        def call(self, x, training=None):
            return self.out(self.hidden(x))

    x, y = data(30)
    model = TwoLayer()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=5, verbose=0)
    assert len(model.trainable_weights) == 4 and len(model.layers) == 2
    assert hist.history["loss"][-1] < hist.history["loss"][0]


def test_maxnorm_constraint_applied_after_update():
    x, y = data(20)
    model = small_model(kernel_constraint=distkeras.constraints.MaxNorm(0.1))
    model.compile(optimizer=optimizers.SGD(1.0), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    kernel = model.layers[0].get_weights()[0]
    assert np.sqrt((kernel**2).sum(axis=0)).max() <= 0.1 + 1e-6


def test_gradient_tape_custom_training_loop():
    x, y = data(16)
    model = small_model()
    opt = optimizers.Adam(0.01)
    loss_fn = losses.SparseCategoricalCrossentropy()
    first = None
    for _ in range(20):
        with distkeras.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        first = float(loss) if first is None else first
    assert float(loss) < first


def test_mixed_dtype_model_trains_without_a_fused_buffer():
    model = Sequential(
        [
            layers.Dense(4, input_shape=(3,), dtype="float64"),
            layers.Dense(2, dtype="float32"),
        ]
    )
    model.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 3))
    y = np.zeros((8, 2))
    before = model.get_weights()
    hist = model.fit(x, y, epochs=2, verbose=0)
    assert model._train_state.buffer is None
    assert all((a != b).any() for a, b in zip(before, model.get_weights()))
    assert hist.history["loss"][1] < hist.history["loss"][0]


def test_vector_valued_metrics_are_logged_as_arrays():
    x, y = data(24)
    model = small_model()
    onehot = np.eye(3)[y]
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=[distkeras.metrics.F1Score(average=None)],
    )
    hist = model.fit(x, onehot, epochs=2, verbose=2)
    (key,) = [k for k in hist.history if k != "loss"]
    assert np.asarray(hist.history[key][-1]).shape == (3,)
    logs = model.evaluate(x, onehot, verbose=0, return_dict=True)
    assert np.asarray(logs[key]).shape == (3,)
