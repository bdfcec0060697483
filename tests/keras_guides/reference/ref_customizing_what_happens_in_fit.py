"""Keras 3 figures for test_customizing_what_happens_in_fit.py (built-in step, same math)."""

import keras
import numpy as np

from tests.keras_guides import _data


def plain(weighted=False, epochs=3):
    x, y = _data.regression()
    sw = np.random.default_rng(1).random((1000, 1)).astype("float32") if weighted else None
    inputs = keras.Input(shape=(32,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, sample_weight=sw, epochs=epochs, verbose=0, shuffle=False)
    return history.history


if __name__ == "__main__":
    print("plain", plain())
    print("weighted", plain(weighted=True))
