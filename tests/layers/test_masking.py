"""Masking end to end: padded batches give what the unpadded sequences give, one by one.

Each model starts with `Embedding(mask_zero=True)`; the padded batch holds
sequences of different lengths, padded with 0 after (post) or before (pre) the
tokens. Running each unpadded sequence alone (batch of one, its own length)
is the reference: mask-aware layers must skip the padding exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, losses, metrics, ops
from tests.layers.harness import run_layer_test

LENGTHS = (5, 2, 4)
T = 6
VOCAB = 20


def _batch(padding: str) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, VOCAB, size=n).astype("int32") for n in LENGTHS]
    padded = np.zeros((len(seqs), T), "int32")
    for i, s in enumerate(seqs):
        if padding == "post":
            padded[i, : len(s)] = s
        else:
            padded[i, T - len(s) :] = s
    return seqs, padded


class MaskedMean(layers.Layer):
    """A custom mask consumer: the mean over the unmasked steps."""

    def call(self, inputs, mask=None):
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return ops.sum(inputs * m, axis=1) / ops.sum(m, axis=1)


class Scale(layers.Layer):
    """A custom layer that passes the mask on (`supports_masking = True`)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs * 2.0


BODIES = {
    "lstm": lambda: [layers.LSTM(3)],
    "gru": lambda: [layers.GRU(3)],
    "simple_rnn": lambda: [layers.SimpleRNN(3)],
    "bidirectional_lstm": lambda: [layers.Bidirectional(layers.LSTM(3))],
    "bidirectional_gru_seq": lambda: [
        layers.Bidirectional(layers.GRU(2, return_sequences=True)),
        layers.GlobalAveragePooling1D(),
    ],
    "lstm_seq_pool": lambda: [
        layers.LSTM(3, return_sequences=True),
        layers.GlobalAveragePooling1D(),
    ],
    "global_average_pooling": lambda: [layers.GlobalAveragePooling1D()],
    "custom_mask_consumer": lambda: [Scale(), MaskedMean()],
    "time_distributed": lambda: [
        layers.TimeDistributed(layers.Dense(3)),
        layers.GRU(2),
    ],
    "dense_dropout_lstm": lambda: [layers.Dense(3), layers.Dropout(0.5), layers.LSTM(2)],
    "lstm_go_backwards": lambda: [layers.LSTM(3, go_backwards=True)],
    "gru_go_backwards": lambda: [layers.GRU(3, go_backwards=True)],
    "stacked_cells_rnn": lambda: [layers.RNN([layers.GRUCell(2), layers.LSTMCell(3)])],
    "bidirectional_sum": lambda: [layers.Bidirectional(layers.SimpleRNN(2), merge_mode="sum")],
    "layer_norm_lstm": lambda: [layers.LayerNormalization(), layers.LSTM(2)],
}


def _functional(body: list) -> keras.Model:
    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    for layer in body:
        x = layer(x)
    return keras.Model(inp, x)


def _attention_model(kind: str) -> keras.Model:
    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    if kind == "attention":
        y = layers.Attention()([x, x])
    elif kind == "additive_attention":
        y = layers.AdditiveAttention()([x, x])
    else:
        y = layers.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)
    return keras.Model(inp, layers.GlobalAveragePooling1D()(y))


def _merge_model() -> keras.Model:
    inp = keras.Input((None,), dtype="int32")
    a = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    b = layers.Dense(4)(a)
    x = layers.Concatenate()([a, b])
    x = layers.Add()([x, layers.Dense(8)(x)])
    x = layers.Multiply()([x, layers.Dense(8)(x)])
    return keras.Model(inp, layers.LSTM(2)(x))


def _assert_padded_matches(model, padding: str) -> None:
    seqs, padded = _batch(padding)
    out = model(padded).numpy()
    ref = np.concatenate([model(s[None]).numpy() for s in seqs])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("body", sorted(BODIES))
def test_functional_padded_equals_unpadded(body, padding):
    _assert_padded_matches(_functional(BODIES[body]()), padding)


@pytest.mark.parametrize("kind", ["attention", "additive_attention", "multi_head_attention"])
@pytest.mark.parametrize("padding", ["post", "pre"])
def test_attention_padded_equals_unpadded(kind, padding):
    _assert_padded_matches(_attention_model(kind), padding)


def test_merge_layers_combine_masks():
    _assert_padded_matches(_merge_model(), "post")


@pytest.mark.parametrize("body", ["lstm", "bidirectional_lstm", "custom_mask_consumer"])
def test_sequential_padded_equals_unpadded(body):
    model = keras.Sequential(
        [keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True)]
        + BODIES[body]()
    )
    _assert_padded_matches(model, "post")


