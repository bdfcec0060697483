"""Activation layers against their Keras formulas, through the shared harness."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import layers
from tests.layers.harness import run_layer_test

# Values kept away from the kinks (0, thresholds, caps) so finite differences are clean.
X = np.array([[-2.3, -0.7, 0.4, 1.3, 2.6], [3.7, -1.4, 0.9, -0.2, 5.3]])
X3 = np.random.default_rng(0).normal(size=(2, 3, 4))


def _relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    out = np.where(x >= threshold, x, negative_slope * (x - threshold))
    return out if max_value is None else np.where(x >= max_value, max_value, out)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CASES = [
    ("relu", layers.ReLU, {}, X, _relu(X), 0),
    ("relu_cap", layers.ReLU, {"max_value": 3.0}, X, _relu(X, 3.0), 0),
    (
        "relu_leaky_threshold",
        layers.ReLU,
        {"max_value": 5.0, "negative_slope": 0.1, "threshold": 1.0},
        X,
        _relu(X, 5.0, 0.1, 1.0),
        0,
    ),
    ("leaky_relu", layers.LeakyReLU, {}, X, np.where(X >= 0, X, 0.3 * X), 0),
    (
        "leaky_relu_slope",
        layers.LeakyReLU,
        {"negative_slope": 0.05},
        X,
        np.where(X >= 0, X, 0.05 * X),
        0,
    ),
    ("elu", layers.ELU, {}, X, np.where(X > 0, X, np.expm1(X)), 0),
    ("elu_alpha", layers.ELU, {"alpha": 0.5}, X, np.where(X > 0, X, 0.5 * np.expm1(X)), 0),
    ("softmax", layers.Softmax, {}, X, _softmax(X), 0),
    ("softmax_axis", layers.Softmax, {"axis": 1}, X3, _softmax(X3, 1), 0),
    (
        "softmax_axes",
        layers.Softmax,
        {"axis": [1, 2]},
        X3,
        np.exp(X3) / np.exp(X3).sum((1, 2), keepdims=True),
        0,
    ),
    ("prelu_zeros", layers.PReLU, {}, X, np.maximum(X, 0), 1),
    (
        "prelu",
        layers.PReLU,
        {"alpha_initializer": {"class_name": "Constant", "config": {"value": 0.25}}},
        X,
        np.where(X >= 0, X, 0.25 * X),
        1,
    ),
    (
        "prelu_shared",
        layers.PReLU,
        {"alpha_initializer": "ones", "shared_axes": [1]},
        X3,
        X3,
        1,
    ),
]


@pytest.mark.parametrize("name,cls,kwargs,x,expected,n_w", CASES, ids=[c[0] for c in CASES])
def test_activation_layer(name, cls, kwargs, x, expected, n_w):
    run_layer_test(
        cls,
        kwargs,
        input_shape=x.shape,
        input_data=x,
        expected_output_shape=x.shape,
        expected_output=expected,
        expected_num_trainable_weights=n_w,
    )


def test_prelu_alpha_shape_and_learned_slopes():
    layer = layers.PReLU(shared_axes=[1, 2])
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype("float32")
    layer(x)
    assert layer.alpha.shape == (1, 1, 5)
    alpha = np.linspace(0.1, 0.5, 5).reshape(1, 1, 5).astype("float32")
    layer.set_weights([alpha])
    np.testing.assert_allclose(np.asarray(layer(x)), np.where(x >= 0, x, alpha * x), rtol=1e-6)


def test_softmax_mask_zeroes_masked_entries():
    x = np.random.default_rng(2).normal(size=(2, 4)).astype("float32")
    mask = np.array([[1, 1, 0, 1], [0, 0, 0, 1]], bool)
    out = np.asarray(layers.Softmax()(x, mask=mask))
    e = np.where(mask, np.exp(x), 0)
    np.testing.assert_allclose(out, e / e.sum(-1, keepdims=True), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.ReLU(max_value=-1), "Received: max_value=-1"),
        (lambda: layers.ReLU(negative_slope=-0.1), "Received: negative_slope=-0.1"),
        (lambda: layers.ReLU(threshold=-1.0), "Received: threshold=-1.0"),
        (lambda: layers.LeakyReLU(negative_slope=-0.5), "Received: negative_slope=-0.5"),
        (lambda: layers.LeakyReLU(negative_slope=None), "Received: negative_slope=None"),
        (lambda: layers.ELU(alpha="big"), "Received: alpha='big'"),
        (lambda: layers.Softmax(axis="last"), "Received: axis='last'"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_prelu_bad_shared_axes():
    with pytest.raises(ValueError, match="shared_axes"):
        layers.PReLU(shared_axes=[3])(np.zeros((2, 3), "float32"))


def test_leaky_relu_accepts_legacy_alpha():
    with pytest.warns(UserWarning, match="alpha"):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1
