"""Circle and the generalized crossentropy: gradients, masks, references, arguments.

Their values against Keras 3.15.1 for every label shape and sample weight are in
tests/test_loss_parity.py; here what that table does not cover.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from distkeras import losses as L
from tests.harness import check_grad
from tests.loss_cases import FORMULAS
from tests.module_harness import assert_config_roundtrip, assert_values


def _embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


LABELS = np.array([0, 1, 0, 2, 1, 2, 2])


@pytest.mark.parametrize("gamma, margin", [(80.0, 0.4), (4.0, 0.25)])
def test_circle_gradient_matches_finite_differences(gamma, margin):
    loss = L.Circle(gamma=gamma, margin=margin)
    check_grad(lambda p: loss.call(LABELS, p), _embeddings(7, 4, 0), rtol=1e-5, atol=1e-6)


def test_circle_masks_samples_without_a_positive_pair():
    labels = np.array([0, 1, 0, 2, 2])  # label 1 appears once: no positive pair
    p = _embeddings(5, 3, 1)
    values = L.circle(labels, p)
    expected = FORMULAS["circle"](labels.astype(float), p)
    assert_values(values, expected, rtol=1e-10, atol=1e-12)
    assert values.numpy()[1] == 0.0
    assert values._keras_mask.tolist() == [True, False, True, True, True]
    # Keras 3: the mean runs over the samples with a loss, weighted as given.
    sw = np.array([1.0, 5.0, 2.0, 0.5, 1.0])
    got = L.Circle(dtype="float64")(labels, p, sample_weight=sw)
    assert_values(got, (expected * sw).sum() / 4, rtol=1e-10)


def test_circle_against_reference_embeddings():
    p, refs = _embeddings(4, 3, 2), _embeddings(6, 3, 3)
    labels, ref_labels = np.array([0, 1, 2, 1]), np.array([1, 0, 0, 2, 1, 2])
    got = L.circle(labels, p, ref_labels=ref_labels, ref_embeddings=refs, remove_diagonal=False)
    d = np.maximum(1 - p @ refs.T, 0)
    pos = labels[:, None] == ref_labels[None, :]
    pos_w, neg_w = np.maximum((0.4 + d) * pos, 0), np.maximum((1.4 - d) * ~pos, 0)
    lse = [
        np.log(np.where(mask, np.exp(z), 0).sum(1))
        for mask, z in ((pos, -80 * pos_w * (0.4 - d)), (~pos, 80 * neg_w * (0.6 - d)))
    ]
    assert_values(got, np.logaddexp(0, lse[0] + lse[1]), rtol=1e-9)
    with pytest.raises(ValueError, match=re.escape("ref_labels.shape=(5,)")):
        L.circle(labels, p, ref_labels=ref_labels[:5], ref_embeddings=refs)


def test_generalized_crossentropy_gradient_and_limits():
    p = np.random.default_rng(4).uniform(0.05, 0.95, size=(5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    check_grad(lambda x: L.CategoricalGeneralizedCrossEntropy(q=0.7).call(labels, x), p)
    picked = p[np.arange(5), labels]
    assert_values(
        L.categorical_generalized_cross_entropy(labels, p, q=0.7), (1 - picked**0.7) / 0.7
    )
    # q -> 0 approaches the crossentropy -log(p) of the label.
    small_q = L.categorical_generalized_cross_entropy(labels, p, q=1e-6)
    assert_values(small_q, -np.log(picked), rtol=1e-4)
    # Labels outside [0, num_classes) have no class, as Keras's one_hot: p = 0, loss 1/q.
    assert_values(L.categorical_generalized_cross_entropy([3, -1], p[:2], q=0.5), [2.0, 2.0])


@pytest.mark.parametrize("q", [0.0, 1.0, -0.2, 1.5])
def test_generalized_crossentropy_q_must_lie_in_the_open_unit_interval(q):
    with pytest.raises(ValueError, match=re.escape(f"Received: q={q!r}")) as err:
        L.CategoricalGeneralizedCrossEntropy(q=q)
    assert "`q`" in str(err.value)


def test_configs_round_trip():
    for loss in (
        L.Circle(gamma=32.0, margin=0.3, remove_diagonal=False),
        L.CategoricalGeneralizedCrossEntropy(q=0.3),
    ):
        new = assert_config_roundtrip(L, loss)
        assert new.get_config() == loss.get_config()
    assert L.Circle().get_config() == {
        "name": "circle",
        "reduction": "sum_over_batch_size",
        "gamma": 80.0,
        "margin": 0.4,
        "remove_diagonal": True,
    }
