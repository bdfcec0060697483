"""Keras 3 figures for test_working_with_rnns.py."""

import keras
import numpy as np
from keras import layers

from tests.keras_guides import _data, _rnn


def show(name, value):
    print(name, np.round(np.asarray(value, dtype="float64"), 6).tolist())


def counts(model):
    return [layer.count_params() for layer in model.layers], model.count_params()


def summaries():
    model = keras.Sequential([layers.Embedding(1000, 64), layers.LSTM(128), layers.Dense(10)])
    model.build((None, None))
    print("lstm_model", counts(model), model.output_shape)
    model = keras.Sequential(
        [
            layers.Embedding(1000, 64),
            layers.GRU(256, return_sequences=True),
            layers.SimpleRNN(128),
            layers.Dense(10),
        ]
    )
    model.build((None, None))
    print("gru_model", counts(model), [tuple(layer.output.shape) for layer in model.layers])
    model = keras.Sequential(
        [
            keras.Input((5, 10)),
            layers.Bidirectional(layers.LSTM(64, return_sequences=True)),
            layers.Bidirectional(layers.LSTM(32)),
            layers.Dense(10),
        ]
    )
    print("bidi_model", counts(model), [tuple(layer.output.shape) for layer in model.layers])


def encoder_decoder(units=64, dim=64, vocab=(1000, 2000)):
    encoder_input = keras.Input(shape=(None,))
    x = layers.Embedding(vocab[0], dim)(encoder_input)
    output, state_h, state_c = layers.LSTM(units, return_state=True, name="encoder")(x)
    decoder_input = keras.Input(shape=(None,))
    y = layers.Embedding(vocab[1], dim)(decoder_input)
    decoder_output = layers.LSTM(units, name="decoder")(y, initial_state=[state_h, state_c])
    model = keras.Model([encoder_input, decoder_input], layers.Dense(10)(decoder_output))
    shapes = [tuple(output.shape), tuple(state_h.shape), tuple(state_c.shape)]
    return model, shapes


def states_and_cells():
    model, shapes = encoder_decoder()
    print("seq2seq", counts(model), shapes)
    model, _ = encoder_decoder(units=3, dim=4, vocab=(20, 30))
    model.set_weights(_rnn.weights_like(model.get_weights()))
    show("seq2seq_out", model([_rnn.tokens(seed=1), _rnn.tokens(steps=4, vocab=30, seed=2)]))

    x = _rnn.sequences()
    for name, layer_cls in [
        ("lstm", layers.LSTM),
        ("gru", layers.GRU),
        ("simple", layers.SimpleRNN),
    ]:
        layer = layer_cls(3, return_sequences=True, return_state=True)
        layer(x)
        layer.set_weights(_rnn.weights_like(layer.get_weights(), seed=3))
        outs = layer(x)
        show(f"{name}_seq", outs[0])
        show(f"{name}_states", outs[1:])


def statefulness():
    paragraphs = [_rnn.sequences(seed=s) for s in (10, 11, 12)]
    lstm = layers.LSTM(3, stateful=True)
    lstm(paragraphs[0])
    lstm.set_weights(_rnn.weights_like(lstm.get_weights(), seed=4))
    lstm.reset_states()
    show("stateful_outs", [lstm(p) for p in paragraphs])
    lstm.reset_states()
    lstm(paragraphs[0])
    lstm(paragraphs[1])
    show("stateful_states", lstm.states)
    new_lstm = layers.LSTM(3)
    new_lstm(paragraphs[2])
    new_lstm.set_weights(_rnn.weights_like(new_lstm.get_weights(), seed=5))
    show("reused_state_out", new_lstm(paragraphs[2], initial_state=lstm.states))


def bidirectional():
    layer = layers.Bidirectional(layers.LSTM(3, return_sequences=True))
    x = _rnn.sequences()
    layer(x)
    layer.set_weights(_rnn.weights_like(layer.get_weights(), seed=6))
    show("bidi_out", layer(x))


def build_model(allow_cudnn_kernel=True, units=16, input_dim=8):
    if allow_cudnn_kernel:
        lstm_layer = layers.LSTM(units)
    else:
        lstm_layer = layers.RNN(layers.LSTMCell(units))
    return keras.Sequential(
        [keras.Input((None, input_dim)), lstm_layer, layers.BatchNormalization(), layers.Dense(10)]
    )


def digits_training():
    (x_train, y_train), (x_test, y_test) = _rnn.digit_rows()
    model = build_model()
    print("digits_model", counts(model))
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    for m in (model, build_model(allow_cudnn_kernel=False)):
        if m is not model:
            m.set_weights(model.get_weights())
        m.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer="sgd",
            metrics=["accuracy"],
        )
        hist = m.fit(
            x_train,
            y_train,
            validation_data=(x_test, y_test),
            batch_size=64,
            epochs=3,
            shuffle=False,
            verbose=0,
        )
        print({k: [round(v, 5) for v in vals] for k, vals in hist.history.items()})
    show("sample_logits", model.predict_on_batch(x_train[:1]))


if __name__ == "__main__":
    print("keras", keras.__version__, keras.backend.backend())
    summaries()
    states_and_cells()
    statefulness()
    bidirectional()
    digits_training()
