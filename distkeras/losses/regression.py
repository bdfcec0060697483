"""Regression losses: squared, absolute, percentage, logarithmic, cosine, Huber, log-cosh."""

from __future__ import annotations

import math
from typing import Any

from distkeras import ops
from distkeras.backend import epsilon
from distkeras.backend.autodiff import Tensor
from distkeras.losses.loss import _SBS, _BuiltinLoss, _l2_normalize, _pair


def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((y_true - y_pred)^2, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred, "mean_squared_error")
    return ops.mean(ops.square(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean(|y_true - y_pred|, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred, "mean_absolute_error")
    return ops.mean(ops.absolute(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Tensor:
    """100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred, "mean_absolute_percentage_error")
    diff = ops.divide(ops.subtract(y_true, y_pred), ops.maximum(ops.absolute(y_true), epsilon()))
    return ops.multiply(ops.mean(ops.absolute(diff), axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred, "mean_squared_logarithmic_error")
    first = ops.log(ops.add(ops.maximum(y_pred, epsilon()), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, epsilon()), 1.0))
    return ops.mean(ops.square(ops.subtract(first, second)), axis=-1)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Tensor:
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)."""
    y_true, y_pred = _pair(y_true, y_pred, "cosine_similarity")
    prod = ops.multiply(_l2_normalize(y_true, axis), _l2_normalize(y_pred, axis))
    return ops.negative(ops.sum(prod, axis=axis))


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    """mean of 0.5 * e^2 where |e| <= delta, else delta * |e| - 0.5 * delta^2."""
    y_true, y_pred = _pair(y_true, y_pred, "huber")
    error = ops.subtract(y_pred, y_true)
    abs_error = ops.absolute(error)
    quad = ops.multiply(ops.square(error), 0.5)
    lin = ops.subtract(ops.multiply(abs_error, float(delta)), 0.5 * float(delta) ** 2)
    return ops.mean(ops.where(abs_error.data <= delta, quad, lin), axis=-1)


def log_cosh(y_true: Any, y_pred: Any) -> Tensor:
    """mean(log(cosh(y_pred - y_true)), axis=-1), computed stably."""
    y_true, y_pred = _pair(y_true, y_pred, "log_cosh")
    x = ops.subtract(y_pred, y_true)
    logcosh = ops.subtract(ops.add(x, ops.softplus(ops.multiply(x, -2.0))), math.log(2.0))
    return ops.mean(logcosh, axis=-1)


class MeanSquaredError(_BuiltinLoss):
    """Mean of the squared errors (see `mean_squared_error`)."""

    def __init__(self, reduction=_SBS, name="mean_squared_error", dtype=None):
        self._setup(mean_squared_error, locals())


class MeanAbsoluteError(_BuiltinLoss):
    """Mean of the absolute errors (see `mean_absolute_error`)."""

    def __init__(self, reduction=_SBS, name="mean_absolute_error", dtype=None):
        self._setup(mean_absolute_error, locals())


class MeanAbsolutePercentageError(_BuiltinLoss):
    """Mean absolute percentage error (see `mean_absolute_percentage_error`)."""

    def __init__(self, reduction=_SBS, name="mean_absolute_percentage_error", dtype=None):
        self._setup(mean_absolute_percentage_error, locals())


class MeanSquaredLogarithmicError(_BuiltinLoss):
    """Mean squared logarithmic error (see `mean_squared_logarithmic_error`)."""

    def __init__(self, reduction=_SBS, name="mean_squared_logarithmic_error", dtype=None):
        self._setup(mean_squared_logarithmic_error, locals())


class CosineSimilarity(_BuiltinLoss):
    """Negative cosine similarity along `axis` (see `cosine_similarity`)."""

    def __init__(self, axis=-1, reduction=_SBS, name="cosine_similarity", dtype=None):
        self._setup(cosine_similarity, locals())


class Huber(_BuiltinLoss):
    """Huber loss: quadratic within `delta`, linear beyond (see `huber`)."""

    def __init__(self, delta=1.0, reduction=_SBS, name="huber_loss", dtype=None):
        self._setup(huber, locals())


class LogCosh(_BuiltinLoss):
    """Logarithm of the hyperbolic cosine of the error (see `log_cosh`)."""

    def __init__(self, reduction=_SBS, name="log_cosh", dtype=None):
        self._setup(log_cosh, locals())
