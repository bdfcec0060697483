"""Regularizers: penalty values, gradients, validation, identifiers."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import regularizers as R
from distkeras.backend.autodiff import Tensor
from tests.harness import check_grad
from tests.module_harness import (
    assert_config_roundtrip,
    assert_get_resolves,
    assert_unknown_identifier,
    assert_values,
)

W = np.array([[0.5, -1.5, 2.0], [-0.25, 0.75, -3.0], [1.25, 0.1, -0.6], [0.3, -0.9, 1.7]])


def _orthogonal_ref(w, factor, mode):
    n = w / np.linalg.norm(w, axis=1 if mode == "rows" else 0, keepdims=True)
    prod = n @ n.T if mode == "rows" else n.T @ n
    size = len(prod)
    off = np.abs(prod * (1 - np.eye(size))).sum()
    return factor * 0.5 * off / (size * (size - 1) / 2)


CASES = [
    ("l1_default", R.L1(), 0.01 * np.abs(W).sum()),
    ("l2_default", R.L2(), 0.01 * (W**2).sum()),
    ("l1_fn", R.l1(0.3), 0.3 * np.abs(W).sum()),
    ("l2_fn", R.l2(1e-4), 1e-4 * (W**2).sum()),
    ("l1_l2", R.l1_l2(l1=0.2, l2=0.05), 0.2 * np.abs(W).sum() + 0.05 * (W**2).sum()),
    ("l1l2_only_l2", R.L1L2(l2=0.1), 0.1 * (W**2).sum()),
    ("l1l2_zero", R.L1L2(), 0.0),
    ("ortho_rows", R.OrthogonalRegularizer(0.2, "rows"), _orthogonal_ref(W, 0.2, "rows")),
    ("ortho_cols", R.OrthogonalRegularizer(0.3, "columns"), _orthogonal_ref(W, 0.3, "columns")),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,reg,expected", CASES, ids=IDS)
def test_penalty_matches_formula(name, reg, expected):
    out = reg(W)
    assert isinstance(out, Tensor) and out.shape == ()
    assert_values(out, expected, rtol=1e-12)
    out32 = reg(W.astype("float32"))
    assert out32.dtype == "float32"
    assert_values(out32, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,reg,expected", CASES, ids=IDS)
def test_penalty_gradient(name, reg, expected):
    check_grad(reg, W)


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: R.L1(-1), "l1=-1"),
        (lambda: R.L2(float("nan")), "l2=nan"),
        (lambda: R.L1L2(l1=0.1, l2="a"), "l2='a'"),
        (lambda: R.L1L2(l1=float("inf")), "l1=inf"),
        (lambda: R.OrthogonalRegularizer(factor=-0.1), "factor=-0.1"),
        (lambda: R.OrthogonalRegularizer(mode="diagonal"), "mode='diagonal'"),
    ],
)
def test_invalid_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_orthogonal_needs_rank_2():
    with pytest.raises(ValueError, match="rank 2"):
        R.OrthogonalRegularizer()(np.ones((2, 2, 2)))


def test_none_means_default():
    assert R.L1(None).l1 == 0.01 and R.L2(None).l2 == 0.01
    assert R.L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}


def test_function_aliases_build_instances():
    assert isinstance(R.l1(0.0), R.L1) and R.l1(0.0).l1 == 0.0
    assert isinstance(R.l2(0.5), R.L2)
    assert isinstance(R.l1_l2(l1=0.1, l2=0.1), R.L1L2)


def test_get_resolves_names():
    assert_get_resolves(
        R,
        {
            "l1": R.L1,
            "L1": R.L1,
            "l2": R.L2,
            "L2": R.L2,
            "l1_l2": R.L1L2,
            "L1L2": R.L1L2,
            "orthogonal_regularizer": R.OrthogonalRegularizer,
            "OrthogonalRegularizer": R.OrthogonalRegularizer,
        },
    )


@pytest.mark.parametrize(
    "reg",
    [R.L1(0.2), R.L2(0.003), R.L1L2(0.1, 0.2), R.OrthogonalRegularizer(0.5, "columns")],
    ids=lambda v: type(v).__name__,
)
def test_config_roundtrip(reg):
    new = assert_config_roundtrip(R, reg)
    assert_values(new(W), reg(W))


def test_base_class():
    assert R.Regularizer()(W) == 0.0
    with pytest.raises(NotImplementedError):
        R.Regularizer().get_config()


def test_unknown_identifier():
    assert_unknown_identifier(R, "regularizer")
