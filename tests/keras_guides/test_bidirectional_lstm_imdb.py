"""keras.io example "Bidirectional LSTM on IMDB", step by step.

Input(shape=(None,), dtype="int32") -> Embedding -> Bidirectional(LSTM,
return_sequences=True) -> Bidirectional(LSTM) -> Dense(1, sigmoid), trained
with "binary_crossentropy" on rank-1 labels. Stand-in data: random int32
token sequences (n, 20), zero-padded, vocabulary 100 (the example: 20,000
words, length 200), labels int64 (n,); sizes 16/8 in place of 128/64. Both
frameworks start from `_data.initial_weights` and see the batches in order;
Keras figures from `reference/ref_bidirectional_lstm_imdb.py`.
"""

from __future__ import annotations

import numpy as np

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _data

# Keras 3.15.1 (JAX backend), same start and batches (batch 32, shuffle=False),
# 6 epochs of Adam: per-epoch training and validation loss. (The stand-in task
# is barely learned in 6 epochs by either; the trajectories must still agree.)
KERAS_PARAMS = 4817
KERAS_LOSS = [0.69396, 0.69288, 0.69209, 0.69133, 0.69049, 0.68947]
KERAS_VAL_LOSS = [0.69318, 0.69328, 0.6934, 0.69351, 0.69356, 0.6935]
# Float32 rounding through 2 x 20 recurrent steps and 60 Adam steps: 1e-3 relative.


def test_bidirectional_lstm_classifier():
    max_features = 100
    x, y = _data.int_sequences(n=400, maxlen=20, vocab=max_features)
    x_train, y_train, x_val, y_val = x[:320], y[:320], x[320:], y[320:]
    assert x_train.dtype == np.int32 and y_train.shape == (320,)

    inputs = keras.Input(shape=(None,), dtype="int32")
    h = layers.Embedding(max_features, 16)(inputs)
    h = layers.Bidirectional(layers.LSTM(8, return_sequences=True))(h)
    h = layers.Bidirectional(layers.LSTM(8))(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(inputs, outputs)
    assert model.count_params() == KERAS_PARAMS
    model.set_weights(_data.initial_weights(model.get_weights()))

    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=6,
        shuffle=False,
        verbose=0,
        validation_data=(x_val, y_val),
    )
    np.testing.assert_allclose(history.history["loss"], KERAS_LOSS, rtol=1e-3)
    np.testing.assert_allclose(history.history["val_loss"], KERAS_VAL_LOSS, rtol=1e-3)
    assert model.predict(x_val[:4], verbose=0).shape == (4, 1)
