"""Hinge losses: hinge, squared hinge, categorical hinge."""

from __future__ import annotations

from typing import Any

from distkeras import ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.losses.loss import _SBS, _BuiltinLoss, _pair


def _hinge_labels(y_true: Tensor) -> Tensor:
    """Maps {0, 1} labels to {-1, 1}; other labels are returned unchanged."""
    xp = current_module()
    t = y_true.data
    if bool(xp.all((t == 0) | (t == 1))):
        return ops.subtract(ops.multiply(y_true, 2.0), 1.0)
    return y_true


def hinge(y_true: Any, y_pred: Any) -> Tensor:
    """mean(max(1 - y_true * y_pred, 0), axis=-1); {0, 1} labels become {-1, 1}."""
    y_true, y_pred = _pair(y_true, y_pred, "hinge", match_rank=False)
    y_true = _hinge_labels(y_true)
    return ops.mean(ops.relu(ops.subtract(1.0, ops.multiply(y_true, y_pred))), axis=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """mean(max(1 - y_true * y_pred, 0)^2, axis=-1); {0, 1} labels become {-1, 1}."""
    y_true, y_pred = _pair(y_true, y_pred, "squared_hinge", match_rank=False)
    y_true = _hinge_labels(y_true)
    margin = ops.relu(ops.subtract(1.0, ops.multiply(y_true, y_pred)))
    return ops.mean(ops.square(margin), axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, "categorical_hinge", match_rank=False)
    pos = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.relu(ops.add(ops.subtract(neg, pos), 1.0))


class Hinge(_BuiltinLoss):
    """Hinge loss (see `hinge`)."""

    def __init__(self, reduction=_SBS, name="hinge", dtype=None):
        self._setup(hinge, locals())


class SquaredHinge(_BuiltinLoss):
    """Squared hinge loss (see `squared_hinge`)."""

    def __init__(self, reduction=_SBS, name="squared_hinge", dtype=None):
        self._setup(squared_hinge, locals())


class CategoricalHinge(_BuiltinLoss):
    """Categorical hinge loss (see `categorical_hinge`)."""

    def __init__(self, reduction=_SBS, name="categorical_hinge", dtype=None):
        self._setup(categorical_hinge, locals())
