"""Recurrent layers: the shared harness on every configuration, NumPy references,
fused-vs-cell equality, masks, statefulness, go_backwards, wrappers and errors."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import backend, layers, ops, optimizers
from distkeras.backend import GradientTape, Variable, to_numpy
from distkeras.saving import register_keras_serializable
from tests.layers.harness import run_layer_test

F64 = {"dtype": "float64"}


@register_keras_serializable(package="tests")
class MinimalRNNCell(layers.Layer):
    """The user cell of the Keras RNN guide: `h = x K + h_prev R`."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), name="recurrent_kernel"
        )

    def call(self, inputs, states):
        output = ops.add(
            ops.matmul(inputs, self.kernel), ops.matmul(states[0], self.recurrent_kernel)
        )
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _cases():
    seq = (2, 3, 4)
    c = []

    def add(name, cls, kwargs, out_shape, n_weights, in_shape=seq):
        c.append(pytest.param(cls, kwargs, in_shape, out_shape, n_weights, id=name))

    state2 = [(2, 2), (2, 2)]
    add("simple_rnn", layers.SimpleRNN, {"units": 2}, (2, 2), 3)
    add(
        "simple_rnn_relu_seq",
        layers.SimpleRNN,
        {"units": 2, "activation": "relu", "return_sequences": True},
        (2, 3, 2),
        3,
    )
    add(
        "simple_rnn_linear_nobias_back",
        layers.SimpleRNN,
        {"units": 2, "activation": None, "use_bias": False, "go_backwards": True},
        (2, 2),
        2,
    )
    add(
        "simple_rnn_sigmoid_generic",
        layers.SimpleRNN,
        {"units": 2, "activation": "sigmoid"},
        (2, 2),
        3,
    )
    add(
        "simple_rnn_state",
        layers.SimpleRNN,
        {"units": 2, "return_state": True},
        [(2, 2), (2, 2)],
        3,
    )
    add("simple_rnn_stateful", layers.SimpleRNN, {"units": 2, "stateful": True}, (2, 2), 3)
    add("lstm", layers.LSTM, {"units": 2}, (2, 2), 3)
    add(
        "lstm_seq_state",
        layers.LSTM,
        {"units": 2, "return_sequences": True, "return_state": True},
        [(2, 3, 2), *state2],
        3,
    )
    add(
        "lstm_backwards",
        layers.LSTM,
        {"units": 2, "go_backwards": True, "return_sequences": True},
        (2, 3, 2),
        3,
    )
    add("lstm_nobias", layers.LSTM, {"units": 3, "use_bias": False}, (2, 3), 2)
    add(
        "lstm_no_forget_bias",
        layers.LSTM,
        {"units": 2, "unit_forget_bias": False, "bias_initializer": "random_normal"},
        (2, 2),
        3,
    )
    add(
        "lstm_hard_sigmoid_generic",
        layers.LSTM,
        {"units": 2, "recurrent_activation": "hard_sigmoid"},
        (2, 2),
        3,
    )
    add("lstm_stateful", layers.LSTM, {"units": 2, "stateful": True}, (2, 2), 3)
    add("gru", layers.GRU, {"units": 2}, (2, 2), 3)
    add(
        "gru_reset_before",
        layers.GRU,
        {"units": 2, "reset_after": False, "return_sequences": True},
        (2, 3, 2),
        3,
    )
    add(
        "gru_state_backwards",
        layers.GRU,
        {"units": 2, "return_state": True, "go_backwards": True},
        [(2, 2), (2, 2)],
        3,
    )
    add("gru_nobias", layers.GRU, {"units": 2, "use_bias": False}, (2, 2), 2)
    add(
        "gru_reset_before_nobias",
        layers.GRU,
        {"units": 2, "use_bias": False, "reset_after": False},
        (2, 2),
        2,
    )
    add("gru_relu_generic", layers.GRU, {"units": 2, "activation": "relu"}, (2, 2), 3)
    add("gru_stateful", layers.GRU, {"units": 2, "stateful": True}, (2, 2), 3)
    add("rnn_lstm_cell", layers.RNN, {"cell": layers.LSTMCell(2, **F64)}, (2, 2), 3)
    add(
        "rnn_gru_cell_seq",
        layers.RNN,
        {"cell": layers.GRUCell(2, reset_after=False, **F64), "return_sequences": True},
        (2, 3, 2),
        3,
    )
    add(
        "rnn_simple_cell_state",
        layers.RNN,
        {"cell": layers.SimpleRNNCell(2, **F64), "return_state": True},
        [(2, 2), (2, 2)],
        3,
    )
    add(
        "rnn_stacked",
        layers.RNN,
        {
            "cell": [layers.SimpleRNNCell(3, **F64), layers.LSTMCell(2, **F64)],
            "return_sequences": True,
        },
        (2, 3, 2),
        6,
    )
    add(
        "rnn_stacked_cells_obj",
        layers.RNN,
        {
            "cell": layers.StackedRNNCells(
                [layers.GRUCell(2, **F64), layers.GRUCell(2, **F64)], **F64
            )
        },
        (2, 2),
        6,
    )
    add(
        "rnn_user_cell",
        layers.RNN,
        {"cell": MinimalRNNCell(2, **F64), "go_backwards": True},
        (2, 2),
        2,
    )
    add(
        "rnn_user_cell_stateful",
        layers.RNN,
        {"cell": MinimalRNNCell(2, **F64), "stateful": True, "return_sequences": True},
        (2, 3, 2),
        2,
    )
    for mode, width in (("concat", 4), ("sum", 2), ("mul", 2), ("ave", 2)):
        add(
            f"bidirectional_{mode}",
            layers.Bidirectional,
            {"layer": layers.GRU(2, return_sequences=True, **F64), "merge_mode": mode},
            (2, 3, width),
            6,
        )
    add(
        "bidirectional_none",
        layers.Bidirectional,
        {"layer": layers.LSTM(2, **F64), "merge_mode": None},
        [(2, 2), (2, 2)],
        6,
    )
    add(
        "bidirectional_state",
        layers.Bidirectional,
        {"layer": layers.LSTM(2, return_state=True, **F64)},
        [(2, 4), *state2, *state2],
        6,
    )
    add(
        "bidirectional_backward_layer",
        layers.Bidirectional,
        {
            "layer": layers.SimpleRNN(2, **F64),
            "backward_layer": layers.LSTM(2, go_backwards=True, **F64),
        },
        (2, 4),
        6,
    )
    add(
        "time_distributed_dense",
        layers.TimeDistributed,
        {"layer": layers.Dense(2, **F64)},
        (2, 3, 2),
        2,
    )
    add(
        "time_distributed_4d",
        layers.TimeDistributed,
        {"layer": layers.Dense(2, **F64)},
        (2, 3, 2, 2),
        2,
        in_shape=(2, 3, 2, 4),
    )
    return c


