"""Regression metrics (MSE, MAE, RMSE, MAPE, MSLE, log-cosh, cosine similarity, R2),
as `keras.metrics`."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module, epsilon
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.losses import log_cosh
from distkeras.losses.loss import _l2_normalize
from distkeras.metrics.metric import Metric
from distkeras.metrics.reduction_metrics import (
    Mean,
    MeanMetricWrapper,
    _array,
    squeeze_or_expand_to_same_rank,
)

np_errstate = np.errstate  # host-side guard for 0/0 in result(); CuPy never warns


def _pair(y_true: Any, y_pred: Any) -> tuple[Tensor, Tensor]:
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true, dtype=y_pred.dtype)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """`mean(square(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.square(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """`mean(abs(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.abs(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Tensor:
    """`100 * mean(abs((y_true - y_pred) / max(abs(y_true), eps)), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    diff = ops.abs(
        ops.divide(ops.subtract(y_true, y_pred), ops.maximum(ops.abs(y_true), epsilon()))
    )
    return ops.multiply(100.0, ops.mean(diff, axis=-1))


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Tensor:
    """`mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    first = ops.log(ops.add(ops.maximum(y_pred, epsilon()), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, epsilon()), 1.0))
    return ops.mean(ops.square(ops.subtract(first, second)), axis=-1)


class _RegressionBase(MeanMetricWrapper):
    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredError(_RegressionBase):
    """Mean of the squared error, as `keras.metrics.MeanSquaredError`."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(fn=mean_squared_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsoluteError(_RegressionBase):
    """Mean of the absolute error, as `keras.metrics.MeanAbsoluteError`."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(fn=mean_absolute_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsolutePercentageError(_RegressionBase):
    """Mean absolute percentage error, as `keras.metrics.MeanAbsolutePercentageError`."""

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(fn=mean_absolute_percentage_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanSquaredLogarithmicError(_RegressionBase):
    """Mean squared logarithmic error, as `keras.metrics.MeanSquaredLogarithmicError`."""

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(fn=mean_squared_logarithmic_error, name=name, dtype=dtype)
        self._direction = "down"


class RootMeanSquaredError(Mean):
    """`sqrt` of the (weighted) mean squared error over all samples seen.

    The state is the weighted total of squared errors and the total weight, so
    it stays sum-reducible; the square root is taken in `result()`.
    """

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the squared errors of one batch."""
        y_true = convert_to_tensor(y_true, dtype=self.dtype)
        y_pred = convert_to_tensor(y_pred, dtype=self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        super().update_state(ops.square(ops.subtract(y_pred, y_true)), sample_weight)

    def result(self) -> Tensor:
        return ops.sqrt(super().result())


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Tensor:
    """`sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)` (the loss without the minus)."""
    y_true, y_pred = _pair(y_true, y_pred)
    prod = ops.multiply(_l2_normalize(y_true, axis), _l2_normalize(y_pred, axis))
    return ops.sum(prod, axis=axis)


class LogCoshError(_RegressionBase):
    """Mean of `log(cosh(y_pred - y_true))`, as `keras.metrics.LogCoshError`."""

    def __init__(self, name: str = "logcosh", dtype: Any = None):
        super().__init__(fn=log_cosh, name=name, dtype=dtype)
        self._direction = "down"


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity along `axis`, as `keras.metrics.CosineSimilarity`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        axis: The axis the similarity is computed along.
    """

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1):
        super().__init__(fn=cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


class R2Score(Metric):
    """Coefficient of determination `1 - SS_res / SS_tot`, as `keras.metrics.R2Score`.

    State (per output column, all sums): weighted `y`, weighted `y**2`,
    weighted squared residuals and total weight, plus the number of entries
    seen; `SS_tot = sum(w y^2) - (sum(w y))^2 / sum(w)` is formed in `result()`.

    Args:
        class_aggregation: None (one score per output), 'uniform_average' or
            'variance_weighted_average'.
        num_regressors: Number of independent regressors, for the adjusted
            R2 score (0: plain R2).
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if class_aggregation not in _AGGREGATIONS:
            raise ValueError(
                "Invalid value for argument `class_aggregation`. Expected one of "
                f"{_AGGREGATIONS}. Received: class_aggregation={class_aggregation!r}"
            )
        if num_regressors < 0:
            raise ValueError(
                "Invalid value for argument `num_regressors`. Expected a value >= 0. "
                f"Received: num_regressors={num_regressors}"
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = self.add_variable((), "zeros", name="num_samples")
        self._built = False

    def _build(self, y_true_shape: tuple, y_pred_shape: tuple) -> None:
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(
                "R2Score expects 2D inputs with shape (batch_size, output_dim). Received input "
                f"shapes: y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}."
            )
        n = y_pred_shape[-1]
        self.squared_sum = self.add_variable((n,), "zeros", name="squared_sum")
        self.sum = self.add_variable((n,), "zeros", name="sum")
        self.total_mse = self.add_variable((n,), "zeros", name="residual")
        self.count = self.add_variable((n,), "zeros", name="count")
        self._built = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's weighted sums of `y`, `y**2`, squared residuals and weights."""
        xp = current_module()
        y_true, y_pred = squeeze_or_expand_to_same_rank(
            _array(y_true, self.dtype), _array(y_pred, self.dtype)
        )
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        w = _array(1.0 if sample_weight is None else sample_weight, self.dtype)
        if w.ndim == 1:
            w = w[:, None]
        w = xp.broadcast_to(w, y_true.shape)
        weighted = y_true * w
        self.sum.assign_add(xp.sum(weighted, axis=0))
        self.squared_sum.assign_add(xp.sum(y_true * weighted, axis=0))
        self.total_mse.assign_add(xp.sum((y_true - y_pred) ** 2 * w, axis=0))
        self.count.assign_add(xp.sum(w, axis=0))
        self.num_samples.assign_add(xp.asarray(y_true.size, dtype=self.dtype))

    def result(self) -> Tensor:
        xp = current_module()
        if not self._built:
            return Tensor(xp.asarray(0.0, dtype=self.dtype))
        with np_errstate(divide="ignore", invalid="ignore"):
            mean = self.sum.data / self.count.data
            total = self.squared_sum.data - self.sum.data * mean
            raw = 1 - self.total_mse.data / total
        raw = xp.where(xp.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = xp.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = xp.sum(total * raw) / xp.sum(total)
        else:
            score = raw
        if self.num_regressors != 0:
            n, p = float(self.num_samples.data), float(self.num_regressors)
            if p > n - 1:
                warnings.warn(
                    "More independent predictors than datapoints in adjusted R2 score. "
                    "Falling back to standard R2 score.",
                    stacklevel=2,
                )
            elif p == n - 1:
                warnings.warn(
                    "Division by zero in Adjusted R2 score. Falling back to standard R2 score.",
                    stacklevel=2,
                )
            else:
                score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return Tensor(xp.asarray(score, dtype=self.dtype))

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
