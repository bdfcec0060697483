"""LocallyConnected1D/2D (Keras 2.15 semantics): harness, loop reference, weight layout, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from distkeras import backend, layers
from tests.layers.harness import run_layer_test

CF = {"data_format": "channels_first"}
# name, class, kwargs, input shape, expected output shape
CASES = [
    ("lc1", layers.LocallyConnected1D, {"filters": 2, "kernel_size": 2}, (2, 5, 3), (2, 4, 2)),
    (
        "lc1_s2_cf",
        layers.LocallyConnected1D,
        {"filters": 2, "kernel_size": 3, "strides": 2, **CF},
        (2, 2, 7),
        (2, 2, 3),
    ),
    (
        "lc1_same_impl2",
        layers.LocallyConnected1D,
        {"filters": 1, "kernel_size": 2, "padding": "same", "implementation": 2},
        (1, 5, 2),
        (1, 5, 1),
    ),
    (
        "lc2",
        layers.LocallyConnected2D,
        {"filters": 2, "kernel_size": 2, "activation": "tanh"},
        (2, 3, 4, 2),
        (2, 2, 3, 2),
    ),
    (
        "lc2_s2_nobias",
        layers.LocallyConnected2D,
        {"filters": 3, "kernel_size": (2, 1), "strides": 2, "use_bias": False},
        (1, 4, 3, 2),
        (1, 2, 2, 3),
    ),
    (
        "lc2_cf",
        layers.LocallyConnected2D,
        {"filters": 2, "kernel_size": 2, **CF},
        (1, 2, 3, 3),
        (1, 2, 2, 2),
    ),
    (
        "lc2_same_impl3",
        layers.LocallyConnected2D,
        {"filters": 1, "kernel_size": 3, "padding": "same", "strides": 2, "implementation": 3},
        (1, 4, 3, 1),
        (1, 2, 2, 1),
    ),
]
IDS = [c[0] for c in CASES]


def lc_ref(layer, x):
    """Keras 2.15's local_conv: one matrix per output position applied to its flattened window."""
    cf = layer.data_format == "channels_first"
    xl = np.moveaxis(x, 1, -1) if cf else x
    r = layer.rank
    sp = xl.shape[1:-1]
    ks, st = layer.kernel_size, layer.strides
    if layer.padding == "valid":
        out_sp, lo = [(sp[i] - ks[i]) // st[i] + 1 for i in range(r)], [0] * r
    else:
        out_sp, lo = [-(-sp[i] // st[i]) for i in range(r)], [k // 2 for k in ks]
    big = [max((out_sp[i] - 1) * st[i] + ks[i], sp[i] + lo[i]) for i in range(r)]
    xp = np.zeros((xl.shape[0], *big, xl.shape[-1]))
    xp[(slice(None), *(slice(lo[i], lo[i] + sp[i]) for i in range(r)))] = xl
    kernel = layer.kernel.numpy()
    out = np.zeros((x.shape[0], *out_sp, layer.filters))
    for p, o in enumerate(itertools.product(*map(range, out_sp))):
        win = xp[(slice(None), *(slice(o[i] * st[i], o[i] * st[i] + ks[i]) for i in range(r)))]
        if cf:  # Keras 2.15 flattens channels_first windows as (channels, *kernel_size)
            win = np.moveaxis(win, -1, 1)
        out[(slice(None), *o)] = win.reshape(x.shape[0], -1) @ kernel[p]
    if cf:
        out = np.moveaxis(out, -1, 1)
    if layer.use_bias:
        b = layer.bias.numpy()
        out = out + (b.reshape(b.shape[-1], *b.shape[:-1]) if cf else b)
    return np.asarray(layer.activation(out))


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape", CASES, ids=IDS)
def test_locally_connected_harness(name, cls, kwargs, in_shape, out_shape):
    layer = run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=2 if kwargs.get("use_bias", True) else 1,
    )
    out_sp = out_shape[1:-1] if layer.data_format == "channels_last" else out_shape[2:]
    channels = in_shape[-1] if layer.data_format == "channels_last" else in_shape[1]
    assert layer.kernel.shape == (
        int(np.prod(out_sp)),
        int(np.prod(layer.kernel_size)) * channels,
        layer.filters,
    )
    if layer.use_bias:
        assert layer.bias.shape == (*out_sp, layer.filters)


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape", CASES, ids=IDS)
def test_locally_connected_matches_loop_reference(name, cls, kwargs, in_shape, out_shape):
    backend.set_floatx("float64")
    try:
        x = np.random.default_rng(1).normal(size=in_shape)
        layer = cls(**kwargs, bias_initializer="random_normal")
        np.testing.assert_allclose(layer(x).numpy(), lc_ref(layer, x), rtol=1e-10, atol=1e-12)
    finally:
        backend.set_floatx("float32")


def test_weights_are_unshared():
    """Changing the filters of one output position changes only that position."""
    layer = layers.LocallyConnected1D(1, 2, use_bias=False, kernel_initializer="ones")
    x = np.ones((1, 4, 1), "float32")
    base = layer(x).numpy().ravel()
    k = layer.kernel.numpy()
    k[1] *= 3
    layer.kernel.assign(k)
    np.testing.assert_allclose(layer(x).numpy().ravel(), base * [1, 3, 1])


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (layers.LocallyConnected2D, {"filters": 0, "kernel_size": 2}, "filters=0"),
        (
            layers.LocallyConnected1D,
            {"filters": 2, "kernel_size": 2, "padding": "same"},
            "implementation is 1",
        ),
        (
            layers.LocallyConnected1D,
            {"filters": 2, "kernel_size": 2, "padding": "full", "implementation": 2},
            "padding='full'",
        ),
        (
            layers.LocallyConnected2D,
            {"filters": 2, "kernel_size": 2, "implementation": 4},
            "implementation=4",
        ),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_wrong_rank_and_undefined_spatial_shape():
    with pytest.raises(ValueError, match="ndim"):
        layers.LocallyConnected2D(2, 2)(np.zeros((1, 4, 4), "float32"))
    with pytest.raises(ValueError, match="fully-defined"):
        layers.LocallyConnected1D(2, 2).build((None, None, 3))
