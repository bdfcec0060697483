"""Segmentation losses: Dice and Tversky."""

from __future__ import annotations

from typing import Any

from distkeras import ops
from distkeras.backend import epsilon
from distkeras.backend.autodiff import Tensor
from distkeras.losses.loss import _SBS, _BuiltinLoss, _pair


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Tensor:
    """1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps) over `axis`."""
    y_true, y_pred = _pair(y_true, y_pred, "dice", match_rank=False)
    inter = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    denom = ops.add(ops.add(ops.sum(y_true, axis=axis), ops.sum(y_pred, axis=axis)), epsilon())
    return ops.subtract(1.0, ops.divide(ops.multiply(inter, 2.0), denom))


def tversky(y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis=None) -> Tensor:
    """1 - TP / (TP + alpha * FP + beta * FN + eps), sums taken over `axis`."""
    y_true, y_pred = _pair(y_true, y_pred, "tversky", match_rank=False)
    tp = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    fp = ops.sum(ops.multiply(ops.subtract(1.0, y_pred), y_true), axis=axis)
    fn = ops.sum(ops.multiply(y_pred, ops.subtract(1.0, y_true)), axis=axis)
    denom = ops.add(
        ops.add(ops.add(tp, ops.multiply(fp, alpha)), ops.multiply(fn, beta)), epsilon()
    )
    return ops.subtract(1.0, ops.divide(tp, denom))


class Dice(_BuiltinLoss):
    """Dice loss (see `dice`)."""

    def __init__(self, reduction=_SBS, name="dice", axis=None, dtype=None):
        self._setup(dice, locals())


class Tversky(_BuiltinLoss):
    """Tversky loss (see `tversky`)."""

    def __init__(self, alpha=0.5, beta=0.5, reduction=_SBS, name="tversky", axis=None, dtype=None):
        self._setup(tversky, locals())
