"""Keras guide "Working with RNNs", step by step.

The guide's workflow with `import distkeras as keras`: Embedding + LSTM / GRU /
SimpleRNN models and their summaries, `return_sequences`, `return_state` and
states passed as `initial_state` to another LSTM, `RNN(LSTMCell(...))` against
`LSTM(...)`, cross-batch statefulness with `reset_states` and reuse of
`layer.states`, `Bidirectional`, the MNIST row-by-row classifier (stand-in: the
bundled 8x8 digits, each image 8 rows of 8 pixels, units 16), and a custom
cell with nested inputs, states and outputs. Sizes are the guide's where only
shapes and parameter counts are compared; numbers are compared on small
layers given identical weights (`_rnn.weights_like`). Keras figures from
`reference/ref_working_with_rnns.py` (Keras 3.15.1, JAX backend).
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops
from tests.keras_guides import _data, _rnn

# Parameter counts per layer and in total, and output shapes.
KERAS_LSTM_MODEL = [64000, 98816, 1290], 164106
KERAS_GRU_MODEL = [64000, 247296, 49280, 1290], 361866
KERAS_GRU_SHAPES = [(None, None, 64), (None, None, 256), (None, 128), (None, 10)]
KERAS_SEQ2SEQ = [0, 0, 64000, 128000, 33024, 33024, 650], 258698
KERAS_BIDI_MODEL = [38400, 41216, 650], 80266
KERAS_BIDI_SHAPES = [(None, 5, 128), (None, 64), (None, 10)]
KERAS_DIGITS_MODEL = [1600, 64, 170], 1834

# Outputs given identical weights (printed to 6 decimals).
KERAS_SEQ2SEQ_OUT = [
    [
        0.572355,
        -0.209863,
        0.969642,
        -0.226939,
        -0.380359,
        -0.159658,
        0.428625,
        -0.394648,
        0.824988,
        -0.505968,
    ],
    [
        0.530405,
        -0.032741,
        0.938362,
        -0.199043,
        -0.422881,
        -0.130774,
        0.379284,
        -0.388091,
        0.876708,
        -0.5132,
    ],
]
KERAS_LSTM_SEQ = [
    [
        [-0.280466, -0.02448, -0.014652],
        [-0.35509, -0.092125, -0.003279],
        [-0.396004, -0.075425, 0.037324],
    ],
    [
        [-0.40511, -0.043457, 0.010973],
        [-0.466485, -0.064722, -0.008039],
        [-0.252132, -0.112536, 0.057321],
    ],
]
KERAS_LSTM_STATES = [
    [[-0.396004, -0.075425, 0.037324], [-0.252132, -0.112536, 0.057321]],
    [[-0.478318, -0.181938, 0.119888], [-0.363659, -0.258552, 0.146248]],
]
KERAS_GRU_SEQ = [
    [
        [-0.093105, -0.291192, -0.145793],
        [-0.118816, -0.078899, 0.025743],
        [-0.145416, -0.023535, 0.136689],
    ],
    [
        [-0.094604, -0.246641, 0.119732],
        [-0.142067, -0.223719, 0.007695],
        [-0.145934, -0.175192, 0.273985],
    ],
]
KERAS_GRU_STATES = [[[-0.145416, -0.023535, 0.136689], [-0.145934, -0.175192, 0.273985]]]
KERAS_SIMPLE_SEQ = [
    [
        [0.787917, -0.449647, -0.134524],
        [0.902317, -0.783925, -0.634306],
        [-0.02778, -0.727774, -0.656559],
    ],
    [
        [0.74185, -0.614651, -0.326491],
        [0.886905, -0.778935, -0.481856],
        [0.646335, -0.183715, -0.683754],
    ],
]
KERAS_SIMPLE_STATES = [[[-0.02778, -0.727774, -0.656559], [0.646335, -0.183715, -0.683754]]]
KERAS_STATEFUL_OUTS = [
    [[-0.202004, -0.195195, -0.21938], [-0.191831, -0.264393, -0.145545]],
    [[-0.195059, -0.243519, -0.249635], [-0.207505, -0.174886, -0.302717]],
    [[-0.159411, -0.259817, -0.22532], [-0.241105, -0.215651, -0.237105]],
]
KERAS_STATEFUL_STATES = [
    [[-0.195059, -0.243519, -0.249635], [-0.207505, -0.174886, -0.302717]],
    [[-0.483168, -0.427488, -0.396422], [-0.482613, -0.301185, -0.504567]],
]
KERAS_REUSED_STATE_OUT = [[-0.143052, 0.08752, -0.05928], [-0.137684, 0.075746, -0.050585]]
KERAS_BIDI_OUT = [
    [
        [0.10919, 0.188519, -0.038301, -0.078099, 0.265429, 0.183635],
        [0.129399, 0.291446, -0.065925, -0.036549, 0.264677, 0.129934],
        [0.1028, 0.340354, -0.082621, -0.059836, 0.146485, 0.053202],
    ],
    [
        [0.120652, 0.196649, -0.005022, -0.192251, 0.312399, 0.125161],
        [0.142151, 0.266089, -0.034932, -0.076577, 0.254207, 0.203062],
        [0.083142, 0.188314, -0.05449, -0.158197, 0.162529, 0.300302],
    ],
]

# The digit-rows classifier: 3 epochs of SGD from `_data.initial_weights`,
# batches in order; then the RNN(LSTMCell) model continues from those weights.
KERAS_LSTM_FIT = {
    "loss": [2.60931, 2.15158, 1.90503],
    "val_loss": [2.28229, 2.25227, 2.22355],
    "accuracy": [0.135, 0.2366, 0.32568],
}
KERAS_CELL_FIT = {
    "loss": [1.74638, 1.62977, 1.53668],
    "val_loss": [2.19431, 2.1637, 2.13102],
    "accuracy": [0.37787, 0.43702, 0.50592],
}
KERAS_SAMPLE_LOGITS = [
    [-0.206509, 0.303158, 0.304758, 0.219381, -0.055264, -0.012358, -0.015766, 0.083394]
    + [0.141669, -0.048384]
]
ATOL = 2e-6  # 6 printed decimals, float32 rounding


def counts(model):
    return [layer.count_params() for layer in model.layers], model.count_params()


def close(ours, keras_value):
    np.testing.assert_allclose(np.asarray(ours), keras_value, rtol=1e-5, atol=ATOL)


def test_built_in_rnn_layers_and_summaries():
    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(layers.LSTM(128))
    model.add(layers.Dense(10))
    lines = []
    model.summary(print_fn=lines.append)  # no input shape yet: unbuilt, as in Keras
    assert sum("0 (unbuilt)" in line for line in lines) == 3
    assert " Total params: 0 (0.00 B)" in lines
    model.build((None, None))
    assert counts(model) == KERAS_LSTM_MODEL
    assert model.output_shape == (None, 10)
    lines = []
    model.summary(print_fn=lines.append)
    assert " Total params: 164,106 (641.04 KB)" in lines

    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(layers.GRU(256, return_sequences=True))  # (batch, timesteps, 256)
    model.add(layers.SimpleRNN(128))  # (batch, 128)
    model.add(layers.Dense(10))
    model.build((None, None))
    assert counts(model) == KERAS_GRU_MODEL
    assert [layer.output.shape for layer in model.layers] == KERAS_GRU_SHAPES
    out = model(_rnn.tokens(batch=3, steps=7, vocab=1000))
    assert out.shape == (3, 10)


def encoder_decoder(units=64, dim=64, vocab=(1000, 2000)):
    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=vocab[0], output_dim=dim)(encoder_input)
    output, state_h, state_c = layers.LSTM(units, return_state=True, name="encoder")(
        encoder_embedded
    )
    encoder_state = [state_h, state_c]
    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=vocab[1], output_dim=dim)(decoder_input)
    decoder_output = layers.LSTM(units, name="decoder")(
        decoder_embedded, initial_state=encoder_state
    )
    output_logits = layers.Dense(10)(decoder_output)
    model = keras.Model([encoder_input, decoder_input], output_logits)
    return model, [output.shape, state_h.shape, state_c.shape]


def test_outputs_and_states_passed_as_initial_state():
    model, shapes = encoder_decoder()
    assert counts(model) == KERAS_SEQ2SEQ
    assert shapes == [(None, 64), (None, 64), (None, 64)]
    lines = []
    model.summary(print_fn=lines.append)
    start = next(i for i, line in enumerate(lines) if line.startswith("│ decoder (LSTM)"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("├", "└")))
    decoder_row = " ".join(lines[start:end])  # a long cell wraps onto more lines
    assert "encoder[0][1]" in decoder_row and "encoder[0][2]" in decoder_row
    start = next(i for i, line in enumerate(lines) if line.startswith("│ encoder (LSTM)"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("├", "└")))
    encoder_shapes = " ".join(line.split("│")[2].strip() for line in lines[start:end])
    assert encoder_shapes.startswith("[(None, 64),") and encoder_shapes.endswith("(None, 64)]")

    model, _ = encoder_decoder(units=3, dim=4, vocab=(20, 30))
    model.set_weights(_rnn.weights_like(model.get_weights()))
    encoder_tokens = _rnn.tokens(seed=1)
    decoder_tokens = _rnn.tokens(steps=4, vocab=30, seed=2)
    out = model([encoder_tokens, decoder_tokens])
    close(out, KERAS_SEQ2SEQ_OUT)
    # The decoder starts from the encoder's states: another encoder input changes it.
    other = np.asarray(model([encoder_tokens[::-1], decoder_tokens]))
    assert np.abs(other - np.asarray(out)).max() > 1e-3
    np.testing.assert_allclose(
        model.predict([encoder_tokens, decoder_tokens], verbose=0), out, rtol=1e-6
    )


@pytest.mark.parametrize(
    "layer_cls, cell_cls, keras_seq, keras_states",
    [
        (layers.LSTM, layers.LSTMCell, KERAS_LSTM_SEQ, KERAS_LSTM_STATES),
        (layers.GRU, layers.GRUCell, KERAS_GRU_SEQ, KERAS_GRU_STATES),
        (layers.SimpleRNN, layers.SimpleRNNCell, KERAS_SIMPLE_SEQ, KERAS_SIMPLE_STATES),
    ],
)
def test_return_sequences_states_and_the_cell_api(layer_cls, cell_cls, keras_seq, keras_states):
    x = _rnn.sequences()
    layer = layer_cls(3, return_sequences=True, return_state=True)
    layer(x)
    weights = _rnn.weights_like(layer.get_weights(), seed=3)
    layer.set_weights(weights)
    seq, *states = layer(x)
    assert seq.shape == (2, 3, 3) and len(states) == len(keras_states)
    close(seq, keras_seq)
    close(states, keras_states)

    # RNN(cell) is the same computation as the layer: same weights, same numbers.
    wrapped = layers.RNN(cell_cls(3), return_sequences=True, return_state=True)
    wrapped(x)
    assert [w.shape for w in wrapped.get_weights()] == [w.shape for w in weights]
    wrapped.set_weights(weights)
    seq, *states = wrapped(x)
    close(seq, keras_seq)
    close(states, keras_states)
    last = layers.RNN(cell_cls(3))
    last(x)
    last.set_weights(weights)
    close(last(x), np.asarray(keras_seq)[:, -1])


def test_cross_batch_statefulness_and_state_reuse():
    paragraphs = [_rnn.sequences(seed=s) for s in (10, 11, 12)]
    lstm_layer = layers.LSTM(3, stateful=True)
    lstm_layer(paragraphs[0])
    lstm_layer.set_weights(_rnn.weights_like(lstm_layer.get_weights(), seed=4))
    lstm_layer.reset_states()
    outputs = [np.asarray(lstm_layer(p)) for p in paragraphs]
    close(outputs, KERAS_STATEFUL_OUTS)
    assert lstm_layer.weights and not any(
        s is w for s in lstm_layer.states for w in lstm_layer.weights
    )  # the carried states are not weights
    lstm_layer.reset_states()  # back to zeros: the first paragraph gives its first output
    close(lstm_layer(paragraphs[0]), KERAS_STATEFUL_OUTS[0])

    lstm_layer.reset_states()
    lstm_layer(paragraphs[0])
    lstm_layer(paragraphs[1])
    existing_state = lstm_layer.states
    close(existing_state, KERAS_STATEFUL_STATES)
    new_lstm_layer = layers.LSTM(3)
    new_lstm_layer(paragraphs[2])
    new_lstm_layer.set_weights(_rnn.weights_like(new_lstm_layer.get_weights(), seed=5))
    close(new_lstm_layer(paragraphs[2], initial_state=existing_state), KERAS_REUSED_STATE_OUT)


def test_bidirectional():
    model = keras.Sequential()
    model.add(layers.Bidirectional(layers.LSTM(64, return_sequences=True), input_shape=(5, 10)))
    model.add(layers.Bidirectional(layers.LSTM(32)))
    model.add(layers.Dense(10))
    assert counts(model) == KERAS_BIDI_MODEL
    assert [layer.output.shape for layer in model.layers] == KERAS_BIDI_SHAPES
    first = model.layers[0]
    assert first.backward_layer.go_backwards and not first.forward_layer.go_backwards

    layer = layers.Bidirectional(layers.LSTM(3, return_sequences=True))
    x = _rnn.sequences()
    layer(x)
    layer.set_weights(_rnn.weights_like(layer.get_weights(), seed=6))
    close(layer(x), KERAS_BIDI_OUT)


def build_model(allow_cudnn_kernel=True, units=16, input_dim=8):
    if allow_cudnn_kernel:
        lstm_layer = layers.LSTM(units)
    else:  # the cell wrapped in RNN: the generic per-step loop
        lstm_layer = layers.RNN(layers.LSTMCell(units))
    return keras.Sequential(
        [keras.Input((None, input_dim)), lstm_layer, layers.BatchNormalization(), layers.Dense(10)]
    )


def test_lstm_layer_and_lstm_cell_models_on_digit_rows():
    (x_train, y_train), (x_test, y_test) = _rnn.digit_rows()
    assert x_train.shape[1:] == (8, 8) and y_train.max() == 9
    sample = x_train[0]
    model = build_model(allow_cudnn_kernel=True)
    assert counts(model) == KERAS_DIGITS_MODEL
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    histories = []
    for m in (model, build_model(allow_cudnn_kernel=False)):
        if m is not model:
            assert counts(m) == KERAS_DIGITS_MODEL
            m.set_weights(model.get_weights())
        m.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer="sgd",
            metrics=["accuracy"],
        )
        history = m.fit(
            x_train,
            y_train,
            validation_data=(x_test, y_test),
            batch_size=64,
            epochs=3,
            shuffle=False,
            verbose=0,
        )
        histories.append(history.history)
    for ours, theirs in zip(histories, (KERAS_LSTM_FIT, KERAS_CELL_FIT)):
        np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-3)
        np.testing.assert_allclose(ours["val_loss"], theirs["val_loss"], rtol=1e-3)
        np.testing.assert_allclose(ours["accuracy"], theirs["accuracy"], atol=0.01)

    # The trained weights work in a fresh model of the same build (the guide's CPU model).
    cpu_model = build_model(allow_cudnn_kernel=True)
    cpu_model.set_weights(model.get_weights())
    logits = cpu_model.predict_on_batch(np.expand_dims(sample, 0))
    np.testing.assert_allclose(logits, KERAS_SAMPLE_LOGITS, rtol=1e-3, atol=1e-4)
    assert int(ops.argmax(logits, axis=1)[0]) == int(np.argmax(KERAS_SAMPLE_LOGITS))


# Keras 3 cannot run this part of the guide (keras-team/keras-io#2142): its RNN
# hands the cell `(batch,) + sequences_shape[2:]` of the *tuple* of input shapes,
# the guide's `build` raises IndexError, and its `compute_output_shape` takes only
# an integer `output_size`. tf.keras ran it, with `TensorShape` entries in
# `state_size`/`output_size`; here tuples of ints name those shapes. The check is
# against the cell's own arithmetic in NumPy: each step's outputs are the
# projections of that step's inputs, and the states their running sums.
@keras.saving.register_keras_serializable(package="working_with_rnns")
class NestedCell(keras.layers.Layer):
    def __init__(self, unit_1, unit_2, unit_3, **kwargs):
        self.unit_1 = unit_1
        self.unit_2 = unit_2
        self.unit_3 = unit_3
        self.state_size = [(unit_1,), (unit_2, unit_3)]
        self.output_size = [(unit_1,), (unit_2, unit_3)]
        super().__init__(**kwargs)

    def build(self, input_shapes):
        # two step inputs: [(batch, i1), (batch, i2, i3)]
        i1 = input_shapes[0][1]
        i2, i3 = input_shapes[1][1], input_shapes[1][2]
        self.kernel_1 = self.add_weight(
            shape=(i1, self.unit_1), initializer="uniform", name="kernel_1"
        )
        self.kernel_2_3 = self.add_weight(
            shape=(i2, i3, self.unit_2, self.unit_3), initializer="uniform", name="kernel_2_3"
        )

    def call(self, inputs, states):
        input_1, input_2 = inputs
        s1, s2 = states
        output_1 = ops.matmul(input_1, self.kernel_1)
        output_2_3 = ops.tensordot(input_2, self.kernel_2_3, axes=2)  # "bij,ijkl->bkl"
        return (output_1, output_2_3), (s1 + output_1, s2 + output_2_3)

    def get_config(self):
        return {"unit_1": self.unit_1, "unit_2": self.unit_2, "unit_3": self.unit_3}


def test_custom_cell_with_nested_inputs_states_and_outputs():
    unit_1, unit_2, unit_3 = 10, 20, 30
    i1, i2, i3 = 32, 8, 4  # the guide: 32, 64, 32
    batch_size, num_batches, timestep = 16, 4, 6  # the guide: 64, 10, 50

    cell = NestedCell(unit_1, unit_2, unit_3)
    rnn = keras.layers.RNN(cell)
    input_1 = keras.Input((None, i1))
    input_2 = keras.Input((None, i2, i3))
    outputs = rnn((input_1, input_2))
    assert [o.shape for o in outputs] == [(None, unit_1), (None, unit_2, unit_3)]
    model = keras.models.Model([input_1, input_2], outputs)
    assert model.count_params() == i1 * unit_1 + i2 * i3 * unit_2 * unit_3
    # (The guide also asks for metrics=["accuracy"], which Keras 3 rejects for
    # two outputs: one loss for both outputs here.)
    model.compile(optimizer="adam", loss="mse")

    rng = np.random.default_rng(0)
    n = batch_size * num_batches
    input_data = [rng.random((n, timestep, i1)), rng.random((n, timestep, i2, i3))]
    target_data = [rng.random((n, unit_1)), rng.random((n, unit_2, unit_3))]
    k1, k23 = (np.asarray(w, dtype="float64") for w in cell.get_weights())
    out_1, out_2 = model.predict(input_data, batch_size=batch_size, verbose=0)
    np.testing.assert_allclose(out_1, input_data[0][:, -1] @ k1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        out_2, np.tensordot(input_data[1][:, -1], k23, axes=2), rtol=1e-4, atol=1e-5
    )
    history = model.fit(input_data, target_data, batch_size=batch_size, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    # The whole sequences and the states, and the zero initial states they start from.
    full = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    seq_1, seq_2, state_1, state_2 = full([x[:2] for x in input_data])
    k1, k23 = (np.asarray(w, dtype="float64") for w in cell.get_weights())
    steps_1 = input_data[0][:2] @ k1
    steps_2 = np.tensordot(input_data[1][:2], k23, axes=2)
    assert seq_2.shape == (2, timestep, unit_2, unit_3)
    np.testing.assert_allclose(seq_1, steps_1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(seq_2, steps_2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state_1, steps_1.sum(axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state_2, steps_2.sum(axis=1), rtol=1e-4, atol=1e-4)
    assert full.compute_output_shape([(None, None, i1), (None, None, i2, i3)]) == [
        (None, None, unit_1),
        (None, None, unit_2, unit_3),
        (None, unit_1),
        (None, unit_2, unit_3),
    ]

    # The registered cell survives a config round trip inside the RNN layer.
    clone = keras.layers.RNN.from_config(rnn.get_config())
    assert isinstance(clone.cell, NestedCell) and clone.cell.get_config() == cell.get_config()
