"""distkeras/ops/nn_extras.py: forward against NumPy formulas, dtypes, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

R = np.random.default_rng(3)


def _x(*shape, dtype="float32"):
    return (R.normal(size=shape) * 2).astype(dtype)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name -> (op, NumPy formula); elementwise activations on a float32 input.
ELEMENTWISE = {
    "celu": (
        lambda x: ops.celu(x, alpha=0.7),
        lambda x: np.maximum(x, 0) + 0.7 * np.expm1(np.minimum(x, 0) / 0.7),
    ),
    "hard_tanh": (ops.hard_tanh, lambda x: np.clip(x, -1, 1)),
    "hard_shrink": (
        lambda x: ops.hard_shrink(x, 0.8),
        lambda x: np.where(np.abs(x) > 0.8, x, 0),
    ),
    "soft_shrink": (
        lambda x: ops.soft_shrink(x, 0.8),
        lambda x: np.where(x > 0.8, x - 0.8, np.where(x < -0.8, x + 0.8, 0)),
    ),
    "tanh_shrink": (ops.tanh_shrink, lambda x: x - np.tanh(x)),
    "hard_silu": (ops.hard_silu, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    "hard_swish": (ops.hard_swish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    "sparse_plus": (
        ops.sparse_plus,
        lambda x: np.where(x <= -1, 0, np.where(x < 1, (x + 1) ** 2 / 4, x)),
    ),
    "sparse_sigmoid": (
        ops.sparse_sigmoid,
        lambda x: np.where(x <= -1, 0, np.where(x >= 1, 1, (x + 1) / 2)),
    ),
    "squareplus": (lambda x: ops.squareplus(x, b=3), lambda x: (x + np.sqrt(x * x + 3)) / 2),
    "threshold": (
        lambda x: ops.threshold(x, 0.3, -2.0),
        lambda x: np.where(x > 0.3, x, -2.0),
    ),
    "glu": (
        ops.glu,
        lambda x: x[..., :2] * _np_sigmoid(x[..., 2:]),
    ),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_forward_dtype_and_gradient(name):
    op, ref = ELEMENTWISE[name]
    x = _x(5, 4)
    out = op(x)
    assert out.dtype == "float32"
    np.testing.assert_allclose(to_numpy(out), ref(x.astype("float64")), rtol=1e-5, atol=1e-6)
    assert op(x.astype("float64")).dtype == "float64"
    # keep away from the kinks (|x| = 0.3, 0.8, 1, 3) where finite differences straddle them
    xg = np.array([[-3.7, -1.6, -0.55, 0.05], [0.45, 0.95 * 1.3, 1.7, 3.6]])
    check_grad(op, xg)


def test_celu_and_glu_match_keras():
    # recorded from Keras 3.15.1's numpy backend
    got = to_numpy(ops.celu(np.array([-2.0, 0.5], "float32"), 0.5))
    np.testing.assert_allclose(got, [-0.49084216, 0.5], rtol=1e-6)
    x = _x(2, 4, 3)
    np.testing.assert_allclose(
        to_numpy(ops.glu(x, axis=1)), x[:, :2] * _np_sigmoid(x[:, 2:]), rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"Received: x.shape=\(2, 3\) with axis=-1"):
        ops.glu(np.ones((2, 3)))


def test_integer_activation_inputs_become_floats():
    out = ops.hard_tanh(np.array([-3, 0, 2], "int32"))
    assert out.dtype == "float32"
    assert to_numpy(out).tolist() == [-1.0, 0.0, 1.0]


def test_sparsemax_matches_keras_threshold():
    x = np.array([[0.1, 0.2, 0.3, -1.0], [0.3, 1.2, -0.5, 0.9]], "float32")
    # recorded from Keras 3.15.1's numpy backend (which returns float64 here; we keep x's dtype)
    expected = [[0.0, 0.06666664, 0.16666665, 0.0], [0.0, 0.05000007, 0.0, 0.0]]
    out = ops.sparsemax(x)
    assert out.dtype == "float32"
    np.testing.assert_allclose(to_numpy(out), expected, atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(ops.sparsemax(x.T, axis=0)), np.transpose(expected), atol=1e-6
    )
    assert to_numpy(ops.sparsemax(np.array([-1.0, 0.0, 1.0]))).tolist() == [0.0, 0.0, 1.0]


def test_sparsemax_gradient():
    check_grad(ops.sparsemax, np.array([[0.1, 0.25, 0.42, -1.0], [0.3, 1.2, -0.5, 0.9]]))
    check_grad(lambda x: ops.sparsemax(x, axis=0), np.array([[0.1, 0.3], [0.25, 1.2], [0.4, 0.9]]))


def test_multi_hot():
    x = np.array([[0, 4, 4], [1, 2, 5]])
    out = ops.multi_hot(x, 6)
    # recorded from Keras 3.15.1's numpy backend
    expected = [[1, 0, 0, 0, 1, 0], [0, 1, 1, 0, 0, 1]]
    assert out.dtype == "float32" and to_numpy(out).tolist() == expected
    assert ops.multi_hot(x, num_classes=6, dtype="int32").dtype == "int32"
    assert to_numpy(ops.multi_hot([0, 3], 4)).tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="num_classes=None"):
        ops.multi_hot(x)


def test_moments():
    x = _x(3, 4, 5)
    mean, var = ops.moments(x, axes=[0, 2])
    np.testing.assert_allclose(to_numpy(mean), x.mean(axis=(0, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(var), x.var(axis=(0, 2)), rtol=1e-5)
    mean, var = ops.moments(x, axes=1, keepdims=True)
    assert mean.shape == var.shape == (3, 1, 5) and mean.dtype == "float32"
    half_mean, half_var = ops.moments(x.astype("float16"), axes=[0])
    assert half_mean.dtype == half_var.dtype == "float16"
    with pytest.raises(ValueError, match="Received: axes=5"):
        ops.moments(x, axes=5)
    check_grad(lambda a: ops.concatenate(ops.moments(a, axes=[1]), axis=0), _x(2, 3))


def test_batch_normalization():
    x, m, v, o, s = _x(2, 3, 4), _x(3), np.abs(_x(3)), _x(3), _x(3)
    out = ops.batch_normalization(x, m, v, axis=1, offset=o, scale=s, epsilon=1e-2)
    shp = (1, 3, 1)
    ref = (x - m.reshape(shp)) / np.sqrt(v.reshape(shp) + 1e-2) * s.reshape(shp) + o.reshape(shp)
    np.testing.assert_allclose(to_numpy(out), ref, rtol=1e-5, atol=1e-5)
    assert out.dtype == "float32"
    plain = ops.batch_normalization(x, m[:1].repeat(4), v[:1].repeat(4) + 1, axis=-1)
    np.testing.assert_allclose(
        to_numpy(plain), (x - m[0]) / np.sqrt(v[0] + 1 + 1e-3), rtol=1e-5, atol=1e-6
    )
    check_grad(
        lambda *a: ops.batch_normalization(a[0], a[1], a[2], axis=-1, offset=a[3], scale=a[4]),
        _x(2, 3),
        _x(3),
        np.abs(_x(3)) + 0.5,
        _x(3),
        _x(3),
    )


def test_layer_normalization():
    x, g, b = _x(2, 3, 4), _x(4), _x(4)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    ref = (x - mu) / np.sqrt(var + 1e-7) * g + b
    np.testing.assert_allclose(
        to_numpy(ops.layer_normalization(x, g, b)), ref, rtol=1e-4, atol=1e-5
    )
    both = ops.layer_normalization(x, axis=[1, 2], epsilon=0.1)
    mu, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    np.testing.assert_allclose(to_numpy(both), (x - mu) / np.sqrt(var + 0.1), rtol=1e-5, atol=1e-6)
    # recorded from Keras 3.15.1's numpy backend: an int input comes back int
    out = ops.layer_normalization(np.array([[1, 2, 4]], "int32"))
    assert out.dtype == "int32" and to_numpy(out).tolist() == [[-1, 0, 1]]
    assert ops.layer_normalization(x.astype("float16")).dtype == "float16"
    scaled = ops.layer_normalization(x, g, rms_scaling=True)
    np.testing.assert_allclose(
        to_numpy(scaled), x / np.sqrt(x.var(-1, keepdims=True) + 1e-7) * g, rtol=1e-4
    )
    check_grad(lambda *a: ops.layer_normalization(*a, epsilon=1e-3), _x(2, 4), _x(4), _x(4))


def test_rms_normalization():
    x, s = _x(2, 3, 4), _x(4)
    ref = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-7) * s
    np.testing.assert_allclose(to_numpy(ops.rms_normalization(x, s)), ref, rtol=1e-5, atol=1e-6)
    both = ops.rms_normalization(x, axis=(1, 2), epsilon=0.5)
    ref = x / np.sqrt((x * x).mean((1, 2), keepdims=True) + 0.5)
    np.testing.assert_allclose(to_numpy(both), ref, rtol=1e-5, atol=1e-6)
    assert ops.rms_normalization(x.astype("float64")).dtype == "float64"
    check_grad(lambda a, b: ops.rms_normalization(a, b, epsilon=1e-3), _x(2, 4), _x(4))


def test_normalize():
    x = _x(3, 4)
    for order in (1, 2, 3):
        for axis in (-1, 0):
            n = (np.abs(x.astype("float64")) ** order).sum(axis, keepdims=True) ** (1 / order)
            got = to_numpy(ops.normalize(x, axis=axis, order=order))
            np.testing.assert_allclose(got, x / n, rtol=1e-5, atol=1e-6)
    assert to_numpy(ops.normalize(np.zeros((1, 3), "float32"))).tolist() == [[0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="Received: order=0"):
        ops.normalize(x, order=0)
    for order in (1, 2, 3):
        check_grad(lambda a, o=order: ops.normalize(a, order=o), _x(2, 4))


def test_psnr():
    a, b = np.array([0.0, 0.5, 1.0]), np.array([0.1, 0.5, 0.8])
    # recorded from Keras 3.15.1's numpy backend
    np.testing.assert_allclose(float(ops.psnr(a, b, 1.0)), 17.7815125, rtol=1e-7)
    x, y = _x(2, 5), _x(2, 5)
    out = ops.psnr(x, y, 2.0)
    assert out.shape == () and out.dtype == "float32"
    ref = 20 * np.log10(2.0) - 10 * np.log10(np.mean((x - y) ** 2))
    np.testing.assert_allclose(float(out), ref, rtol=1e-5)
    with pytest.raises(ValueError, match="must match"):
        ops.psnr(x, y[:1], 1.0)
    check_grad(lambda p, q: ops.psnr(p, q, 1.5), _x(2, 3), _x(2, 3))


def _np_attention(q, k, v, bias=None, mask=None, scale=None, is_causal=False):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + bias
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep &= mask
    if is_causal:
        keep &= np.tril(np.ones(logits.shape[-2:], bool))
    logits = np.where(keep, logits, -1e30)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", p, v)


def test_dot_product_attention():
    q, k, v = _x(2, 3, 2, 4), _x(2, 5, 2, 4), _x(2, 5, 2, 4)
    mask = R.random((2, 1, 3, 5)) < 0.7
    mask[..., 0] = True
    bias = _x(1, 2, 3, 5)
    for kw in ({}, {"mask": mask, "scale": 0.3}, {"is_causal": True, "bias": bias}):
        out = ops.dot_product_attention(q, k, v, **kw)
        assert out.shape == (2, 3, 2, 4) and out.dtype == "float32"
        ref = _np_attention(q.astype("float64"), k, v, **kw)
        np.testing.assert_allclose(to_numpy(out), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(
        ValueError, match=r"only supports 4D inputs. Received: query.shape=\(2, 2, 4\)"
    ):
        ops.dot_product_attention(q[:, 0], k[:, 0], v[:, 0])
    with pytest.raises(ValueError, match="flash_attention=True"):
        ops.dot_product_attention(q, k, v, flash_attention=True)
    check_grad(
        lambda a, b, c, d: ops.dot_product_attention(a, b, c, bias=d, is_causal=True),
        _x(1, 3, 2, 2),
        _x(1, 3, 2, 2),
        _x(1, 3, 2, 2),
        _x(1, 2, 3, 3),
    )


# ---------------------------------------------------------------- CTC
_CTC_R = np.random.default_rng(1)
CTC_OUT = (_CTC_R.normal(size=(4, 6, 5)) * 2).astype("float32")
CTC_TGT = np.array([[1, 1, 2], [2, 3, 4], [3, 0, 0], [4, 4, 4]], "int32")
CTC_TL = np.array([3, 3, 1, 3], "int32")
CTC_OL = np.array([6, 4, 5, 5], "int32")


def test_ctc_loss_matches_keras():
    # recorded from Keras 3.15.1's numpy backend on these inputs
    out = ops.ctc_loss(CTC_TGT, CTC_OUT, CTC_TL, CTC_OL)
    assert out.dtype == "float32"
    keras_values = [5.78922700881958, 7.897036075592041, 6.30247688293457, 12.168861389160156]
    np.testing.assert_allclose(to_numpy(out), keras_values, rtol=1e-5)
    out = ops.ctc_loss(CTC_TGT, CTC_OUT, CTC_TL, CTC_OL, mask_index=4)
    keras_values = [5.508508205413818, 7.672839164733887, 6.467469215393066, 7.9899702072143555]
    np.testing.assert_allclose(to_numpy(out), keras_values, rtol=1e-5)


def test_ctc_loss_with_full_lengths_is_the_ctc_loss_function():
    from distkeras import losses  # noqa: PLC0415 - the loss sits above ops; only compared

    labels = np.array([[1, 1, 2], [2, 3, 0], [3, 0, 0]])
    logits = _CTC_R.normal(size=(3, 5, 4))
    out = ops.ctc_loss(labels, logits, (labels != 0).sum(1), np.full(3, 5))
    np.testing.assert_allclose(to_numpy(out), to_numpy(losses.ctc(labels, logits)), rtol=1e-12)


def test_ctc_loss_gradient_with_short_outputs_and_blank_index():
    logits = _CTC_R.normal(size=(4, 6, 5))
    check_grad(lambda o: ops.ctc_loss(CTC_TGT, o, CTC_TL, CTC_OL, mask_index=4), logits)
    check_grad(lambda o: ops.ctc_loss(CTC_TGT, o, CTC_TL, CTC_OL), logits)


def test_ctc_loss_infeasible_and_empty():
    # Three repeated labels need five steps: inf (Keras gives a large finite penalty).
    out = to_numpy(ops.ctc_loss(CTC_TGT[3:], CTC_OUT[3:], [3], [4]))
    assert np.isinf(out[0])
    # No label, no steps: probability 1.
    assert to_numpy(ops.ctc_loss(CTC_TGT[:1], CTC_OUT[:1], [0], [0]))[0] == 0.0


def test_ctc_loss_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"Received: output.shape=\(6, 5\)"):
        ops.ctc_loss(CTC_TGT, CTC_OUT[0], CTC_TL, CTC_OL)
    with pytest.raises(ValueError, match=r"Received: output_length.shape=\(3,\)"):
        ops.ctc_loss(CTC_TGT, CTC_OUT, CTC_TL, CTC_OL[:3])
    with pytest.raises(ValueError, match=r"Received: target.shape=\(4,\)"):
        ops.ctc_loss(CTC_TGT[:, 0], CTC_OUT, CTC_TL, CTC_OL)


def test_ctc_greedy_decode_matches_keras():
    # recorded from Keras 3.15.1's numpy backend
    paths, scores = ops.ctc_decode(CTC_OUT, CTC_OL)
    assert paths.dtype == "int32" and scores.dtype == "float32"
    assert to_numpy(paths).tolist() == [
        [[4, 2, 1, 2, 4, -1], [2, 4, -1, -1, -1, -1], [1, 2, 4, -1, -1, -1], [4, 3, -1, -1, -1, -1]]
    ]
    keras_scores = [[-8.286837577819824], [-7.2000508308410645], [-8.073259353637695]]
    np.testing.assert_allclose(to_numpy(scores)[:3], keras_scores, rtol=1e-6)
    paths, _ = ops.ctc_decode(CTC_OUT, CTC_OL, merge_repeated=False, mask_index=2)
    assert to_numpy(paths).tolist() == [
        [[4, 1, 0, 4, -1, -1], [0, 0, 4, -1, -1, -1], [1, 0, 0, 4, -1, -1], [4, 4, 4, 3, 3, -1]]
    ]


def test_ctc_beam_search_decode_matches_keras():
    # recorded from Keras 3.15.1's numpy backend
    paths, scores = ops.ctc_decode(
        CTC_OUT, CTC_OL, strategy="beam_search", beam_width=4, top_paths=3
    )
    assert paths.shape == (3, 4, 6) and paths.dtype == "int32" and scores.dtype == "float32"
    assert to_numpy(paths)[:, 0].tolist() == [
        [4, 1, 2, 4, -1, -1],
        [4, 1, 2, 3, -1, -1],
        [4, 2, 1, 2, 4, -1],
    ]
    assert to_numpy(paths)[0, 1:].tolist() == [
        [3, 4, -1, -1, -1, -1],
        [1, 2, 4, -1, -1, -1],
        [4, 3, -1, -1, -1, -1],
    ]
    np.testing.assert_allclose(
        to_numpy(scores)[0], [-4.017763137817383, -4.025120735168457, -4.43048620223999], rtol=1e-6
    )
    # Fewer distinct paths than asked for: the rest score -inf.
    _, scores = ops.ctc_decode(
        CTC_OUT[:, :2, :2], CTC_OL, strategy="beam_search", beam_width=10, top_paths=4
    )
    np.testing.assert_allclose(
        to_numpy(scores)[0, :2], [-0.2800942659378052, -1.409409761428833], rtol=1e-6
    )
    assert np.all(np.isneginf(to_numpy(scores)[:, 2:]))
    with pytest.raises(ValueError, match="Received: strategy='best'"):
        ops.ctc_decode(CTC_OUT, CTC_OL, strategy="best")


# ---------------------------------------------------------------- rearrange
IMAGES = R.normal(size=(4, 6, 8, 3)).astype("float32")


@pytest.mark.parametrize(
    "pattern, lengths, expected",
    [
        ("b h w c -> b c h w", {}, IMAGES.transpose(0, 3, 1, 2)),
        ("b h w c -> (b h) w c", {}, IMAGES.reshape(24, 8, 3)),
        ("b h w c -> h (b w) c", {}, IMAGES.transpose(1, 0, 2, 3).reshape(6, 32, 3)),
        ("b h w c -> b (c h w)", {}, IMAGES.transpose(0, 3, 1, 2).reshape(4, 144)),
        (
            "b (h1 h) (w1 w) c -> (b h1 w1) h w c",
            {"h1": 2, "w1": 2},
            IMAGES.reshape(4, 2, 3, 2, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(16, 3, 4, 3),
        ),
        (
            "b (h h1) (w w1) c -> b h w (c h1 w1)",
            {"h1": 2, "w1": 2},
            IMAGES.reshape(4, 3, 2, 4, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(4, 3, 4, 12),
        ),
    ],
)
def test_rearrange_matches_numpy(pattern, lengths, expected):
    out = ops.rearrange(IMAGES, pattern, **lengths)
    assert out.dtype == "float32"
    np.testing.assert_array_equal(to_numpy(out), expected)


def test_rearrange_gradient_and_errors():
    check_grad(
        lambda a: ops.rearrange(a, "b (h h1) w -> (w h1) b h", h1=2), R.normal(size=(2, 4, 3))
    )
    with pytest.raises(ValueError, match=r"Received: pattern='a b c -> c b a', tensor.shape"):
        ops.rearrange(IMAGES, "a b c -> c b a")
    with pytest.raises(ValueError, match="same axes on both"):
        ops.rearrange(IMAGES, "a b c d -> a b c")
    with pytest.raises(ValueError, match=r"cannot split an axis of size 6"):
        ops.rearrange(IMAGES, "b (h h1) w c -> b h w c h1", h1=4)
    with pytest.raises(ValueError, match="Received: pattern='b h w c'"):
        ops.rearrange(IMAGES, "b h w c")