@pytest.mark.parametrize("body", ["lstm", "gru", "custom_mask_consumer"])
def test_eager_layer_calls_pass_masks(body):
    emb = layers.Embedding(VOCAB, 4, mask_zero=True)
    stack = BODIES[body]()

    def run(x):
        y = emb(x)
        for layer in stack:
            y = layer(y)
        return y.numpy()

    seqs, padded = _batch("post")
    np.testing.assert_allclose(
        run(padded), np.concatenate([run(s[None]) for s in seqs]), rtol=1e-5, atol=1e-6
    )


def test_multi_head_attention_explicit_query_and_value_masks():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    v = rng.normal(size=(2, 5, 4)).astype("float32")
    q_len, v_len = (3, 2), (4, 5)
    q_mask = np.arange(3)[None] < np.array(q_len)[:, None]
    v_mask = np.arange(5)[None] < np.array(v_len)[:, None]
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=2)
    out = mha(q, v, query_mask=q_mask, value_mask=v_mask).numpy()
    for i in range(2):
        alone = mha(q[i : i + 1, : q_len[i]], v[i : i + 1, : v_len[i]]).numpy()[0]
        np.testing.assert_allclose(out[i, : q_len[i]], alone, rtol=1e-5, atol=1e-6)
    # Keras zeroes nothing on masked queries of MHA; they still attend to valid keys.
    assert np.isfinite(out).all()


def test_explicit_mask_argument_in_a_functional_model_and_json():
    inp = keras.Input((None,), dtype="int32")
    masked = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    plain = layers.Embedding(VOCAB, 4)(inp)
    out = layers.LSTM(3)(plain, mask=masked._keras_mask)
    model = keras.Model(inp, out)
    _assert_padded_matches(model, "post")
    loaded = keras.models.model_from_json(model.to_json())
    loaded.set_weights(model.get_weights())
    _, padded = _batch("post")
    np.testing.assert_allclose(loaded(padded).numpy(), model(padded).numpy(), rtol=1e-6)


def test_nested_models_pass_masks_in_and_out():
    inner_in = keras.Input((None, 4))
    inner = keras.Model(inner_in, layers.LSTM(3, return_sequences=True)(inner_in))
    producer_in = keras.Input((None,), dtype="int32")
    producer = keras.Model(producer_in, layers.Embedding(VOCAB, 4, mask_zero=True)(producer_in))
    inp = keras.Input((None,), dtype="int32")
    x = producer(inp)
    assert x._keras_mask is not None and x._keras_mask.shape == (None, None)
    x = inner(x)
    assert x._keras_mask is not None
    model = keras.Model(inp, layers.GlobalAveragePooling1D()(x))
    _assert_padded_matches(model, "post")
    loaded = keras.models.model_from_json(model.to_json())
    loaded.set_weights(model.get_weights())
    _assert_padded_matches(loaded, "post")


# ---------------------------------------------------------------- losses and metrics
def _per_step_model() -> keras.Model:
    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    x = layers.LSTM(3, return_sequences=True)(x)
    return keras.Model(inp, layers.TimeDistributed(layers.Dense(2))(x))


def test_loss_and_metrics_average_over_unmasked_steps_only():
    model = _per_step_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    seqs, padded = _batch("post")
    rng = np.random.default_rng(2)
    y = rng.normal(size=(3, T, 2)).astype("float32")
    y[padded == 0] = 1e3  # any value on padded steps must not count
    result = model.evaluate(padded, y, batch_size=3, verbose=0, return_dict=True)
    sq, ab = [], []
    for i, s in enumerate(seqs):
        pred = model(s[None]).numpy()[0]
        diff = pred - y[i, : len(s)]
        sq.append((diff**2).mean(axis=-1))
        ab.append(np.abs(diff).mean(axis=-1))
    np.testing.assert_allclose(result["loss"], np.concatenate(sq).mean(), rtol=1e-5)
    np.testing.assert_allclose(result["mae"], np.concatenate(ab).mean(), rtol=1e-5)


def test_loss_object_reads_the_mask_of_y_pred():
    model = _per_step_model()
    seqs, padded = _batch("pre")
    y = np.ones((3, T, 2), "float32")
    pred = model(padded)
    assert pred._keras_mask is not None
    got = losses.MeanAbsoluteError()(y, pred).numpy()
    per_step = [np.abs(model(s[None]).numpy()[0] - 1.0).mean(axis=-1) for s in seqs]
    np.testing.assert_allclose(got, np.concatenate(per_step).mean(), rtol=1e-5)
    metric = metrics.MeanSquaredError()
    metric.update_state(y, pred)
    per_step = [((model(s[None]).numpy()[0] - 1.0) ** 2).mean(axis=-1) for s in seqs]
    np.testing.assert_allclose(metric.result(), np.concatenate(per_step).mean(), rtol=1e-5)


