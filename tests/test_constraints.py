"""Constraints: projections of known matrices, gradients, identifiers."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import constraints as C
from distkeras.backend import Variable, epsilon
from tests.harness import check_grad
from tests.module_harness import (
    assert_config_roundtrip,
    assert_get_resolves,
    assert_unknown_identifier,
    assert_values,
)

# Column norms 5 and 1; row norms 3 and sqrt(17).
W = np.array([[3.0, 0.0], [4.0, 1.0]])
K = np.arange(1.0, 25.0).reshape(2, 3, 4) / 10.0 - 1.2  # a conv-like kernel


def _norms(w, axis):
    return np.sqrt((w**2).sum(axis=axis, keepdims=True))


def _max_norm(w, m, axis):
    n = _norms(w, axis)
    return w * np.clip(n, 0, m) / (epsilon() + n)


def _min_max(w, lo, hi, rate, axis):
    n = _norms(w, axis)
    return w * (rate * np.clip(n, lo, hi) + (1 - rate) * n) / (epsilon() + n)


CASES = [
    ("max_norm_default", C.MaxNorm(), W, W * np.array([2 / (5 + 1e-7), 1 / (1 + 1e-7)])),
    ("max_norm_axis1", C.MaxNorm(3.5, axis=1), W, _max_norm(W, 3.5, 1)),
    ("max_norm_conv", C.MaxNorm(1.5, axis=[0, 1]), K, _max_norm(K, 1.5, (0, 1))),
    ("non_neg", C.NonNeg(), W - 2, np.maximum(W - 2, 0)),
    ("unit_norm", C.UnitNorm(), W, W / (epsilon() + np.array([5.0, 1.0]))),
    ("unit_norm_axis1", C.UnitNorm(axis=1), K, K / (epsilon() + _norms(K, 1))),
    ("min_max_norm", C.MinMaxNorm(2.0, 4.0), W, _min_max(W, 2.0, 4.0, 1.0, 0)),
    ("min_max_rate", C.MinMaxNorm(0.5, 1.5, rate=0.3, axis=1), W, _min_max(W, 0.5, 1.5, 0.3, 1)),
    ("base", C.Constraint(), W, W),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,constraint,w,expected", CASES, ids=IDS)
def test_projection_matches_formula(name, constraint, w, expected):
    assert_values(constraint(w), expected, rtol=1e-12)


def test_max_norm_bounds_norms():
    out = C.MaxNorm(2.0)(W).numpy()
    assert np.all(np.linalg.norm(out, axis=0) <= 2.0)


@pytest.mark.parametrize("name,constraint,w,expected", CASES[:-1], ids=IDS[:-1])
def test_gradients(name, constraint, w, expected):
    check_grad(constraint, w + 0.013)  # off the NonNeg kink at 0


def test_applies_to_variable_in_place():
    v = Variable(W.astype("float32"), constraint=C.get("unit_norm"))
    data = v.data
    v.assign(v.constraint(v))
    assert v.data is data
    np.testing.assert_allclose(np.linalg.norm(v.numpy(), axis=0), [1.0, 1.0], rtol=1e-6)
    assert v.dtype == "float32"


def test_get_resolves_names():
    assert_get_resolves(
        C,
        {
            "max_norm": C.MaxNorm,
            "MaxNorm": C.MaxNorm,
            "non_neg": C.NonNeg,
            "NonNeg": C.NonNeg,
            "unit_norm": C.UnitNorm,
            "UnitNorm": C.UnitNorm,
            "min_max_norm": C.MinMaxNorm,
            "MinMaxNorm": C.MinMaxNorm,
        },
    )
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg


@pytest.mark.parametrize(
    "constraint",
    [C.MaxNorm(3, axis=[0, 1]), C.NonNeg(), C.UnitNorm(axis=1), C.MinMaxNorm(0.1, 2.0, 0.5, 1)],
    ids=lambda v: type(v).__name__,
)
def test_config_roundtrip(constraint):
    new = assert_config_roundtrip(C, constraint)
    assert_values(new(K), constraint(K))


def test_unknown_identifier():
    assert_unknown_identifier(C, "constraint")