@pytest.mark.parametrize("cls,kwargs,in_shape,out_shape,n_weights", _cases())
def test_recurrent_layer_harness(cls, kwargs, in_shape, out_shape, n_weights):
    run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=n_weights,
    )


# ---------------------------------------------------------------- NumPy references
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_lstm(x, k, r, b, h, c):
    u = r.shape[0]
    hs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ k + h @ r + b
        i, f = _sigmoid(z[:, :u]), _sigmoid(z[:, u : 2 * u])
        cc, o = np.tanh(z[:, 2 * u : 3 * u]), _sigmoid(z[:, 3 * u :])
        c = f * c + i * cc
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1), h, c


def _np_gru(x, k, r, b, h, reset_after):
    u = r.shape[0]
    hs = []
    for t in range(x.shape[1]):
        if reset_after:
            xz = x[:, t] @ k + b[0]
            rec = h @ r + b[1]
            z = _sigmoid(xz[:, :u] + rec[:, :u])
            rr = _sigmoid(xz[:, u : 2 * u] + rec[:, u : 2 * u])
            hh = np.tanh(xz[:, 2 * u :] + rr * rec[:, 2 * u :])
        else:
            xz = x[:, t] @ k + b
            rec = h @ r[:, : 2 * u]
            z = _sigmoid(xz[:, :u] + rec[:, :u])
            rr = _sigmoid(xz[:, u : 2 * u] + rec[:, u:])
            hh = np.tanh(xz[:, 2 * u :] + (rr * h) @ r[:, 2 * u :])
        h = z * h + (1 - z) * hh
        hs.append(h)
    return np.stack(hs, 1), h


def _set_random_weights(layer, shape, seed=0):
    layer.build(shape)
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape) * 0.5 for w in layer.weights])
    return layer.get_weights()


@pytest.fixture
def f64():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


