"""Convolution layers and ops: shared harness, explicit-loop reference values, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from distkeras import backend, layers, ops
from distkeras.backend import conv as C
from distkeras.backend import windows
from distkeras.layers.conv_base import BaseConvTranspose
from distkeras.layers.depthwise_base import BaseDepthwiseConv, BaseSeparableConv
from tests.harness import check_grad
from tests.layers.harness import run_layer_test


# ---------------------------------------------------------------- references (explicit loops)
def _same_pads(size, k, s, d):
    keff = d * (k - 1) + 1
    out = -(-size // s)
    total = max((out - 1) * s + keff - size, 0)
    return total // 2, total - total // 2


def conv_ref(x, w, strides, padding, dilation, groups=1):
    """Channels_last cross-correlation written as loops over outputs and kernel taps."""
    r = x.ndim - 2
    ks = w.shape[:r]
    pads = []
    for i in range(r):
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "causal":
            pads.append((dilation[i] * (ks[i] - 1), 0))
        else:
            pads.append(_same_pads(x.shape[1 + i], ks[i], strides[i], dilation[i]))
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    out_sp = [(xp.shape[1 + i] - dilation[i] * (ks[i] - 1) - 1) // strides[i] + 1 for i in range(r)]
    cin, f = x.shape[-1], w.shape[-1]
    cg, fg = cin // groups, f // groups
    out = np.zeros((x.shape[0], *out_sp, f))
    for o in itertools.product(*map(range, out_sp)):
        for k in itertools.product(*map(range, ks)):
            pos = tuple(o[i] * strides[i] + k[i] * dilation[i] for i in range(r))
            v = xp[(slice(None), *pos)]  # (N, Cin)
            for g in range(groups):
                out[(slice(None), *o, slice(g * fg, (g + 1) * fg))] += (
                    v[:, g * cg : (g + 1) * cg] @ w[k][:, g * fg : (g + 1) * fg]
                )
    return out


def conv_transpose_ref(x, w, strides, padding, dilation, out_sp):
    """TensorFlow's definition: the input-gradient of a conv mapping size `out_sp` to `x`."""
    r = x.ndim - 2
    ks = w.shape[:r]
    lo = []
    for i in range(r):
        keff = dilation[i] * (ks[i] - 1) + 1
        total = 0 if padding == "valid" else (x.shape[1 + i] - 1) * strides[i] + keff - out_sp[i]
        lo.append(max(total, 0) // 2)
    out = np.zeros((x.shape[0], *out_sp, w.shape[-2]))
    for i in itertools.product(*map(range, x.shape[1:-1])):
        for k in itertools.product(*map(range, ks)):
            o = tuple(i[a] * strides[a] + k[a] * dilation[a] - lo[a] for a in range(r))
            if all(0 <= o[a] < out_sp[a] for a in range(r)):
                out[(slice(None), *o)] += x[(slice(None), *i)] @ w[k].T
    return out


def _cl(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _cf(y, data_format):
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def layer_reference(layer, x):
    """Expected output of a built convolution layer, from its weights and the loop references."""
    df = layer.data_format
    xl = _cl(x, df)
    r = layer.rank
    if isinstance(layer, BaseSeparableConv):
        dk = layer.depthwise_kernel.numpy()
        c, m = dk.shape[-2:]
        y = conv_ref(
            xl,
            dk.reshape(*dk.shape[:r], 1, c * m),
            layer.strides,
            layer.padding,
            layer.dilation_rate,
            groups=c,
        )
        y = conv_ref(y, layer.pointwise_kernel.numpy(), (1,) * r, "valid", (1,) * r)
    elif isinstance(layer, BaseDepthwiseConv):
        k = layer.kernel.numpy()
        c, m = k.shape[-2:]
        y = conv_ref(
            xl,
            k.reshape(*k.shape[:r], 1, c * m),
            layer.strides,
            layer.padding,
            layer.dilation_rate,
            groups=c,
        )
    elif isinstance(layer, BaseConvTranspose):
        shape = layer.compute_output_shape(xl.shape if df == "channels_last" else x.shape)
        out_sp = shape[1:-1] if df == "channels_last" else shape[2:]
        y = conv_transpose_ref(
            xl, layer.kernel.numpy(), layer.strides, layer.padding, layer.dilation_rate, out_sp
        )
    else:
        y = conv_ref(
            xl,
            layer.kernel.numpy(),
            layer.strides,
            layer.padding,
            layer.dilation_rate,
            layer.groups,
        )
    if layer.use_bias:
        y = y + layer.bias.numpy()
    return _cf(np.asarray(layer.activation(y)), df)


# ---------------------------------------------------------------- the table
CF = {"data_format": "channels_first"}
CASES = [
    # name, class, kwargs, input shape, expected output shape, trainable weights
    (
        "c1_valid_relu",
        layers.Conv1D,
        {"filters": 3, "kernel_size": 3, "activation": "relu"},
        (2, 7, 2),
        (2, 5, 3),
        2,
    ),
    (
        "c2_wide_channels_relu",
        layers.Conv2D,
        {"filters": 2, "kernel_size": 2, "padding": "same", "activation": "relu"},
        (1, 3, 4, 9),
        (1, 3, 4, 2),
        2,
    ),
    (
        "c1_same_s2",
        layers.Conv1D,
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        (2, 7, 2),
        (2, 4, 2),
        2,
    ),
    (
        "c1_causal_d2",
        layers.Conv1D,
        {"filters": 2, "kernel_size": 2, "padding": "causal", "dilation_rate": 2},
        (2, 6, 2),
        (2, 6, 2),
        2,
    ),
    (
        "c1_groups_cf",
        layers.Conv1D,
        {"filters": 4, "kernel_size": 2, "groups": 2, **CF},
        (2, 4, 5),
        (2, 4, 4),
        2,
    ),
    (
        "c2_valid",
        layers.Conv2D,
        {"filters": 3, "kernel_size": (2, 3)},
        (2, 5, 5, 2),
        (2, 4, 3, 3),
        2,
    ),
    (
        "c2_same_s2_nobias",
        layers.Conv2D,
        {"filters": 2, "kernel_size": 3, "strides": (2, 1), "padding": "SAME", "use_bias": False},
        (1, 5, 4, 2),
        (1, 3, 4, 2),
        1,
    ),
    (
        "c2_dilated_same",
        layers.Conv2D,
        {
            "filters": 2,
            "kernel_size": 2,
            "dilation_rate": 2,
            "padding": "same",
            "activation": "tanh",
        },
        (1, 5, 5, 2),
        (1, 5, 5, 2),
        2,
    ),
    (
        "c2_groups",
        layers.Conv2D,
        {"filters": 4, "kernel_size": 2, "groups": 2},
        (2, 3, 3, 4),
        (2, 2, 2, 4),
        2,
    ),
    (
        "c2_cf",
        layers.Conv2D,
        {"filters": 2, "kernel_size": 2, "strides": 2, **CF},
        (2, 3, 5, 4),
        (2, 2, 2, 2),
        2,
    ),
    (
        "c3_same",
        layers.Conv3D,
        {"filters": 2, "kernel_size": 2, "padding": "same"},
        (1, 3, 3, 2, 2),
        (1, 3, 3, 2, 2),
        2,
    ),
    (
        "c3_cf_s2",
        layers.Conv3D,
        {"filters": 2, "kernel_size": (2, 1, 2), "strides": 2, **CF},
        (1, 2, 4, 3, 4),
        (1, 2, 2, 2, 2),
        2,
    ),
    (
        "t1_valid_s2",
        layers.Conv1DTranspose,
        {"filters": 2, "kernel_size": 3, "strides": 2},
        (2, 4, 3),
        (2, 9, 2),
        2,
    ),
    (
        "t1_same_op",
        layers.Conv1DTranspose,
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 0},
        (2, 4, 3),
        (2, 7, 2),
        2,
    ),
    (
        "t2_same_s2",
        layers.Conv2DTranspose,
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        (1, 3, 2, 2),
        (1, 6, 4, 2),
        2,
    ),
    (
        "t2_dilated_cf",
        layers.Conv2DTranspose,
        {"filters": 3, "kernel_size": 2, "dilation_rate": 2, **CF},
        (1, 2, 3, 3),
        (1, 3, 5, 5),
        2,
    ),
    (
        "t2_valid_k_lt_s",
        layers.Conv2DTranspose,
        {"filters": 1, "kernel_size": 2, "strides": 3},
        (1, 2, 2, 2),
        (1, 6, 6, 1),
        2,
    ),
    (
        "t3_same",
        layers.Conv3DTranspose,
        {"filters": 2, "kernel_size": 2, "strides": (2, 1, 1), "padding": "same"},
        (1, 2, 2, 2, 2),
        (1, 4, 2, 2, 2),
        2,
    ),
    (
        "dw1_m2",
        layers.DepthwiseConv1D,
        {"kernel_size": 3, "depth_multiplier": 2},
        (2, 6, 3),
        (2, 4, 6),
        2,
    ),
    (
        "dw2_same_s2",
        layers.DepthwiseConv2D,
        {"kernel_size": 3, "strides": 2, "padding": "same"},
        (1, 5, 4, 3),
        (1, 3, 2, 3),
        2,
    ),
    (
        "dw2_cf_dilated",
        layers.DepthwiseConv2D,
        {"kernel_size": 2, "dilation_rate": 2, "depth_multiplier": 2, **CF},
        (1, 2, 4, 4),
        (1, 4, 2, 2),
        2,
    ),
    (
        "sep1",
        layers.SeparableConv1D,
        {"filters": 3, "kernel_size": 2, "depth_multiplier": 2},
        (2, 5, 2),
        (2, 4, 3),
        3,
    ),
    (
        "sep2_same_cf",
        layers.SeparableConv2D,
        {"filters": 2, "kernel_size": 3, "padding": "same", **CF},
        (1, 2, 4, 3),
        (1, 2, 4, 3),
        3,
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape,n_weights", CASES, ids=IDS)
def test_conv_layer_harness(name, cls, kwargs, in_shape, out_shape, n_weights):
    run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=n_weights,
    )


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape,n_weights", CASES, ids=IDS)
def test_conv_layer_matches_loop_reference(name, cls, kwargs, in_shape, out_shape, n_weights):
    backend.set_floatx("float64")
    try:
        rng = np.random.default_rng(1)
        kw = dict(kwargs)
        kw.setdefault("bias_initializer", "random_normal")
        layer = cls(**kw)
        x = rng.normal(size=in_shape)
        out = layer(x).numpy()
        np.testing.assert_allclose(out, layer_reference(layer, x), rtol=1e-10, atol=1e-10)
    finally:
        backend.set_floatx("float32")


# ---------------------------------------------------------------- ops
def test_ops_conv_matches_reference_and_infers_groups():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 5, 4))
    w = rng.normal(size=(3, 2, 2, 6))  # 4 input channels / 2 per group -> 2 groups
    got = ops.conv(x, w, strides=(1, 2), padding="same").numpy()
    np.testing.assert_allclose(got, conv_ref(x, w, (1, 2), "same", (1, 1), groups=2), atol=1e-12)
    cf = ops.conv(np.moveaxis(x, -1, 1), w, (1, 2), "same", "channels_first").numpy()
    np.testing.assert_allclose(np.moveaxis(cf, 1, -1), got, atol=1e-12)


