"""RNN with a custom cell of several inputs, and states and outputs of any shape.

tf.keras ran such cells (`TensorShape` entries in `state_size`/`output_size`);
Keras 3's RNN cannot (keras-team/keras-io#2142). Here a tuple of ints names a
shape; a plain int keeps its Keras 3 meaning, and so does a list of per-cell
sizes in `StackedRNNCells`.
"""

from __future__ import annotations

import numpy as np

from distkeras import Input, Model, layers, ops


class PairCell(layers.Layer):
    """out_1 = x1 @ k1 + s1 (units_1,), out_2 = x2 * s2 (a (rows, cols) state), in two streams."""

    def __init__(self, units_1, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.units_1, self.rows, self.cols = units_1, rows, cols
        self.state_size = [units_1, (rows, cols)]
        self.output_size = [(units_1,), (rows, cols)]

    def build(self, input_shapes):
        self.step_shapes = input_shapes
        self.k1 = self.add_weight(shape=(input_shapes[0][-1], self.units_1), name="k1")

    def call(self, inputs, states):
        x1, x2 = inputs
        s1, s2 = states
        out_1 = ops.matmul(x1, self.k1) + s1
        out_2 = 0.5 * x2 + s2
        return [out_1, out_2], [out_1, out_2]


def reference(x1, x2, k1, mask=None):
    """The cell's loop in NumPy (masked steps keep states and repeat outputs)."""
    batch, steps = x1.shape[:2]
    s1 = np.zeros((batch, k1.shape[1]))
    s2 = np.zeros((batch,) + x2.shape[2:])
    seq_1, seq_2 = [], []
    for t in range(steps):
        n1, n2 = x1[:, t] @ k1 + s1, 0.5 * x2[:, t] + s2
        if mask is not None:
            keep = mask[:, t]
            n1 = np.where(keep[:, None], n1, s1)
            n2 = np.where(keep[:, None, None], n2, s2)
        s1, s2 = n1, n2
        seq_1.append(s1)
        seq_2.append(s2)
    return np.stack(seq_1, 1), np.stack(seq_2, 1), s1, s2


def data(batch=3, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, steps, 5)).astype("float32"), rng.random((batch, steps, 2, 3)).astype(
        "float32"
    )


def test_nested_inputs_build_the_cell_with_step_shapes():
    x1, x2 = data()
    cell = PairCell(4, 2, 3)
    layers.RNN(cell)([x1, x2])
    assert [tuple(s) for s in cell.step_shapes] == [(3, 5), (3, 2, 3)]


def test_nested_outputs_and_shaped_states_match_the_loop():
    x1, x2 = data()
    cell = PairCell(4, 2, 3)
    rnn = layers.RNN(cell, return_sequences=True, return_state=True)
    seq_1, seq_2, s1, s2 = rnn((x1, x2))
    want = reference(x1, x2, np.asarray(cell.k1.numpy(), dtype="float64"))
    for got, expected in zip((seq_1, seq_2, s1, s2), want):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    last_1, last_2 = layers.RNN(cell)((x1, x2))
    np.testing.assert_allclose(np.asarray(last_2), want[1][:, -1], rtol=1e-5)
    assert last_1.shape == (3, 4)


def test_nested_rnn_backwards_masked_and_symbolic():
    x1, x2 = data()
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=bool)
    cell = PairCell(4, 2, 3)
    rnn = layers.RNN(cell, return_sequences=True, go_backwards=True)
    seq_1, seq_2 = rnn([x1, x2], mask=mask)
    k1 = np.asarray(cell.k1.numpy(), dtype="float64")
    want = reference(x1[:, ::-1], x2[:, ::-1], k1, mask[:, ::-1])
    np.testing.assert_allclose(np.asarray(seq_1), want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(seq_2), want[1], rtol=1e-5, atol=1e-6)

    i1, i2 = Input((None, 5)), Input((None, 2, 3))
    outs = layers.RNN(PairCell(4, 2, 3), return_state=True)([i1, i2])
    assert [o.shape for o in outs] == [(None, 4), (None, 2, 3), (None, 4), (None, 2, 3)]
    model = Model([i1, i2], outs[:2])
    assert [o.shape for o in model.predict([x1, x2], verbose=0)] == [(3, 4), (3, 2, 3)]


def test_shaped_state_with_a_stateful_layer_and_gradients():
    x1, x2 = data(batch=2)
    cell = PairCell(4, 2, 3)
    rnn = layers.RNN(cell, stateful=True)
    first = rnn((x1, x2))
    assert [tuple(v.shape) for v in rnn.states] == [(2, 4), (2, 2, 3)]
    second = rnn((x1, x2))  # continues from the carried states
    assert np.abs(np.asarray(second[1]) - np.asarray(first[1])).max() > 0.1
    rnn.reset_states()
    np.testing.assert_allclose(np.asarray(rnn((x1, x2))[1]), np.asarray(first[1]), rtol=1e-6)

    i1, i2 = Input((None, 5)), Input((None, 2, 3))
    model = Model([i1, i2], layers.RNN(PairCell(4, 2, 3))([i1, i2]))
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()[0].copy()
    model.fit([x1, x2], [np.zeros((2, 4)), np.zeros((2, 2, 3))], verbose=0)
    assert np.abs(model.get_weights()[0] - before).max() > 0


def test_integer_state_sizes_keep_their_keras_meaning():
    # A top-level tuple of ints is one state per entry, as in Keras 3.
    class TwoStates(layers.Layer):
        state_size = (3, 2)
        output_size = 3

        def call(self, x, states):
            return x[:, :3] + states[0], [x[:, :3] + states[0], states[1] + 1.0]

    out, s1, s2 = layers.RNN(TwoStates(), return_state=True)(np.ones((2, 4, 5), "float32"))
    assert (s1.shape, s2.shape) == ((2, 3), (2, 2))
    np.testing.assert_allclose(np.asarray(s2), 4.0)
    stacked = layers.RNN([layers.LSTMCell(3), layers.LSTMCell(2)], return_state=True)
    outs = stacked(np.ones((2, 4, 5), "float32"))
    assert [[tuple(s.shape) for s in cell] for cell in outs[1:]] == [[(2, 3), (2, 3)], [(2, 2)] * 2]
    assert stacked.compute_output_shape((None, 4, 5))[1:] == [[(None, 3)] * 2, [(None, 2)] * 2]