def test_lstm_matches_numpy_gate_order_ifco(f64):
    x = np.random.default_rng(1).normal(size=(3, 5, 4))
    h0, c0 = np.full((3, 2), 0.3), np.full((3, 2), -0.2)
    layer = layers.LSTM(2, return_sequences=True, return_state=True)
    k, r, b = _set_random_weights(layer, x.shape)
    seq, h, c = (to_numpy(t) for t in layer(x, initial_state=[h0, c0]))
    ref_seq, ref_h, ref_c = _np_lstm(x, k, r, b, h0, c0)
    np.testing.assert_allclose(seq, ref_seq, rtol=1e-10)
    np.testing.assert_allclose(h, ref_h, rtol=1e-10)
    np.testing.assert_allclose(c, ref_c, rtol=1e-10)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_numpy_formula(f64, reset_after):
    x = np.random.default_rng(2).normal(size=(3, 5, 4))
    h0 = np.full((3, 2), 0.1)
    layer = layers.GRU(2, return_sequences=True, reset_after=reset_after)
    k, r, b = _set_random_weights(layer, x.shape)
    assert b.shape == ((2, 6) if reset_after else (6,))
    ref, _ = _np_gru(x, k, r, b, h0, reset_after)
    np.testing.assert_allclose(to_numpy(layer(x, initial_state=h0)), ref, rtol=1e-10)


def test_simple_rnn_matches_numpy_formula(f64):
    x = np.random.default_rng(3).normal(size=(2, 4, 3))
    layer = layers.SimpleRNN(3)
    k, r, b = _set_random_weights(layer, x.shape)
    h = np.zeros((2, 3))
    for t in range(4):
        h = np.tanh(x[:, t] @ k + h @ r + b)
    np.testing.assert_allclose(to_numpy(layer(x)), h, rtol=1e-10)


def test_default_initializers_and_forget_bias():
    layer = layers.LSTM(3)
    layer.build((None, 2, 4))
    bias = layer.cell.bias.numpy()
    np.testing.assert_array_equal(bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    rk = layer.cell.recurrent_kernel.numpy()  # orthogonal blocks: R R^T = I
    np.testing.assert_allclose(rk @ rk.T, np.eye(3), atol=1e-5)
    assert layer.cell.kernel.path == "lstm/lstm_cell/kernel" or layer.cell.kernel.path.endswith(
        "/lstm_cell/kernel"
    )
    assert layers.GRU(2).reset_after is True


# ---------------------------------------------------------------- fused == cell loop
def _outputs_and_grads(layer, x, mask, weights):
    xv = Variable(x)
    with GradientTape() as tape:
        tape.watch(xv)
        xin = ops.multiply(xv, 1.0)
        xin._keras_mask = mask
        outs = layer(xin)
        total = ops.sum(ops.stack([ops.sum(ops.multiply(o, i + 1.0)) for i, o in enumerate(outs)]))
    grads = tape.gradient(total, [xv, *weights])
    return [to_numpy(o) for o in outs] + [to_numpy(g) for g in grads]


FUSED = [
    (layers.LSTM, layers.LSTMCell, {}),
    (layers.GRU, layers.GRUCell, {}),
    (layers.GRU, layers.GRUCell, {"reset_after": False}),
    (layers.SimpleRNN, layers.SimpleRNNCell, {}),
    (layers.SimpleRNN, layers.SimpleRNNCell, {"activation": "relu"}),
]


@pytest.mark.parametrize("layer_cls,cell_cls,kw", FUSED, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_layer_equals_cell_loop(f64, layer_cls, cell_cls, kw, go_backwards, masked):
    x = np.random.default_rng(4).normal(size=(3, 5, 4))
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool) if masked else None
    flags = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    fused = layer_cls(3, **kw, **flags)
    generic = layers.RNN(cell_cls(3, **kw), **flags)
    weights = _set_random_weights(fused, x.shape)
    generic.build(x.shape)
    generic.set_weights(weights)
    got = _outputs_and_grads(fused, x, mask, fused.trainable_weights)
    want = _outputs_and_grads(generic, x, mask, generic.trainable_weights)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- masks
@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_masked_timestep_leaves_state_unchanged(f64, cls):
    x = np.random.default_rng(5).normal(size=(2, 4, 3))
    layer = cls(2, return_sequences=True, return_state=True)
    _set_random_weights(layer, x.shape)
    mask = np.array([[1, 0, 1, 1], [1, 1, 1, 1]], bool)
    xin = ops.convert_to_tensor(x)
    xin._keras_mask = mask
    seq, *states = layer(xin)
    short = layer(x[:, [0, 2, 3]])
    # Sample 0 with step 1 masked == the sequence without step 1.
    for s, s_short in zip(states, short[1:]):
        np.testing.assert_allclose(to_numpy(s)[0], to_numpy(s_short)[0], rtol=1e-12)
    seq = to_numpy(seq)
    np.testing.assert_array_equal(seq[0, 1], seq[0, 0])  # the previous output repeats
    unmasked = layer(x)
    np.testing.assert_allclose(to_numpy(unmasked[0])[1], seq[1], rtol=1e-12)


def test_leading_masked_steps_output_zeros_but_keep_the_initial_state(f64):
    x = np.random.default_rng(6).normal(size=(1, 3, 2))
    layer = layers.GRU(2, return_sequences=True, return_state=True)
    _set_random_weights(layer, x.shape)
    xin = ops.convert_to_tensor(x)
    xin._keras_mask = np.array([[0, 0, 0]], bool)
    h0 = np.full((1, 2), 0.7)
    seq, h = layer(xin, initial_state=h0)
    np.testing.assert_array_equal(to_numpy(seq), 0.0)
    np.testing.assert_array_equal(to_numpy(h), h0)


def test_zero_output_for_mask_and_output_mask(f64):
    x = np.random.default_rng(7).normal(size=(2, 3, 2))
    layer = layers.LSTM(2, return_sequences=True, zero_output_for_mask=True)
    xin = ops.convert_to_tensor(x)
    mask = np.array([[1, 0, 1], [1, 1, 0]], bool)
    xin._keras_mask = mask
    out = layer(xin)
    np.testing.assert_array_equal(to_numpy(out)[~mask], 0.0)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), mask)
    assert layers.LSTM(2)(xin)._keras_mask is None


