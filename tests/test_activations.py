"""Activations: values against NumPy formulas, gradients, identifiers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distkeras import activations
from distkeras.saving import register_keras_serializable
from tests.harness import check_grad
from tests.module_harness import as_numpy, assert_unknown_identifier, assert_values

# Points away from every kink (0, +-0.5, +-1, +-3, 6, the thresholds below).
X = np.array([[-5.3, -2.7, -1.35, -0.71, -0.23], [0.17, 0.62, 1.41, 2.9, 6.7]])

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1))


def _hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _sparsemax(x):
    """Projection onto the simplex by bisection on tau (independent of the sort formula)."""
    out = np.empty_like(x)
    for i, z in enumerate(x):
        lo, hi = z.min() - 1.0, z.max()
        for _ in range(200):
            tau = (lo + hi) / 2
            lo, hi = (tau, hi) if np.maximum(z - tau, 0).sum() > 1 else (lo, tau)
        out[i] = np.maximum(z - tau, 0)
    return out


def _relu_custom(x, slope=0.1, max_value=2.5, thr=0.4):
    # Keras: max_value above it, x in [threshold, max_value), slope * (x - threshold) below.
    return np.where(x >= max_value, max_value, np.where(x > thr, x, slope * (x - thr)))


# (id, callable on Tensors, NumPy reference)
CASES = [
    ("linear", activations.linear, lambda x: x),
    ("relu", activations.relu, lambda x: np.maximum(x, 0)),
    (
        "relu_custom",
        lambda x: activations.relu(x, negative_slope=0.1, max_value=2.5, threshold=0.4),
        _relu_custom,
    ),
    ("relu_max6", lambda x: activations.relu(x, max_value=6.0), lambda x: np.clip(x, 0, 6)),
    ("relu_max2", lambda x: activations.relu(x, max_value=2.0), lambda x: np.clip(x, 0, 2)),
    ("relu_thr", lambda x: activations.relu(x, threshold=1.0), lambda x: np.where(x > 1, x, 0)),
    (
        "relu_slope",
        lambda x: activations.relu(x, negative_slope=0.1),
        lambda x: np.where(x >= 0, x, 0.1 * x),
    ),
    ("leaky_relu", activations.leaky_relu, lambda x: np.where(x >= 0, x, 0.2 * x)),
    ("relu6", activations.relu6, lambda x: np.clip(x, 0, 6)),
    ("softmax", activations.softmax, _softmax),
    ("softmax_axis0", lambda x: activations.softmax(x, axis=0), lambda x: _softmax(x, 0)),
    ("log_softmax", activations.log_softmax, lambda x: np.log(_softmax(x))),
    ("elu", activations.elu, _elu),
    ("elu_alpha", lambda x: activations.elu(x, alpha=0.5), lambda x: _elu(x, 0.5)),
    ("selu", activations.selu, lambda x: SELU_SCALE * _elu(x, SELU_ALPHA)),
    (
        "celu",
        lambda x: activations.celu(x, alpha=2.0),
        lambda x: np.maximum(x, 0) + 2.0 * (np.exp(np.minimum(x, 0) / 2.0) - 1),
    ),
    ("softplus", activations.softplus, _softplus),
    ("softsign", activations.softsign, lambda x: x / (1 + np.abs(x))),
    ("squareplus", activations.squareplus, lambda x: (x + np.sqrt(x**2 + 4)) / 2),
    (
        "sparse_plus",
        activations.sparse_plus,
        lambda x: np.where(x <= -1, 0, np.where(x < 1, (x + 1) ** 2 / 4, x)),
    ),
    ("silu", activations.silu, lambda x: x * _sig(x)),
    ("swish", activations.swish, lambda x: x * _sig(x)),
    ("gelu", activations.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    (
        "gelu_approx",
        lambda x: activations.gelu(x, approximate=True),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    ("glu", lambda x: activations.glu(x, axis=0), lambda x: x[:1] * _sig(x[1:])),
    ("tanh", activations.tanh, np.tanh),
    ("tanh_shrink", activations.tanh_shrink, lambda x: x - np.tanh(x)),
    ("hard_tanh", activations.hard_tanh, lambda x: np.clip(x, -1, 1)),
    ("hard_shrink", activations.hard_shrink, lambda x: np.where(np.abs(x) > 0.5, x, 0)),
    (
        "soft_shrink",
        activations.soft_shrink,
        lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.5, 0),
    ),
    (
        "threshold",
        lambda x: activations.threshold(x, 0.5, -1.0),
        lambda x: np.where(x > 0.5, x, -1.0),
    ),
    ("sigmoid", activations.sigmoid, _sig),
    ("sparse_sigmoid", activations.sparse_sigmoid, lambda x: np.clip((x + 1) / 2, 0, 1)),
    ("exponential", activations.exponential, np.exp),
    ("hard_sigmoid", activations.hard_sigmoid, _hard_sigmoid),
    ("hard_silu", activations.hard_silu, lambda x: x * _hard_sigmoid(x)),
    ("log_sigmoid", activations.log_sigmoid, lambda x: np.log(_sig(x))),
    ("mish", activations.mish, lambda x: x * np.tanh(_softplus(x))),
    ("sparsemax", activations.sparsemax, _sparsemax),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,ref", CASES, ids=IDS)
def test_values_match_formula(name, fn, ref):
    assert_values(fn(X), ref(X), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name,fn,ref", CASES, ids=IDS)
def test_gradients_match_finite_differences(name, fn, ref):
    check_grad(fn, X)


@pytest.mark.parametrize("name", sorted(activations.ALL_OBJECTS_DICT))
def test_float32_in_float32_out(name):
    fn = activations.get(name)
    x = X.astype("float32")
    out = fn(x, 0.5, -1.0) if name == "threshold" else fn(x if name != "glu" else x.T)
    assert as_numpy(out).dtype == np.float32


def test_erf_series_matches_math_erf():
    z = np.linspace(-7, 7, 281)
    np.testing.assert_allclose(activations._erf_series(z), _erf(z), rtol=0, atol=2e-15)


def test_glu_rejects_odd_axis():
    with pytest.raises(ValueError, match="divisible by 2"):
        activations.glu(np.ones((2, 3)))


@pytest.mark.parametrize("name", sorted(activations.ALL_OBJECTS_DICT))
def test_get_serialize_roundtrip(name):
    fn = activations.get(name)
    assert callable(fn)
    assert activations.get(fn) is fn
    serialized = activations.serialize(fn)
    assert isinstance(serialized, str)
    assert activations.get(serialized) is fn
    assert activations.deserialize(serialized) is fn


def test_aliases_and_none():
    assert activations.get(None) is activations.linear
    assert activations.get("swish") is activations.silu
    assert activations.serialize(activations.swish) == "silu"
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.serialize(activations.relu) == "relu"


def test_get_accepts_serialized_dict():
    config = {
        "module": "distkeras.activations",
        "class_name": "function",
        "config": "tanh",
        "registered_name": "function",
    }
    assert activations.get(config) is activations.tanh


def test_unknown_identifier():
    assert_unknown_identifier(activations, "activation function")


def test_custom_registered_activation_roundtrip():
    @register_keras_serializable(package="TestAct")
    def doubled(x):
        return x * 2.0

    config = activations.serialize(doubled)
    assert isinstance(config, dict)
    assert activations.deserialize(config) is doubled
    assert activations.get("TestAct>doubled") is doubled

    def plain(x):
        return x

    assert activations.deserialize(activations.serialize(plain), {"plain": plain}) is plain