def test_ops_depthwise_and_separable_compose():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 5, 3))
    dk = rng.normal(size=(2, 2, 3, 2))
    pk = rng.normal(size=(1, 1, 6, 4))
    dw = ops.depthwise_conv(x, dk, 1, "valid").numpy()
    ref = conv_ref(x, dk.reshape(2, 2, 1, 6), (1, 1), "valid", (1, 1), groups=3)
    np.testing.assert_allclose(dw, ref, atol=1e-12)
    sep = ops.separable_conv(x, dk, pk).numpy()
    np.testing.assert_allclose(sep, conv_ref(ref, pk, (1, 1), "valid", (1, 1)), atol=1e-12)


@pytest.mark.parametrize(
    "size,k,s,padding,output_padding,expected",
    [
        (4, 3, 2, "valid", None, 9),  # (i-1)*s + k
        (4, 2, 3, "valid", None, 12),  # (i-1)*s + max(k, s)
        (4, 3, 2, "same", None, 8),  # i*s
        (4, 3, 2, "same", 1, 8),  # (i-1)*s + k%2 + output_padding
        (4, 3, 2, "valid", 1, 10),
    ],
)
def test_conv_transpose_output_length(size, k, s, padding, output_padding, expected):
    x = np.ones((1, size, 1))
    w = np.ones((k, 1, 1))
    out = ops.conv_transpose(x, w, s, padding, output_padding)
    assert out.shape == (1, expected, 1)