def test_training_on_padded_batches_ignores_the_padding_targets():
    keras.utils.set_random_seed(3)
    model = _per_step_model()
    model.compile(optimizer="sgd", loss="mse")
    _, padded = _batch("post")
    y = np.zeros((3, T, 2), "float32")
    y_noise = y.copy()
    y_noise[padded == 0] = 50.0
    start = model.get_weights()
    model.fit(padded, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    clean = model.get_weights()
    model.set_weights(start)
    model.optimizer = None
    model.compile(optimizer="sgd", loss="mse")
    model.fit(padded, y_noise, batch_size=3, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(clean, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- RNN semantics
X_RNN = np.sin(np.arange(24, dtype="float64").reshape(2, 4, 3))
MASK_RNN = np.array([[True, False, True, True], [True, True, False, False]])

# From Keras 3.x (jax backend) on the same inputs, weights and mask: masked
# steps repeat the previous output (or give zeros with zero_output_for_mask).
KERAS_MASKED_RNN = {
    "LSTM": [
        [[-0.0259198, -0.0719157], [-0.0259198, -0.0719157], [0.0104058, -0.053062],
         [-0.0131337, 0.0940547]],
        [[0.0545436, 0.0308258], [-0.0771813, 0.1103496], [-0.0771813, 0.1103496],
         [-0.0771813, 0.1103496]],
    ],
    "GRU": [
        [[0.1449924, 0.3086943], [0.1449924, 0.3086943], [0.2339222, 0.4751533],
         [0.0096107, 0.1701409]],
        [[0.2240156, 0.4527492], [0.005252, 0.1535002], [0.005252, 0.1535002],
         [0.005252, 0.1535002]],
    ],
    "SimpleRNN": [
        [[-0.5116352, -0.7969518], [-0.5116352, -0.7969518], [-0.5387772, -0.6392371],
         [0.4722739, 0.5817906]],
        [[-0.7198526, -0.8417429], [0.5792994, 0.6563402], [0.5792994, 0.6563402],
         [0.5792994, 0.6563402]],
    ],
}  # fmt: skip


def _fixed_weights(layer) -> None:
    layer.set_weights(
        [
            (np.cos(np.arange(np.prod(v.shape)) * 0.7 + i) * 0.5).reshape(v.shape)
            for i, v in enumerate(layer.weights)
        ]
    )


@pytest.mark.parametrize("name", sorted(KERAS_MASKED_RNN))
def test_masked_rnn_steps_match_keras(name):
    layer = getattr(layers, name)(2, return_sequences=True, dtype="float64")
    layer.build((2, 4, 3))
    _fixed_weights(layer)
    out = layer(X_RNN, mask=MASK_RNN).numpy()
    np.testing.assert_allclose(out, KERAS_MASKED_RNN[name], atol=2e-6)


def test_zero_output_for_mask_matches_keras():
    layer = layers.LSTM(2, return_sequences=True, zero_output_for_mask=True, dtype="float64")
    layer.build((2, 4, 3))
    _fixed_weights(layer)
    out = layer(X_RNN, mask=MASK_RNN).numpy()
    expected = np.where(MASK_RNN[..., None], KERAS_MASKED_RNN["LSTM"], 0.0)
    np.testing.assert_allclose(out, expected, atol=2e-6)


GRAD_MASK = np.array([[True, True, False, False], [False, True, True, True]])


@pytest.mark.parametrize(
    "layer_cls, kwargs",
    [
        (layers.LSTM, {"units": 2, "return_sequences": True}),
        (layers.LSTM, {"units": 2}),
        (layers.GRU, {"units": 2, "return_sequences": True}),
        (layers.GRU, {"units": 2, "reset_after": False}),
        (layers.SimpleRNN, {"units": 2, "return_sequences": True}),
    ],
)
def test_masked_rnn_gradients_match_finite_differences(layer_cls, kwargs):
    run_layer_test(
        layer_cls, kwargs, input_shape=(2, 4, 3), call_kwargs={"mask": GRAD_MASK}, atol=1e-5
    )


def test_masked_bidirectional_gradients_match_finite_differences():
    run_layer_test(
        layers.Bidirectional,
        {"layer": layers.LSTM(2, return_sequences=True, dtype="float64")},
        input_shape=(2, 4, 3),
        call_kwargs={"mask": GRAD_MASK},
        atol=1e-5,
    )


# ---------------------------------------------------------------- mask metadata
def test_symbolic_masks_follow_keras_propagation_rules():
    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    assert x._keras_mask.shape == (None, None) and x._keras_mask.dtype == "bool"
    assert layers.Dense(3)(x)._keras_mask is not None  # supports masking
    scaled = Scale()(x)  # traced on stand-ins: unknown sizes stay unknown
    assert scaled.shape == (None, None, 4) and scaled._keras_mask.shape == (None, None)
    assert layers.Conv1D(2, 1)(x)._keras_mask is None  # does not: the mask is dropped
    assert layers.LSTM(2)(x)._keras_mask is None
    seq, h, c = layers.LSTM(2, return_sequences=True, return_state=True)(x)
    assert seq._keras_mask is not None and h._keras_mask is None and c._keras_mask is None
    assert layers.GlobalAveragePooling1D()(x)._keras_mask is None
    assert (x * 2.0)._keras_mask is None  # ops are not layers: no mask, as in Keras
    unmasked = keras.Input((None, 4))
    assert layers.Add()([x, unmasked])._keras_mask is not None
    assert layers.Concatenate(axis=1)([x, x])._keras_mask is not None
    fixed = keras.Input((7,), dtype="int32")
    y = layers.Embedding(VOCAB, 4, mask_zero=True)(fixed)
    assert y._keras_mask.shape == (None, 7)
    assert layers.Concatenate(axis=1)([y, y])._keras_mask.shape == (None, 14)


def test_custom_layer_gets_the_mask_while_the_model_is_built():
    seen = []

    class Probe(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            seen.append(mask)
            return inputs

    inp = keras.Input((None,), dtype="int32")
    x = layers.Embedding(VOCAB, 4, mask_zero=True)(inp)
    Probe()(x)
    assert seen and seen[-1] is not None and tuple(seen[-1].shape)[0] == 1


def test_eager_outputs_carry_masks():
    _, padded = _batch("post")
    emb = layers.Embedding(VOCAB, 4, mask_zero=True)
    out = emb(padded)
    np.testing.assert_array_equal(out._keras_mask.numpy(), padded != 0)
    np.testing.assert_array_equal(emb.compute_mask(padded).numpy(), padded != 0)
    x = np.zeros((2, 3, 2), "float32")
    x[0, 1] = 5.0
    x[1, 2] = [1.0, -1.0]
    masked = layers.Masking(mask_value=0.0)(x)
    np.testing.assert_array_equal(
        masked._keras_mask.numpy(), [[False, True, False], [False, False, True]]
    )
    assert layers.Flatten()(out)._keras_mask is None


def test_compute_mask_set_in_call_wins_and_list_masks_split():
    class Split(layers.Layer):
        def call(self, inputs):
            return ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None if mask is None else ops.split(mask, 2, axis=1)

    _, padded = _batch("post")
    first, second = Split()(layers.Embedding(VOCAB, 4, mask_zero=True)(padded))
    np.testing.assert_array_equal(first._keras_mask.numpy(), padded[:, :3] != 0)
    np.testing.assert_array_equal(second._keras_mask.numpy(), padded[:, 3:] != 0)
    assert Split().supports_masking  # defining compute_mask opts in, as in Keras 3


def test_masking_layer_feeds_rnns_in_a_functional_model():
    rng = np.random.default_rng(5)
    seqs = [rng.normal(size=(n, 2)).astype("float32") for n in LENGTHS]
    padded = np.zeros((3, T, 2), "float32")
    for i, s in enumerate(seqs):
        padded[i, T - len(s) :] = s
    inp = keras.Input((None, 2))
    x = layers.Masking(mask_value=0.0)(inp)
    assert x._keras_mask is not None and x._keras_mask.shape == (None, None)
    model = keras.Model(inp, layers.GRU(3)(layers.LSTM(3, return_sequences=True)(x)))
    out = model(padded).numpy()
    ref = np.concatenate([model(s[None]).numpy() for s in seqs])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_global_max_pooling_ignores_masks_as_in_keras():
    # Keras 3's GlobalMaxPooling1D takes no mask: padded steps (embedding of 0) count.
    _, padded = _batch("post")
    emb = layers.Embedding(VOCAB, 4, mask_zero=True)
    x = emb(padded)
    pooled = layers.GlobalMaxPooling1D()(x).numpy()
    np.testing.assert_allclose(pooled, x.numpy().max(axis=1))
    assert not layers.GlobalMaxPooling1D().supports_masking


def test_compute_mask_on_symbolic_inputs_builds_a_mask_op():
    inp = keras.Input((None,), dtype="int32")
    mask = layers.Embedding(VOCAB, 4, mask_zero=True).compute_mask(inp)
    assert mask.shape == (None, None) and mask.dtype == "bool"
    assert layers.Masking().compute_mask(keras.Input((None, 3))).shape == (None, None)
    x = layers.Embedding(VOCAB, 4)(inp)  # no mask of its own: the op's mask is passed
    model = keras.Model(inp, layers.GRU(3)(x, mask=mask))
    _assert_padded_matches(model, "pre")
    loaded = keras.models.model_from_json(model.to_json())
    loaded.set_weights(model.get_weights())
    _assert_padded_matches(loaded, "pre")