def test_masking_and_embedding_masks_reach_the_lstm(f64):
    x = np.random.default_rng(8).normal(size=(2, 4, 3))
    x[0, 2:] = 0.0  # padding
    masking = layers.Masking(0.0)
    lstm = layers.LSTM(2)
    _set_random_weights(lstm, x.shape)
    out = to_numpy(lstm(masking(x)))
    np.testing.assert_allclose(out[0], to_numpy(lstm(x[:1, :2]))[0], rtol=1e-12)
    ids = np.array([[3, 1, 0, 0], [2, 2, 4, 1]])
    emb = layers.Embedding(5, 3, mask_zero=True)
    seq = emb(ids)
    np.testing.assert_allclose(
        to_numpy(lstm(seq))[0], to_numpy(lstm(to_numpy(seq)[:1, :2]))[0], rtol=1e-12
    )


def test_bidirectional_masks_and_reference(f64):
    x = np.random.default_rng(9).normal(size=(2, 4, 3))
    inner = layers.LSTM(2, return_sequences=True, name="lstm")
    layer = layers.Bidirectional(inner)
    _set_random_weights(layer, x.shape)
    fwd, bwd = layer.forward_layer, layer.backward_layer
    assert (fwd.name, bwd.name, bwd.go_backwards) == ("forward_lstm", "backward_lstm", True)
    assert fwd is not inner and not inner.built
    out = to_numpy(layer(x))
    ref_f = to_numpy(fwd(x))
    ref_b = to_numpy(bwd(x))[:, ::-1]
    np.testing.assert_allclose(out, np.concatenate([ref_f, ref_b], -1), rtol=1e-12)
    xin = ops.convert_to_tensor(x)
    xin._keras_mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    masked = to_numpy(layer(xin))
    np.testing.assert_array_equal(masked[0, 3], 0.0)  # zero_output_for_mask in both directions
    np.testing.assert_allclose(masked[0, :3], to_numpy(layer(x[:1, :3]))[0], rtol=1e-12)


# ---------------------------------------------------------------- state handling
@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_stateful_continues_from_the_last_state(f64, cls):
    x = np.random.default_rng(10).normal(size=(2, 6, 3))
    whole = cls(2)
    weights = _set_random_weights(whole, x.shape)
    stateful = cls(2, stateful=True)
    stateful.build(x.shape)
    stateful.set_weights(weights)
    stateful(x[:, :3])
    np.testing.assert_allclose(to_numpy(stateful(x[:, 3:])), to_numpy(whole(x)), rtol=1e-12)
    stateful.reset_state()
    np.testing.assert_allclose(to_numpy(stateful(x[:, 3:])), to_numpy(whole(x[:, 3:])))
    with pytest.raises(ValueError, match="batch size"):
        stateful(x[:1])
    with pytest.raises(ValueError, match="batch size must be static"):
        cls(2, stateful=True).build((None, 6, 3))


