"""The fused sparse crossentropy node against its composition and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import GradientTape, Variable, epsilon, to_numpy
from distkeras.backend import primitives as P
from distkeras.backend.loss_primitives import sparse_crossentropy
from tests.harness import check_grad


def _composed(output, labels, from_logits):
    """Keras's formula from single primitives (what ops.sparse_categorical_crossentropy was)."""
    if from_logits:
        logp = P.log_softmax(output, axis=-1)
    else:
        eps = epsilon()
        out = P.divide(output, P.sum(output, axis=-1, keepdims=True))
        logp = P.log(P.clip(out, eps, 1.0 - eps))
    picked = P.take_along_axis(logp, labels[..., None], axis=-1)
    return P.negative(P.reshape(picked, tuple(labels.shape)))


def _value_and_grad(fn, x, labels, from_logits, w):
    v = Variable(x)
    with GradientTape() as tape:
        loss = fn(v, labels, from_logits)
        total = ops.sum(ops.multiply(loss, w))
    return to_numpy(loss), to_numpy(tape.gradient(total, v))


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6)])
def test_same_bits_as_the_composition(from_logits, shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape).astype("float32")
    if not from_logits:  # probabilities, some tiny (clipped) and one row not summing to 1
        x = np.abs(x)
        x[0, ..., 0] = 1e-9
        x[1] *= 3.0
    labels = rng.integers(0, shape[-1], shape[:-1])
    labels.flat[0] = 0  # the clipped entry is a label: its gradient is cut by the clip
    w = rng.normal(size=shape[:-1]).astype("float32")
    fused = _value_and_grad(
        lambda v, t, f: sparse_crossentropy(v, t, f, epsilon()), x, labels, from_logits, w
    )
    composed = _value_and_grad(_composed, x, labels, from_logits, w)
    np.testing.assert_array_equal(fused[0], composed[0])
    np.testing.assert_array_equal(fused[1], composed[1])
    assert fused[1].dtype == np.float32


@pytest.mark.parametrize("from_logits", [False, True])
def test_gradient_matches_finite_differences(from_logits):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.05, 1.0, size=(4, 3))
    labels = np.array([0, 2, 1, 2])
    check_grad(lambda v: sparse_crossentropy(v, labels, from_logits, 1e-7), x)


def test_ops_loss_uses_keras_formula():
    # Keras: -log(clip(p_t / sum(p), eps, 1 - eps)); with logits: logsumexp(x) - x_t.
    p = np.array([[0.2, 0.3, 0.5], [2.0, 1.0, 1.0]], dtype="float32")
    t = np.array([2, 0])
    got = to_numpy(ops.sparse_categorical_crossentropy(t, p))
    np.testing.assert_allclose(got, [-np.log(0.5), -np.log(0.5)], rtol=1e-6)
    z = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    got = to_numpy(ops.sparse_categorical_crossentropy([1], z, from_logits=True))
    np.testing.assert_allclose(got, [np.log(np.exp(z).sum()) - 2.0], rtol=1e-6)
