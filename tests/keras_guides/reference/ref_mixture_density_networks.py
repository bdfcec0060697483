"""Keras 3 figures for test_mixture_density_networks.py.

The guide's mixture loss comes from tensorflow_probability; here (as in the
test) it is written with keras.ops only, and checked against the NumPy
formula in `_mdn.mixture_nll`.
"""

import math

import keras
import numpy as np
from keras import callbacks, layers, ops

from tests.keras_guides import _data, _mdn
from tests.keras_guides.reference._common import over_seeds

N_HIDDEN = 32
N_MIXES = 5
OUTPUT_DIMS = 1
EPOCHS = 60  # the guide: 300 on 10,000 points
BATCH = 64  # the guide: 128


def elu_plus_one_plus_epsilon(x):
    return keras.activations.elu(x) + 1 + keras.backend.epsilon()


class MixtureDensityOutput(layers.Layer):
    def __init__(self, output_dimension, num_mixtures, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = output_dimension
        self.num_mix = num_mixtures
        width = num_mixtures * output_dimension
        self.mdn_mus = layers.Dense(width, name="mdn_mus")
        self.mdn_sigmas = layers.Dense(
            width, activation=elu_plus_one_plus_epsilon, name="mdn_sigmas"
        )
        self.mdn_pi = layers.Dense(num_mixtures, name="mdn_pi")

    def call(self, x, mask=None):
        parts = [self.mdn_mus(x), self.mdn_sigmas(x), self.mdn_pi(x)]
        return layers.concatenate(parts, name="mdn_outputs")


def mixture_loss(output_dim, num_mixes):
    def loss(y_true, y_pred):
        y_pred = ops.reshape(y_pred, [-1, (2 * output_dim + 1) * num_mixes])
        y_true = ops.reshape(y_true, [-1, output_dim])
        out_mu, out_sigma, out_pi = ops.split(y_pred, 3, axis=-1)
        log_weights = ops.log_softmax(out_pi, axis=-1)
        per_component = []
        for mu, sigma in zip(
            ops.split(out_mu, num_mixes, axis=1), ops.split(out_sigma, num_mixes, axis=1)
        ):
            z = (y_true - mu) / sigma
            log_density = -0.5 * ops.square(z) - ops.log(sigma) - 0.5 * math.log(2 * math.pi)
            per_component.append(ops.sum(log_density, axis=-1))
        log_likelihood = ops.logsumexp(log_weights + ops.stack(per_component, axis=-1), axis=-1)
        return ops.mean(ops.negative(log_likelihood))

    return loss


def mlp():
    return keras.Sequential(
        [
            layers.Dense(N_HIDDEN, activation="relu"),
            layers.Dense(N_HIDDEN, activation="relu"),
            layers.Dense(1),
        ]
    )


def mdn(num_mixes=N_MIXES):
    return keras.Sequential(
        [
            layers.Dense(N_HIDDEN, activation="relu"),
            layers.Dense(N_HIDDEN, activation="relu"),
            MixtureDensityOutput(OUTPUT_DIMS, num_mixes),
        ]
    )


def shapes_and_counts():
    model = mdn()
    model.build((None, 1))
    lines = []
    model.summary(print_fn=lambda line, **kw: lines.append(line))
    print("\n".join(lines))
    print("mdn params", model.count_params(), [w.shape for w in model.get_weights()])
    head = model.layers[-1]
    symbolic = head(keras.Input(shape=(N_HIDDEN,)))
    print("head output shape", symbolic.shape, "of", model.layers[-1].output.shape)
    print("head weights", [w.path for w in head.weights])
    plain = mlp()
    plain.build((None, 1))
    print("mlp params", plain.count_params())


def fixed_batch():
    x, y = _mdn.split_xy(_mdn.noisy_spiral(8, seed=5))
    model = mdn()
    model.build((None, 1))
    model.set_weights(_data.initial_weights(model.get_weights(), seed=3))
    params = model.predict(x, verbose=0)
    loss = mixture_loss(OUTPUT_DIMS, N_MIXES)(y, params)
    print("fixed batch loss", float(loss), "numpy", _mdn.mixture_nll(params, y, 1, N_MIXES))
    print("block sums", [round(float(b.sum()), 5) for b in np.split(params, 3, axis=1)])
    print("row 3", np.round(params[3], 5).tolist(), x[3])
    rng = np.random.default_rng(11)
    y_pred = rng.normal(size=(6, 9)).astype("float32")
    y_pred[:, 3:6] = rng.uniform(0.3, 2.0, size=(6, 3))
    y_true = rng.normal(size=(6, 1)).astype("float32")
    print(
        "synthetic loss",
        float(mixture_loss(1, 3)(y_true, y_pred)),
        _mdn.mixture_nll(y_pred, y_true, 1, 3),
    )
    try:
        ops.split(ops.zeros((2, 10)), 3, axis=-1)
    except Exception as e:
        print("uneven split", type(e).__name__, e)


def two_epochs():
    x, y = _mdn.split_xy(_mdn.noisy_spiral(1000, seed=0))
    for name, model, loss in (
        ("mlp", mlp(), "mse"),
        ("mdn", mdn(), mixture_loss(OUTPUT_DIMS, N_MIXES)),
    ):
        model.build((None, 1))
        model.set_weights(_data.initial_weights(model.get_weights()))
        model.compile(optimizer="adam", loss=loss)
        h = model.fit(
            x, y, epochs=2, batch_size=128, validation_split=0.15, shuffle=False, verbose=0
        )
        print(name, {k: [round(v, 5) for v in vals] for k, vals in h.history.items()})


def guide_workflow(seed):
    x, y = _mdn.split_xy(_mdn.noisy_spiral(2000, seed=0))
    x_test, y_test = _mdn.split_xy(_mdn.noisy_spiral(500, seed=1))
    plain = mlp()
    plain.compile(optimizer="adam", loss="mse")
    plain.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_split=0.15,
        callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=10)],
        verbose=0,
    )
    residual = float(np.std(plain.predict(x, verbose=0) - y))
    model = mdn()
    model.compile(loss=mixture_loss(OUTPUT_DIMS, N_MIXES), optimizer=keras.optimizers.Adam(1e-2))
    model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_split=0.15,
        callbacks=[
            callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True),
            callbacks.ReduceLROnPlateau(monitor="loss", patience=5),
        ],
        verbose=0,
    )
    params = model.predict(x_test, verbose=0)
    rng = np.random.default_rng(seed)
    samples = np.apply_along_axis(_mdn.sample_mixture, 1, params, OUTPUT_DIMS, N_MIXES, rng)
    y_plain = plain.predict(x_test, verbose=0)
    return {
        "mse_nll": _mdn.gaussian_nll(y_plain, y_test, residual),
        "mdn_nll": _mdn.mixture_nll(params, y_test, OUTPUT_DIMS, N_MIXES),
        "mse_spread": float(np.std(y_plain) / np.std(y_test)),
        "sample_spread": float(np.std(samples[:, 0, 0]) / np.std(y_test)),
    }


if __name__ == "__main__":
    shapes_and_counts()
    fixed_batch()
    two_epochs()
    over_seeds(guide_workflow, seeds=(1, 2, 3, 4, 5))
