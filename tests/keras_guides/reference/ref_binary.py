"""Keras 3 figures for test_binary_classification.py and test_imbalanced_classification.py."""

import keras
import numpy as np

from tests.keras_guides import _data


def binary():
    x, y = _data.binary_table(n=600, features=10, seed=0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x[:500], y[:500], epochs=10, batch_size=32, shuffle=False, verbose=0)
    print("binary history", {k: [round(v, 5) for v in vals] for k, vals in h.history.items()})
    print("binary evaluate", model.evaluate(x[500:], y[500:], verbose=0))


def imbalanced():
    x, y = _data.binary_table(n=2000, features=30, seed=1, positive_rate=0.05)
    x_train, y_train, x_val, y_val = x[:1600], y[:1600], x[1600:], y[1600:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    counts = np.bincount(y_train)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.set_weights(_data.initial_weights(model.get_weights()))
    metrics = [
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics
    )
    h = model.fit(
        x_train,
        y_train,
        batch_size=256,
        epochs=10,
        verbose=0,
        shuffle=False,
        validation_data=(x_val, y_val),
        class_weight={0: 1.0 / counts[0], 1: 1.0 / counts[1]},
    )
    print("imbalanced last", {k: round(v[-1], 5) for k, v in h.history.items()})


if __name__ == "__main__":
    binary()
    imbalanced()
