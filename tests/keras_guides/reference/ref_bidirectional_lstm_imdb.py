"""Keras 3 figures for test_bidirectional_lstm_imdb.py."""

import keras
from keras import layers

from tests.keras_guides import _data


def main():
    x, y = _data.int_sequences(n=400, maxlen=20, vocab=100)
    x_train, y_train, x_val, y_val = x[:320], y[:320], x[320:], y[320:]
    inputs = keras.Input(shape=(None,), dtype="int32")
    h = layers.Embedding(100, 16)(inputs)
    h = layers.Bidirectional(layers.LSTM(8, return_sequences=True))(h)
    h = layers.Bidirectional(layers.LSTM(8))(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(inputs, outputs)
    print("params", model.count_params(), [w.path for w in model.weights])
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=6,
        shuffle=False,
        verbose=0,
        validation_data=(x_val, y_val),
    )
    print({k: [round(v, 5) for v in vals] for k, vals in hist.history.items()})


if __name__ == "__main__":
    main()