# Finite-difference checks of every new primitive, on tiny shapes.
PRIMITIVE_CASES = [
    (
        "conv_groups_pad",
        lambda x, w: C.conv(x, w, None, (2, 1), ((1, 1), (0, 1)), (1, 1), 2),
        [(2, 4, 3, 4), (2, 2, 2, 2)],
    ),
    (
        "conv_bias_dilated",
        lambda x, w, b: C.conv(x, w, b, (1,), ((2, 0),), (2,), 1),
        [(2, 5, 2), (2, 2, 3), (3,)],
    ),
    (
        "conv_transpose",
        lambda x, w, b: C.conv_transpose(x, w, b, (2, 1), (1, 2), (1, 0), (5, 4)),
        [(1, 2, 2, 2), (3, 2, 3, 2), (3,)],
    ),
    ("patches", lambda x: C.extract_patches(x, (2, 2), (1, 2), ((1, 0), (0, 1))), [(1, 3, 4, 2)]),
]


@pytest.mark.parametrize("name,fn,shapes", PRIMITIVE_CASES, ids=[c[0] for c in PRIMITIVE_CASES])
def test_primitive_gradients(name, fn, shapes):
    rng = np.random.default_rng(4)
    check_grad(fn, *[rng.normal(size=s) for s in shapes])


