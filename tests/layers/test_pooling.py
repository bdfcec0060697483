"""Pooling layers and ops: shared harness, explicit-loop reference values, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from distkeras import backend, layers, ops
from distkeras.backend import pooling
from tests.harness import check_grad
from tests.layers.harness import run_layer_test


def pool_ref(x, mode, pool, strides, padding):
    """Channels_last pooling by loops; 'same' windows only see real values (TensorFlow)."""
    r = x.ndim - 2
    sp = x.shape[1:-1]
    if padding == "valid":
        out_sp = [(sp[i] - pool[i]) // strides[i] + 1 for i in range(r)]
        lo = [0] * r
    else:
        out_sp = [-(-sp[i] // strides[i]) for i in range(r)]
        lo = [max((out_sp[i] - 1) * strides[i] + pool[i] - sp[i], 0) // 2 for i in range(r)]
    out = np.zeros((x.shape[0], *out_sp, x.shape[-1]))
    for o in itertools.product(*map(range, out_sp)):
        idx = [
            slice(
                max(o[i] * strides[i] - lo[i], 0), min(o[i] * strides[i] - lo[i] + pool[i], sp[i])
            )
            for i in range(r)
        ]
        window = x[(slice(None), *idx)].reshape(x.shape[0], -1, x.shape[-1])
        out[(slice(None), *o)] = window.max(1) if mode == "max" else window.mean(1)
    return out


CF = {"data_format": "channels_first"}
# name, class, kwargs, input shape, expected output shape
CASES = [
    ("max1", layers.MaxPooling1D, {}, (2, 5, 3), (2, 2, 3)),
    (
        "max1_same_s1",
        layers.MaxPooling1D,
        {"pool_size": 3, "strides": 1, "padding": "same"},
        (2, 5, 2),
        (2, 5, 2),
    ),
    ("max2", layers.MaxPooling2D, {}, (2, 4, 5, 2), (2, 2, 2, 2)),
    (
        "max2_overlap",
        layers.MaxPooling2D,
        {"pool_size": 3, "strides": 2},
        (1, 5, 6, 2),
        (1, 2, 2, 2),
    ),
    (
        "max2_same_cf",
        layers.MaxPooling2D,
        {"pool_size": (2, 3), "padding": "same", **CF},
        (1, 2, 5, 5),
        (1, 2, 3, 2),
    ),
    (
        "max3",
        layers.MaxPooling3D,
        {"pool_size": 2, "strides": (1, 2, 2)},
        (1, 3, 4, 4, 2),
        (1, 2, 2, 2, 2),
    ),
    ("max3_same", layers.MaxPooling3D, {"padding": "same"}, (1, 3, 3, 2, 1), (1, 2, 2, 1, 1)),
    ("avg1", layers.AveragePooling1D, {"pool_size": 3, "strides": 2}, (2, 7, 2), (2, 3, 2)),
    (
        "avg1_same_cf",
        layers.AveragePooling1D,
        {"pool_size": 3, "padding": "same", **CF},
        (2, 2, 7),
        (2, 2, 3),
    ),
    ("avg2", layers.AveragePooling2D, {}, (2, 4, 4, 2), (2, 2, 2, 2)),
    (
        "avg2_same_s2",
        layers.AveragePooling2D,
        {"pool_size": 3, "strides": 2, "padding": "same"},
        (1, 5, 4, 2),
        (1, 3, 2, 2),
    ),
    (
        "avg3_cf",
        layers.AveragePooling3D,
        {"pool_size": (2, 2, 1), **CF},
        (1, 2, 2, 4, 3),
        (1, 2, 1, 2, 3),
    ),
    (
        "avg3_same",
        layers.AveragePooling3D,
        {"pool_size": 3, "padding": "same", "strides": 2},
        (1, 3, 4, 2, 1),
        (1, 2, 2, 1, 1),
    ),
    ("gmax1", layers.GlobalMaxPooling1D, {}, (2, 5, 3), (2, 3)),
    ("gmax2_keep", layers.GlobalMaxPooling2D, {"keepdims": True}, (2, 3, 4, 2), (2, 1, 1, 2)),
    ("gmax3_cf", layers.GlobalMaxPooling3D, CF, (1, 2, 2, 3, 2), (1, 2)),
    (
        "gavg1_cf_keep",
        layers.GlobalAveragePooling1D,
        {"keepdims": True, **CF},
        (2, 3, 4),
        (2, 3, 1),
    ),
    ("gavg2", layers.GlobalAveragePooling2D, {}, (2, 3, 4, 2), (2, 2)),
    (
        "gavg3_keep",
        layers.GlobalAveragePooling3D,
        {"keepdims": True},
        (1, 2, 2, 2, 3),
        (1, 1, 1, 1, 3),
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape", CASES, ids=IDS)
def test_pooling_layer_harness(name, cls, kwargs, in_shape, out_shape):
    run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape", CASES, ids=IDS)
def test_pooling_matches_loop_reference(name, cls, kwargs, in_shape, out_shape):
    backend.set_floatx("float64")
    try:
        x = np.random.default_rng(1).normal(size=in_shape)
        layer = cls(**kwargs)
        cf = layer.data_format == "channels_first"
        xl = np.moveaxis(x, 1, -1) if cf else x
        mode = "max" if "Max" in cls.__name__ else "average"
        if "Global" in cls.__name__:
            axes = tuple(range(1, x.ndim - 1))
            fn = np.max if mode == "max" else np.mean
            ref = fn(xl, axis=axes, keepdims=True)
            if not layer.keepdims:
                ref = ref.reshape(x.shape[0], -1)
            elif cf:
                ref = np.moveaxis(ref, -1, 1)
        else:
            ref = pool_ref(xl, mode, layer.pool_size, layer.strides, layer.padding)
            ref = np.moveaxis(ref, -1, 1) if cf else ref
        np.testing.assert_allclose(layer(x).numpy(), ref, rtol=1e-12)
    finally:
        backend.set_floatx("float32")


def test_strides_default_to_pool_size_and_config():
    layer = layers.MaxPooling2D(pool_size=3)
    assert layer.strides == (3, 3)
    cfg = layer.get_config()
    assert cfg["pool_size"] == (3, 3) and cfg["padding"] == "valid"
    assert cfg["data_format"] == "channels_last"
    assert layers.GlobalAveragePooling2D(keepdims=True).get_config()["keepdims"] is True


def test_aliases():
    assert layers.MaxPool2D is layers.MaxPooling2D
    assert layers.AvgPool1D is layers.AveragePooling1D
    assert layers.GlobalMaxPool3D is layers.GlobalMaxPooling3D
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D


def test_max_pool_gradient_goes_to_the_first_maximum():
    from distkeras.backend import GradientTape, Variable

    x = Variable(np.array([[[1.0], [3.0], [3.0], [0.0]]]), dtype="float64")
    with GradientTape() as tape:
        y = ops.max_pool(x, 2, strides=1)  # windows (1,3) (3,3) (3,0)
        total = ops.sum(y)
    # The tie in window 2 sends its gradient to x[1] only.
    np.testing.assert_array_equal(tape.gradient(total, x).numpy().ravel(), [0, 2, 1, 0])


@pytest.mark.parametrize(
    "name,fn",
    [
        ("max_overlap_pad", lambda x: pooling.max_pool(x, (3, 2), (2, 1), ((1, 1), (0, 1)))),
        ("max_disjoint", lambda x: pooling.max_pool(x, (2, 2), (2, 2), ((0, 0), (0, 0)))),
        ("avg_pad", lambda x: pooling.average_pool(x, (3, 2), (2, 2), ((1, 1), (0, 1)))),
    ],
)
def test_pool_primitive_gradients(name, fn):
    check_grad(fn, np.random.default_rng(2).normal(size=(2, 5, 4, 2)))


def test_max_pool_gradient_when_windows_tile_the_input():
    """Disjoint windows covering every value: the backward pass skips zeroing."""
    fn = lambda x: pooling.max_pool(x, (2, 3), (2, 3), ((0, 0), (0, 0)))  # noqa: E731
    check_grad(fn, np.random.default_rng(3).normal(size=(2, 4, 6, 2)))


def test_global_average_pooling_1d_mask():
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)
    mask = np.array([[True, True, False], [True, False, False]])
    layer = layers.GlobalAveragePooling1D()
    out = layer(x, mask=mask).numpy()
    np.testing.assert_allclose(out, [[1.0, 2.0], [6.0, 7.0]])


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (layers.MaxPooling2D, {"padding": "full"}, "padding='full'"),
        (layers.AveragePooling1D, {"pool_size": 0}, "pool_size"),
        (layers.MaxPooling3D, {"pool_size": (2, 2)}, "pool_size"),
        (layers.AveragePooling2D, {"data_format": "NCHW"}, "data_format"),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (layers.MaxPooling2D(), (2, 4, 4)),
        (layers.AveragePooling1D(), (2, 4, 4, 1)),
        (layers.GlobalMaxPooling2D(), (2, 4)),
    ],
)
def test_wrong_input_rank(layer, shape):
    with pytest.raises(ValueError, match="ndim"):
        layer(np.zeros(shape, "float32"))


def test_too_small_input():
    with pytest.raises(ValueError, match="zero or negative"):
        layers.MaxPooling2D(3)(np.zeros((1, 2, 2, 1), "float32"))
