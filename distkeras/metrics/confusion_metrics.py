"""Thresholded confusion metrics, as `keras.metrics`: TruePositives, TrueNegatives,
FalsePositives, FalseNegatives, Precision, Recall.

The state is a count of (weighted) samples per threshold, so summing the
states of ranks that saw disjoint data is exact.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend.autodiff import Tensor
from distkeras.metrics import metrics_utils
from distkeras.metrics.metric import Metric


def _scalar_or_vector(values: Any, n: int) -> Tensor:
    return Tensor(values[0].copy() if n == 1 else values.copy())


class _ConfusionMatrixConditionCount(Metric):
    """Counts one confusion condition at each threshold.

    Args:
        thresholds: A float or list of floats in [0, 1]; a prediction above a
            threshold counts as positive. Defaults to 0.5.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    _condition = ""

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = metrics_utils.parse_init_thresholds(thresholds, default_threshold=0.5)
        self.accumulator = self.add_variable((len(self.thresholds),), "zeros", name="accumulator")
        self._direction = "up" if self._condition.startswith("true") else "down"

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's (weighted) count of the condition at each threshold."""
        metrics_utils.update_confusion_matrix_variables(
            {self._condition: self.accumulator},
            y_true,
            y_pred,
            thresholds=self.thresholds,
            sample_weight=sample_weight,
        )

    def result(self) -> Tensor:
        return _scalar_or_vector(self.accumulator.data, len(self.thresholds))

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """The (weighted) number of true positives, as `keras.metrics.TruePositives`."""

    _condition = "true_positives"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)


class TrueNegatives(_ConfusionMatrixConditionCount):
    """The (weighted) number of true negatives, as `keras.metrics.TrueNegatives`."""

    _condition = "true_negatives"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)


class FalsePositives(_ConfusionMatrixConditionCount):
    """The (weighted) number of false positives, as `keras.metrics.FalsePositives`."""

    _condition = "false_positives"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)


class FalseNegatives(_ConfusionMatrixConditionCount):
    """The (weighted) number of false negatives, as `keras.metrics.FalseNegatives`."""

    _condition = "false_negatives"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)


def _check_top_k(top_k: Any) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(
            f"Invalid value for argument `top_k`. Expected an integer >= 1. Received: top_k={top_k}"
        )


class _PrecisionRecallBase(Metric):
    _second = ""

    def __init__(
        self,
        thresholds: Any = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        _check_top_k(top_k)
        self._direction = "up"
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else metrics_utils.NEG_INF
        self.thresholds = metrics_utils.parse_init_thresholds(thresholds, default)
        n = len(self.thresholds)
        self.true_positives = self.add_variable((n,), "zeros", name="true_positives")
        self._other = self.add_variable((n,), "zeros", name=self._second)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's (weighted) counts at each threshold."""
        metrics_utils.update_confusion_matrix_variables(
            {"true_positives": self.true_positives, self._second: self._other},
            y_true,
            y_pred,
            thresholds=self.thresholds,
            top_k=self.top_k,
            class_id=self.class_id,
            sample_weight=sample_weight,
        )

    def result(self) -> Tensor:
        tp = self.true_positives.data
        value = metrics_utils.divide_no_nan(tp, tp + self._other.data)
        return _scalar_or_vector(value, len(self.thresholds))

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_PrecisionRecallBase):
    """`tp / (tp + fp)` over all samples seen, as `keras.metrics.Precision`.

    Args:
        thresholds: A float or list of floats in [0, 1] (one result per
            threshold). Defaults to 0.5, or to "the top k" with `top_k`.
        top_k: Only the `top_k` largest predictions of each row count as positive.
        class_id: Only this class (column of the last axis) is considered.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    _second = "false_positives"

    @property
    def false_positives(self):
        """Per-threshold count of false positives."""
        return self._other


class Recall(_PrecisionRecallBase):
    """`tp / (tp + fn)` over all samples seen, as `keras.metrics.Recall`.

    Args:
        thresholds: A float or list of floats in [0, 1] (one result per
            threshold). Defaults to 0.5, or to "the top k" with `top_k`.
        top_k: Only the `top_k` largest predictions of each row count as positive.
        class_id: Only this class (column of the last axis) is considered.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    _second = "false_negatives"

    @property
    def false_negatives(self):
        """Per-threshold count of false negatives."""
        return self._other