@pytest.mark.parametrize("strides,dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2))])
def test_input_gradient_one_gemm_per_kernel_position(monkeypatch, strides, dilation):
    """The many-channel input gradient (one GEMM per position) against finite differences."""
    monkeypatch.setattr(C, "_PER_POSITION_CHANNELS", 1)
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(2, 5, 6, 3)), rng.normal(size=(2, 3, 3, 4)), rng.normal(size=4)
    check_grad(lambda x, w, b: C.conv(x, w, b, strides, ((1, 0), (1, 1)), dilation, 1), x, w, b)


def test_first_layer_needs_no_input_gradient():
    """With a constant input, the conv VJP is asked only for the kernel gradient."""
    x = np.random.default_rng(5).normal(size=(1, 4, 4, 1))
    out, vjp = C._conv(
        x,
        np.ones((2, 2, 1, 2)),
        None,
        strides=(1, 1),
        pads=((0, 0), (0, 0)),
        dilation=(1, 1),
        groups=1,
    )
    gx, gw, _ = vjp(np.ones_like(out), (False, True, False))
    assert gx is None and gw.shape == (2, 2, 1, 2)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (layers.Conv2D, {"filters": 0, "kernel_size": 3}, "Received: filters=0"),
        (layers.Conv1D, {"filters": -3, "kernel_size": 3}, "Received: filters=-3"),
        (layers.Conv2DTranspose, {"filters": 0, "kernel_size": 2}, "filters=0"),
        (layers.SeparableConv2D, {"filters": 0, "kernel_size": 2}, "filters=0"),
        (layers.Conv2D, {"filters": 2, "kernel_size": 3, "padding": "full"}, "padding='full'"),
        (layers.Conv2D, {"filters": 2, "kernel_size": 3, "padding": "causal"}, "causal"),
        (layers.Conv2D, {"filters": 2, "kernel_size": 0}, "kernel_size"),
        (layers.Conv2D, {"filters": 2, "kernel_size": (1, 2, 3)}, "kernel_size"),
        (layers.Conv2D, {"filters": 3, "kernel_size": 2, "groups": 2}, "groups=2"),
        (
            layers.Conv2D,
            {"filters": 2, "kernel_size": 2, "strides": 2, "dilation_rate": 2},
            "dilation_rate",
        ),
        (layers.Conv2D, {"filters": 2, "kernel_size": 2, "data_format": "NHWC"}, "data_format"),
        (
            layers.Conv2DTranspose,
            {"filters": 2, "kernel_size": 2, "strides": 2, "output_padding": 2},
            "output_padding",
        ),
        (layers.DepthwiseConv2D, {"kernel_size": 2, "depth_multiplier": 0}, "depth_multiplier=0"),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (layers.Conv2D(2, 2), (2, 5, 5)),
        (layers.Conv1D(2, 2), (2, 5, 5, 1)),
        (layers.Conv3DTranspose(2, 2), (2, 3, 3, 3)),
        (layers.DepthwiseConv1D(2), (2, 3)),
    ],
)
def test_wrong_input_rank(layer, shape):
    with pytest.raises(ValueError, match="rank|ndim"):
        layer(np.zeros(shape, "float32"))


