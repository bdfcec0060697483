"""Fused loss primitives: one autodiff node where the composed form takes several.

`sparse_crossentropy` is Keras's sparse categorical crossentropy over the last
axis, from probabilities (renormalise, clip to [eps, 1 - eps], log, pick the
label's entry, negate) or from logits (log-softmax, pick, negate). Composed
from primitives that is seven nodes (three from logits), each with its own
VJP and temporaries, on every training step of every classifier; here it is
one. The forward values and the gradients are computed with the same
floating-point operations, in the same order, as the composed form, so the
results are the same bits (`tests/backend/test_loss_primitives.py` checks
both against the composition and against finite differences).
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply


def _picker(x: Any, labels: Any):
    """`(take, put)` for the label's entry of each row of `x`'s last axis.

    Plain fancy indexing on a `(rows, classes)` view: NumPy's
    `take_along_axis` builds its index grids in Python on every call.
    """
    xp = current_module()
    rows = xp.arange(labels.size)
    flat = labels.reshape(-1)
    shape = (*labels.shape, 1)

    def take(a: Any) -> Any:
        return a.reshape(-1, a.shape[-1])[rows, flat].reshape(shape)

    def put(a: Any, values: Any) -> None:  # `a` is C-contiguous: its reshape is a view
        a.reshape(-1, a.shape[-1])[rows, flat] = values.reshape(-1)

    return take, put


def _sparse_xent_probs(p: Any, labels: Any, eps: float):
    xp = current_module()
    take, put = _picker(p, labels)
    s = p.sum(axis=-1, keepdims=True)
    qt = take(p) / s  # the label's renormalised probability
    qc = xp.clip(qt, eps, 1.0 - eps)
    out = -xp.log(qc)[..., 0]

    def vjp(g, needs):
        # negative -> pick -> log -> clip: the label entry's gradient.
        gq = (-g[..., None]) / qc * ((qt >= eps) & (qt <= 1.0 - eps))
        # p / s: every entry gets the denominator's share, the label entry gq / s too.
        gp = xp.empty(p.shape, dtype=gq.dtype)
        gp[...] = (-gq) * qt / s
        put(gp, gq / s + take(gp))
        return gp, None

    return out, vjp


def _sparse_xent_logits(x: Any, labels: Any):
    xp = current_module()
    take, put = _picker(x, labels)
    shifted = x - x.max(axis=-1, keepdims=True)
    lse = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    out = -(take(shifted) - lse)[..., 0]

    def vjp(g, needs):
        gt = -g[..., None]  # the picked log-probability's gradient
        gx = xp.exp(shifted - lse)
        gx *= -gt
        put(gx, gt + take(gx))
        return gx, None

    return out, vjp


def sparse_crossentropy(output: Any, labels: Any, from_logits: bool, eps: float) -> Tensor:
    """Per-sample crossentropy of integer `labels` against the last axis of `output`.

    Args:
        output: Probabilities (renormalised and clipped to [eps, 1 - eps], as
            Keras does) or logits, shape `(..., classes)`.
        labels: Integer array of shape `output.shape[:-1]`, within [0, classes).
        from_logits: Whether `output` holds logits.
        eps: The clipping epsilon of the probabilities.

    Returns:
        A Tensor of shape `labels.shape`.
    """
    if from_logits:
        return apply(_sparse_xent_logits, output, labels)
    return apply(_sparse_xent_probs, output, labels, eps)
