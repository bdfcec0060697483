"""Attention layers against NumPy einsum references of the Keras 3 formulas."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import backend, layers
from tests.layers.harness import run_layer_test

RNG = np.random.default_rng(0)
Q = RNG.normal(size=(2, 3, 4))
V = RNG.normal(size=(2, 5, 4))
K = RNG.normal(size=(2, 5, 4))


def _softmax(x, mask=None):
    if mask is not None:
        x = x + (1.0 - mask) * -1e9
    e = np.exp(x - x.max(-1, keepdims=True))
    out = e / e.sum(-1, keepdims=True)
    return out if mask is None else out * mask


def _luong(q, v, k, scale=1.0, mask=None):
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = s - 1e9 * (1 - mask)
    return _softmax(s) @ v


def _mha_ref(weights, q, v, k=None, mask=None, key_dim=3):
    k = v if k is None else k
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    qp = (np.einsum("btd,dhk->bthk", q, wq) + bq) / np.sqrt(key_dim)
    kp = np.einsum("bsd,dhk->bshk", k, wk) + bk
    vp = np.einsum("bsd,dhk->bshk", v, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", qp, kp)
    probs = _softmax(scores, None if mask is None else mask[:, None].astype(float))
    o = np.einsum("bhts,bshv->bthv", probs, vp)
    return np.einsum("bthv,hvo->bto", o, wo) + bo, probs


ATTENTION_CASES = [
    # name, cls, kwargs, inputs, expected output, n weights
    ("dot", layers.Attention, {}, [Q, V], _luong(Q, V, V), 0),
    ("dot_key", layers.Attention, {}, [Q, V, K], _luong(Q, V, K), 0),
    ("dot_scale", layers.Attention, {"use_scale": True}, [Q, V, K], _luong(Q, V, K), 1),
    ("concat", layers.Attention, {"score_mode": "concat"}, [Q, V, K], None, 1),
    (
        "concat_scale",
        layers.Attention,
        {"score_mode": "concat", "use_scale": True},
        [Q, V],
        None,
        2,
    ),
    ("additive", layers.AdditiveAttention, {}, [Q, V, K], None, 1),
    ("additive_noscale", layers.AdditiveAttention, {"use_scale": False}, [Q, V], None, 0),
]


@pytest.mark.parametrize(
    "name,cls,kwargs,inputs,expected,n_w", ATTENTION_CASES, ids=[c[0] for c in ATTENTION_CASES]
)
def test_attention_layer(name, cls, kwargs, inputs, expected, n_w):
    run_layer_test(
        cls,
        kwargs,
        input_shape=[a.shape for a in inputs],
        input_data=inputs,
        expected_output_shape=(2, 3, 4),
        expected_output=expected,
        expected_num_trainable_weights=n_w,
    )


MHA_CASES = [
    # name, kwargs, input shapes, call kwargs, expected shape, n weights
    ("mha", {"num_heads": 2, "key_dim": 3}, [(2, 3, 4), (2, 5, 6)], {}, (2, 3, 4), 8),
    (
        "mha_key_value_dims",
        {"num_heads": 2, "key_dim": 2, "value_dim": 3, "output_shape": 5},
        [(2, 3, 4), (2, 5, 6), (2, 5, 2)],
        {},
        (2, 3, 5),
        8,
    ),
    (
        "mha_no_bias_causal",
        {"num_heads": 1, "key_dim": 3, "use_bias": False},
        [(2, 4, 3), (2, 4, 3)],
        {"use_causal_mask": True},
        (2, 4, 3),
        4,
    ),
    (
        "mha_attention_axes",
        {"num_heads": 2, "key_dim": 2, "attention_axes": (2,)},
        [(2, 2, 3, 4), (2, 2, 5, 4)],
        {},
        (2, 2, 3, 4),
        8,
    ),
    (
        "mha_output_shape_2d",
        {"num_heads": 2, "key_dim": 2, "output_shape": (2, 3)},
        [(2, 3, 4), (2, 3, 4)],
        {},
        (2, 3, 2, 3),
        8,
    ),
]


@pytest.mark.parametrize(
    "name,kwargs,shapes,call_kwargs,out_shape,n_w", MHA_CASES, ids=[c[0] for c in MHA_CASES]
)
def test_multi_head_attention_layer(name, kwargs, shapes, call_kwargs, out_shape, n_w):
    run_layer_test(
        layers.MultiHeadAttention,
        kwargs,
        input_shape=shapes,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=n_w,
        unpack_inputs=True,
        call_kwargs=call_kwargs,
    )


def _f64(fn):
    def wrapped(*a, **k):
        backend.set_floatx("float64")
        try:
            return fn(*a, **k)
        finally:
            backend.set_floatx("float32")

    wrapped.__name__ = fn.__name__
    return wrapped


@_f64
def test_mha_weight_shapes_and_values_match_the_einsum_reference():
    q, v = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5, 6))
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, bias_initializer="random_normal")
    out, scores = layer(q, v, return_attention_scores=True)
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    assert shapes == [(4, 2, 3), (2, 3), (6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (2, 3, 4), (4,)]
    ref, ref_scores = _mha_ref(layer.get_weights(), q, v)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(scores), ref_scores, rtol=1e-10, atol=1e-12)
    assert tuple(scores.shape) == (2, 2, 3, 5)


@_f64
def test_mha_masks_combine_like_keras():
    q, v = RNG.normal(size=(2, 4, 4)), RNG.normal(size=(2, 4, 4))
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3)
    attn = RNG.random((2, 4, 4)) > 0.3
    v_mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    out = layer(q, v, attention_mask=attn, value_mask=v_mask, use_causal_mask=True)
    causal = np.tril(np.ones((4, 4), bool))[None]
    full = attn & v_mask[:, None, :] & causal
    ref, _ = _mha_ref(layer.get_weights(), q, v, mask=full)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-9, atol=1e-12)


@_f64
def test_mha_attention_axes_treat_other_axes_as_batch():
    q, v = RNG.normal(size=(2, 3, 4, 4)), RNG.normal(size=(2, 3, 5, 4))
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3, attention_axes=2)
    out = np.asarray(layer(q, v))
    for i in range(3):
        ref, _ = _mha_ref(layer.get_weights(), q[:, i], v[:, i])
        np.testing.assert_allclose(out[:, i], ref, rtol=1e-9, atol=1e-12)


@_f64
def test_attention_masks_and_scores():
    q_mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    v_mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    layer = layers.Attention()
    out, w = layer([Q, V], mask=[q_mask, v_mask], return_attention_scores=True)
    ref = _luong(Q, V, V, mask=v_mask[:, None, :].astype(float)) * q_mask[..., None]
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-9, atol=1e-12)
    assert np.all(np.asarray(w)[~np.broadcast_to(v_mask[:, None, :], (2, 3, 5))] < 1e-12)
    causal = layers.Attention()([Q[:, :3], Q[:, :3]], use_causal_mask=True)
    ref = _luong(Q[:, :3], Q[:, :3], Q[:, :3], mask=np.tril(np.ones((3, 3)))[None])
    np.testing.assert_allclose(np.asarray(causal), ref, rtol=1e-9, atol=1e-12)


@_f64
def test_concat_and_additive_scores_follow_keras():
    layer = layers.Attention(score_mode="concat", use_scale=True)
    layer([Q, V, K])
    layer.set_weights([np.array(0.7), np.array(1.3)])  # scale, concat_score_weight
    out = np.asarray(layer([Q, V, K]))
    scores = 1.3 * np.tanh(0.7 * (Q[:, :, None] + K[:, None])).sum(-1)
    np.testing.assert_allclose(out, _softmax(scores) @ V, rtol=1e-10)

    add = layers.AdditiveAttention()
    add([Q, V, K])
    scale = np.array([0.5, -1.0, 2.0, 0.1])
    add.set_weights([scale])
    out = np.asarray(add([Q, V, K]))
    scores = (scale * np.tanh(Q[:, :, None] + K[:, None])).sum(-1)
    np.testing.assert_allclose(out, _softmax(scores) @ V, rtol=1e-10)


def test_attention_dropout_only_in_training_and_seeded():
    q, v = Q.astype("float32"), V.astype("float32")
    a = layers.Attention(dropout=0.5, seed=3)
    b = layers.Attention(dropout=0.5, seed=3)
    np.testing.assert_allclose(np.asarray(a([q, v])), _luong(q, v, v), rtol=1e-5)
    ta, tb = np.asarray(a([q, v], training=True)), np.asarray(b([q, v], training=True))
    np.testing.assert_array_equal(ta, tb)
    assert not np.allclose(ta, _luong(q, v, v), rtol=1e-3)
    m = layers.MultiHeadAttention(2, 3, dropout=0.5, seed=1)
    assert not np.allclose(np.asarray(m(q, v, training=True)), np.asarray(m(q, v)))


def test_mha_in_a_functional_graph_keeps_config_and_build_config():
    layer = layers.MultiHeadAttention(num_heads=2, key_dim=3)
    layer(np.zeros((1, 3, 4), "float32"), np.zeros((1, 5, 6), "float32"))
    cfg = layer.get_build_config()
    clone = layers.MultiHeadAttention.from_config(layer.get_config())
    clone.build_from_config(cfg)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    assert layer.weights[0].path.endswith("query/kernel")


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.Attention(score_mode="cosine"), "score_mode='cosine'"),
        (lambda: layers.Attention(dropout=1.0), "Received: dropout=1.0"),
        (lambda: layers.MultiHeadAttention(0, 3), "Received: num_heads=0"),
        (lambda: layers.MultiHeadAttention(2, -1), "Received: key_dim=-1"),
        (lambda: layers.MultiHeadAttention(2, 3, attention_axes="x"), "attention_axes='x'"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_attention_needs_a_list_of_inputs():
    with pytest.raises(ValueError, match=r"\[query, value\]"):
        layers.Attention()(Q.astype("float32"))
