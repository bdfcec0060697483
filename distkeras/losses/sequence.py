"""Sequence losses: CTC (connectionist temporal classification).

The loss is one fused primitive: the forward (alpha) recursion gives the
log-likelihood of the labels summed over every alignment, the backward (beta)
recursion the occupancy of each (step, class), and the gradient with respect
to the logits is softmax - occupancy. Both recursions run over the
blank-interleaved labels, vectorized over the batch, one step at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor
from distkeras.losses.loss import _SBS, Loss, _BuiltinLoss


def _logaddexp(xp: Any, *terms: Any) -> Any:
    out = terms[0]
    for t in terms[1:]:
        out = xp.logaddexp(out, t)
    return out


def _shift(xp: Any, a: Any, k: int, fill: float) -> Any:
    """a shifted right by k along the last axis (k < 0: left), `fill` coming in."""
    out = xp.full_like(a, fill)
    if k > 0:
        out[..., k:] = a[..., :-k]
    else:
        out[..., :k] = a[..., -k:]
    return out


def _ctc(logits: Any, labels: Any, label_length: Any, blank: int = 0):
    """Primitive: per-sample CTC negative log-likelihood of (batch, T, K) logits."""
    xp = current_module()
    b, t_max, _ = logits.shape
    n = labels.shape[1]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    logp = shifted - log_z
    ext = xp.full((b, 2 * n + 1), blank, dtype=labels.dtype)  # blank, l1, blank, l2, ...
    ext[:, 1::2] = labels
    skip = xp.zeros(ext.shape, dtype=bool)  # a label may follow the previous label directly
    skip[:, 3::2] = labels[:, 1:] != labels[:, :-1]
    valid = xp.arange(2 * n + 1)[None, :] < (2 * label_length + 1)[:, None]
    emit = xp.take_along_axis(logp, xp.broadcast_to(ext[:, None, :], (b, t_max, ext.shape[1])), 2)
    neg = -xp.inf
    alpha = xp.full((t_max, *ext.shape), neg, dtype=logits.dtype)
    alpha[0, :, 0] = emit[:, 0, 0]
    alpha[0, :, 1] = xp.where(label_length > 0, emit[:, 0, 1], neg) if n else neg
    for t in range(1, t_max):
        a = alpha[t - 1]
        two = xp.where(skip, _shift(xp, a, 2, neg), neg)
        alpha[t] = xp.where(valid, _logaddexp(xp, a, _shift(xp, a, 1, neg), two) + emit[:, t], neg)
    rows = xp.arange(b)
    end = 2 * label_length
    last = alpha[-1, rows, end]
    if n:
        last = xp.logaddexp(last, xp.where(end > 0, alpha[-1, rows, xp.maximum(end - 1, 0)], neg))
    out = -last

    def vjp(g: Any, needs: Any) -> tuple:
        beta = xp.full_like(alpha, neg)
        beta[-1, rows, end] = emit[rows, -1, end]
        if n:
            prev = xp.maximum(end - 1, 0)
            beta[-1, rows, prev] = xp.where(end > 0, emit[rows, -1, prev], beta[-1, rows, prev])
        skip_next = _shift(xp, skip, -2, False)  # may the step from s go to s + 2
        for t in range(t_max - 2, -1, -1):
            nb = beta[t + 1]
            two = xp.where(skip_next, _shift(xp, nb, -2, neg), neg)
            total = _logaddexp(xp, nb, _shift(xp, nb, -1, neg), two) + emit[:, t]
            beta[t] = xp.where(valid, total, neg)
        # Posterior of being in state s at step t (emission counted once).
        with np.errstate(invalid="ignore"):
            occupancy = xp.exp(alpha + beta - emit.transpose(1, 0, 2) + out[None, :, None])
        occupancy = xp.nan_to_num(occupancy.transpose(1, 0, 2))  # (batch, T, S)
        one_hot = xp.eye(logp.shape[-1], dtype=logp.dtype)[ext]  # (batch, S, K)
        per_class = xp.matmul(occupancy, one_hot)
        # No alignment reaches the labels (too few steps): the loss is inf, its gradient 0.
        feasible = xp.isfinite(out)[:, None, None]
        grad = xp.where(feasible, g[:, None, None] * (xp.exp(logp) - per_class), 0.0)
        return (grad.astype(logp.dtype, copy=False), None, None)

    return out, vjp


def ctc(y_true: Any, y_pred: Any) -> Tensor:
    """CTC loss of logits against padded integer labels; class 0 is the blank.

    Args:
        y_true: Integer labels, shape (batch, max_label_length), padded with 0
            (the label length is the number of nonzero entries).
        y_pred: Logits, shape (batch, steps, num_classes), every step used.

    Returns:
        The negative log-likelihood of each sample's labels, shape (batch,): inf
        where the steps cannot hold the labels (Keras returns a large finite
        penalty there instead).
    """
    xp = current_module()
    y_pred = convert_to_tensor(y_pred)
    if y_pred.data.dtype.kind != "f":
        y_pred = Tensor(y_pred.data.astype(floatx()))
    labels = xp.asarray(y_true.data if isinstance(y_true, Tensor) else y_true)
    t, p = tuple(labels.shape), y_pred.shape
    if labels.ndim != 2 or y_pred.ndim != 3 or t[0] != p[0]:
        raise ValueError(
            "Loss `ctc` needs integer labels of shape (batch_size, max_label_length) and logits "
            f"of shape (batch_size, steps, num_classes): y_true shape {t} and y_pred shape {p} "
            f"do not fit. Received: y_true.shape={t}, y_pred.shape={p}"
        )
    labels = labels.astype("int64")
    return apply(_ctc, y_pred, labels, (labels != 0).sum(axis=1))


class CTC(_BuiltinLoss):
    """CTC loss (see `ctc`)."""

    def __init__(self, reduction=_SBS, name="ctc", dtype=None):
        self._setup(ctc, locals())

    def get_config(self) -> dict:
        return Loss.get_config(self)