def test_go_backwards_equals_reversed_input(f64):
    x = np.random.default_rng(11).normal(size=(2, 4, 3))
    back = layers.LSTM(2, go_backwards=True, return_sequences=True)
    weights = _set_random_weights(back, x.shape)
    fwd = layers.LSTM(2, return_sequences=True)
    fwd.build(x.shape)
    fwd.set_weights(weights)
    np.testing.assert_allclose(to_numpy(back(x)), to_numpy(fwd(x[:, ::-1])), rtol=1e-12)


def test_return_state_shapes_and_symbolic_outputs():
    x = np.zeros((4, 5, 3), "float32")
    out, h, c = layers.LSTM(6, return_state=True)(x)
    assert (out.shape, h.shape, c.shape) == ((4, 6), (4, 6), (4, 6))
    np.testing.assert_array_equal(to_numpy(out), to_numpy(h))
    seq, h = layers.GRU(2, return_sequences=True, return_state=True)(x)
    assert (seq.shape, h.shape) == ((4, 5, 2), (4, 2))
    inp = layers.Input((5, 3))
    outs = layers.LSTM(6, return_state=True)(inp)
    assert [tuple(o.shape) for o in outs] == [(None, 6)] * 3
    stacked = layers.RNN([layers.LSTMCell(2), layers.GRUCell(3)], return_state=True)
    out, (h1, c1), (h2,) = stacked(x)  # each cell's states, as Keras nests them
    assert (out.shape, h1.shape, c1.shape, h2.shape) == ((4, 3), (4, 2), (4, 2), (4, 3))


def test_dropout_is_seeded_and_only_in_training():
    x = np.random.default_rng(12).normal(size=(8, 5, 4)).astype("float32")
    for kw in ({"dropout": 0.5}, {"recurrent_dropout": 0.5}):
        a, b = layers.LSTM(3, seed=3, **kw), layers.LSTM(3, seed=3, **kw)
        a.build(x.shape)
        b.build(x.shape)
        b.set_weights(a.get_weights())
        ta, tb = to_numpy(a(x, training=True)), to_numpy(b(x, training=True))
        np.testing.assert_array_equal(ta, tb)
        assert not np.allclose(ta, to_numpy(a(x)))
        np.testing.assert_array_equal(to_numpy(a(x)), to_numpy(b(x)))


def test_lstm_trains_in_a_sequential_model():
    from distkeras.models import Sequential

    rng = np.random.default_rng(13)
    x = rng.normal(size=(64, 6, 2)).astype("float32")
    y = (x[:, :, 0].sum(1) > 0).astype("float32")[:, None]
    model = Sequential([layers.Input((6, 2)), layers.LSTM(8), layers.Dense(1, "sigmoid")])
    model.compile(optimizer=optimizers.Adam(0.02), loss="binary_crossentropy")
    first = model.train_on_batch(x, y)
    for _ in range(40):
        last = model.train_on_batch(x, y)
    first = first[0] if isinstance(first, list) else first
    last = last[0] if isinstance(last, list) else last
    assert last < first * 0.6


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.LSTM(0),
        lambda: layers.GRU(-3),
        lambda: layers.SimpleRNN(0),
        lambda: layers.LSTMCell(-1),
        lambda: layers.GRUCell(0),
        lambda: layers.SimpleRNNCell(2.5),
    ],
)
def test_units_must_be_positive(make):
    with pytest.raises(ValueError, match="Received: units="):
        make()


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_wrong_input_rank_is_a_clear_error(cls):
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=2"):
        cls(2)(np.zeros((2, 3), "float32"))


def test_wrapper_and_rnn_argument_errors():
    with pytest.raises(ValueError, match="state_size"):
        layers.RNN(layers.Dense(2))
    with pytest.raises(ValueError, match="merge_mode='max'"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="Layer` instance"):
        layers.Bidirectional("lstm")
    with pytest.raises(ValueError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2))
    with pytest.raises(ValueError, match="Layer` instance"):
        layers.TimeDistributed(object())
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        layers.TimeDistributed(layers.Dense(2))(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="initial state"):
        layers.LSTM(2)(np.zeros((1, 2, 3), "float32"), initial_state=[np.zeros((1, 2))])
    with pytest.raises(ValueError, match="recurrent_dropout="):
        layers.GRU(2, recurrent_dropout="high")
