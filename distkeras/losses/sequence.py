"""Sequence losses: CTC (connectionist temporal classification).

The loss is the fused primitive of `distkeras/backend/ctc.py`, shared with
`ops.ctc_loss`.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module, floatx
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor
from distkeras.backend.ctc import ctc_nll
from distkeras.losses.loss import _SBS, Loss, _BuiltinLoss


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
    steps = xp.full((p[0],), p[1], dtype="int64")
    return apply(ctc_nll, y_pred, labels, (labels != 0).sum(axis=1), steps)


class CTC(_BuiltinLoss):
    """CTC loss (see `ctc`)."""

    def __init__(self, reduction=_SBS, name="ctc", dtype=None):
        self._setup(ctc, locals())

    def get_config(self) -> dict:
        return Loss.get_config(self)
