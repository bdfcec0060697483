"""F-beta and F1 scores, as `keras.metrics.FBetaScore` / `F1Score`.

State: per-class (or pooled, for `average='micro'`) sums of true positives,
false positives, false negatives and label weights, all sum-reducible.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module, epsilon
from distkeras.backend.autodiff import Tensor
from distkeras.metrics.metric import Metric
from distkeras.metrics.reduction_metrics import _array

_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """`(1 + beta^2) * P * R / (beta^2 * P + R)`, per class or averaged.

    Inputs are `(batch, num_classes)`: one-hot or multi-hot labels, and
    probabilities. Without `threshold`, the largest prediction of each row is
    the positive one (a row of zeros stays negative).

    Args:
        average: None (one score per class), 'micro' (counts pooled over
            classes), 'macro' (mean of the class scores) or 'weighted'
            (class scores weighted by their number of true labels).
        beta: Weight of recall relative to precision, a float > 0.
        threshold: Predictions above it are positive, in (0, 1].
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str = "fbeta_score",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if average not in _AVERAGES:
            raise ValueError(
                "Invalid `average` argument value. Expected one of: "
                f"{{None, 'micro', 'macro', 'weighted'}}. Received: average={average!r}"
            )
        if not isinstance(beta, float):
            raise ValueError(
                "Invalid `beta` argument value. It should be a Python float. "
                f"Received: beta={beta!r} of type '{type(beta)}'"
            )
        if beta <= 0.0:
            raise ValueError(
                f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}"
            )
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError(
                    "Invalid `threshold` argument value. It should be a Python float. "
                    f"Received: threshold={threshold!r} of type '{type(threshold)}'"
                )
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError(
                    "Invalid `threshold` argument value. It should verify 0 < threshold <= 1. "
                    f"Received: threshold={threshold}"
                )
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape: tuple, y_pred_shape: tuple) -> None:
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs with shape (batch_size, output_dim). "
                f"Received input shapes: y_pred.shape={y_pred_shape} and "
                f"y_true.shape={y_true_shape}."
            )
        shape = () if self.average == "micro" else (y_pred_shape[-1],)
        self.true_positives = self.add_variable(shape, "zeros", name="true_positives")
        self.false_positives = self.add_variable(shape, "zeros", name="false_positives")
        self.false_negatives = self.add_variable(shape, "zeros", name="false_negatives")
        self.intermediate_weights = self.add_variable(shape, "zeros", name="intermediate_weights")
        self._built = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's (weighted) true positives, false positives and false negatives."""
        xp = current_module()
        y_true = _array(y_true, self.dtype)
        y_pred = _array(y_pred, self.dtype)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            top = xp.max(y_pred, axis=-1, keepdims=True)
            pred = (y_pred >= top) & (xp.abs(y_pred) > 1e-9)
        else:
            pred = y_pred > self.threshold
        pred = pred.astype(self.dtype)
        w = None if sample_weight is None else _array(sample_weight, self.dtype)
        if w is not None and w.ndim == 1:
            w = w[:, None]

        def weighted_sum(values):
            if w is not None:
                values = values * w
            return xp.sum(values, axis=self.axis)

        self.true_positives.assign_add(weighted_sum(pred * y_true))
        self.false_positives.assign_add(weighted_sum(pred * (1 - y_true)))
        self.false_negatives.assign_add(weighted_sum((1 - pred) * y_true))
        self.intermediate_weights.assign_add(weighted_sum(y_true))

    def result(self) -> Tensor:
        xp = current_module()
        if not self._built:
            return Tensor(xp.asarray(0.0, dtype=self.dtype))
        eps = epsilon()
        tp, fp, fn = self.true_positives.data, self.false_positives.data, self.false_negatives.data
        precision = tp / (tp + fp + eps)
        recall = tp / (tp + fn + eps)
        b2 = self.beta**2
        score = precision * recall / (b2 * precision + recall + eps) * (1 + b2)
        if self.average == "weighted":
            iw = self.intermediate_weights.data
            score = xp.sum(score * (iw / (xp.sum(iw) + eps)))
        elif self.average is not None:
            score = xp.mean(score)
        return Tensor(xp.asarray(score, dtype=self.dtype))

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """The F-beta score with `beta = 1`, as `keras.metrics.F1Score`.

    Args:
        average: None, 'micro', 'macro' or 'weighted' (see `FBetaScore`).
        threshold: Predictions above it are positive, in (0, 1].
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str = "f1_score",
        dtype: Any = None,
    ):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["beta"]
        return config