def test_channels_and_size_errors():
    with pytest.raises(ValueError, match="groups"):
        layers.Conv2D(4, 2, groups=2)(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="zero or negative"):
        layers.Conv2D(2, 5)(np.zeros((1, 4, 4, 1), "float32"))
    layer = layers.Conv2D(2, 2)
    layer(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="axis -1"):
        layer(np.zeros((1, 4, 4, 2), "float32"))


def test_keras_config_keys_and_aliases():
    cfg = layers.Conv2D(4, 3).get_config()
    for key in (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "groups",
        "activation",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
    ):
        assert key in cfg
    assert cfg["kernel_size"] == (3, 3) and cfg["strides"] == (1, 1)
    assert cfg["data_format"] == "channels_last" and cfg["padding"] == "valid"
    assert layers.Convolution2D is layers.Conv2D
    assert layers.SeparableConvolution1D is layers.SeparableConv1D
    assert (
        layers.deserialize(
            {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3}}
        ).filters
        == 2
    )


def test_threaded_chunks_match_one_thread(monkeypatch):
    """The batch-chunked threaded loops give the same values and gradients as one thread."""
    from distkeras.backend import GradientTape, Variable

    rng = np.random.default_rng(6)
    x0 = rng.normal(size=(5, 6, 6, 9))
    w0 = rng.normal(size=(3, 3, 9, 4))
    b0 = rng.normal(size=(4,))
    wt0 = rng.normal(size=(2, 2, 3, 4))

    def run():
        x, w, b, wt = (Variable(a, dtype="float64") for a in (x0, w0, b0, wt0))
        with GradientTape() as tape:
            y = ops.fused_conv(x, w, b, padding="same", activation="relu")
            y = ops.max_pool(y, 3, strides=2, padding="same")
            y = ops.conv_transpose(y, wt, strides=2)
            y = ops.average_pool(y, 2, strides=1, padding="same")
            total = ops.sum(ops.multiply(y, y))
        return [y.numpy(), *(g.numpy() for g in tape.gradient(total, [x, w, b, wt]))]

    C.set_threads(1)
    serial = run()
    monkeypatch.setattr(windows, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(C, "_CHUNK_BYTES", 1)  # one batch row per fused-conv chunk
    try:
        C.set_threads(3)
        threaded = run()
    finally:
        C.set_threads(None)
    for a, b in zip(serial, threaded):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # The same chunks on one thread: bitwise equal, whichever thread took which chunk.
    try:
        C.set_threads(1)
        one = run()
    finally:
        C.set_threads(None)
    for a, b in zip(one, threaded):
        np.testing.assert_array_equal(a, b)


def test_set_threads_rejects_bad_values():
    with pytest.raises(ValueError, match="n=0"):
        C.set_threads(0)
