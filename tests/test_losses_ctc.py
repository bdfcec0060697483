"""CTC: values against a brute-force sum over alignments, gradients, padding, bad shapes.

Its values against Keras 3.15.1 through compile are in tests/test_loss_parity.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import distkeras as keras
from distkeras import losses as L
from tests.harness import check_grad
from tests.loss_cases import FORMULAS
from tests.module_harness import assert_config_roundtrip, assert_values

RNG = np.random.default_rng(7)
# Repeated labels (need a blank between), padding, and an empty label sequence.
LABELS = np.array([[1, 1, 2], [2, 3, 0], [3, 0, 0], [0, 0, 0]])
LOGITS = RNG.normal(size=(4, 5, 4)) * 1.5


def test_matches_the_sum_over_every_alignment():
    expected = FORMULAS["ctc"](LABELS, LOGITS)
    assert_values(L.ctc(LABELS, LOGITS), expected, rtol=1e-10, atol=1e-12)
    # The empty sequence is all blanks.
    logp = LOGITS[3] - np.log(np.exp(LOGITS[3]).sum(-1, keepdims=True))
    np.testing.assert_allclose(expected[3], -logp[:, 0].sum(), rtol=1e-12)


def test_gradient_matches_finite_differences():
    check_grad(lambda p: L.ctc(LABELS, p), LOGITS)


def test_float32_logits_give_float32_losses():
    out = L.CTC()(LABELS, LOGITS.astype("float32"))
    assert out.dtype == "float32"
    assert_values(out, FORMULAS["ctc"](LABELS, LOGITS).mean(), rtol=1e-5)


def test_labels_that_do_not_fit_the_steps_give_inf_and_no_gradient():
    labels = np.array([[1, 1, 1], [1, 2, 0]])  # the first needs 5 steps, has 3
    logits = RNG.normal(size=(2, 3, 3))
    out = L.ctc(labels, logits).numpy()
    assert np.isinf(out[0]) and np.isfinite(out[1])
    var = keras.Variable(logits, dtype="float64")
    with keras.backend.GradientTape() as tape:
        total = keras.ops.sum(L.ctc(labels, var)[1:])
    grad = tape.gradient(total, var).numpy()
    assert np.all(np.isfinite(grad)) and np.all(grad[0] == 0)


@pytest.mark.parametrize(
    "y_shape, p_shape", [((4,), (4, 5, 3)), ((4, 2), (4, 5)), ((3, 2), (4, 5, 3))]
)
def test_bad_shapes_name_both(y_shape, p_shape):
    expected = f"Received: y_true.shape={y_shape}, y_pred.shape={p_shape}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        L.ctc(np.ones(y_shape, "int64"), np.zeros(p_shape))


def test_config_round_trip():
    loss = L.CTC(reduction="sum", name="my_ctc")
    assert assert_config_roundtrip(L, loss).get_config() == {
        "name": "my_ctc",
        "reduction": "sum",
    }
