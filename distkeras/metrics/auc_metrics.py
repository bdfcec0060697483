"""AUC (ROC and PR), as `keras.metrics.AUC`.

The state is four confusion counts per threshold (true/false positives and
negatives), sums over the samples seen, so the AUC of data-parallel ranks
whose states are summed equals the AUC of one process that saw all the data.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module, epsilon
from distkeras.backend.autodiff import Tensor
from distkeras.metrics import metrics_utils
from distkeras.metrics.metric import Metric
from distkeras.metrics.reduction_metrics import _array

_CURVES = {"roc": "ROC", "pr": "PR"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


def _parse_curve(curve: Any) -> str:
    key = str(curve).lower() if isinstance(curve, str) else None
    if key not in _CURVES:
        raise ValueError(
            f"Invalid value for argument `curve`. Expected one of ['ROC', 'PR']. "
            f"Received: curve={curve!r}"
        )
    return _CURVES[key]


def _parse_summation(method: Any) -> str:
    key = method.lower() if isinstance(method, str) else None
    if key not in _SUMMATIONS:
        raise ValueError(
            f"Invalid value for argument `summation_method`. Expected one of {list(_SUMMATIONS)}. "
            f"Received: summation_method={method!r}"
        )
    return key


class AUC(Metric):
    """Area under the ROC or precision-recall curve, by a Riemann sum over thresholds.

    Args:
        num_thresholds: Number of thresholds (> 1) spread evenly over [0, 1];
            the first is just below 0 and the last just above 1.
        curve: 'ROC' or 'PR'.
        summation_method: 'interpolation' (trapezoids for ROC, Davis &
            Goadrich's interpolation for PR), 'minoring' or 'majoring'.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        thresholds: Explicit thresholds in [0, 1] (overrides `num_thresholds`).
        multi_label: Keep counts per label (last axis) and average the
            per-label AUCs, instead of pooling all entries.
        num_labels: Number of labels with `multi_label` (else taken from the
            first batch).
        label_weights: Per-label weights: of the per-label AUCs with
            `multi_label`, of the pooled entries without.
        from_logits: Whether predictions are logits (a sigmoid is applied).
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self.curve = _parse_curve(curve)
        self.summation_method = _parse_summation(summation_method)
        if thresholds is not None:
            interior = sorted(metrics_utils.parse_init_thresholds(thresholds))
            self.num_thresholds = len(interior) + 2
        else:
            if (
                isinstance(num_thresholds, bool)
                or not isinstance(num_thresholds, int)
                or (num_thresholds <= 1)
            ):
                raise ValueError(
                    "Argument `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = num_thresholds
            interior = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self._thresholds = [0.0 - epsilon(), *interior, 1.0 + epsilon()]
        if label_weights is not None:
            lw = [float(w) for w in _array(label_weights, "float64").reshape(-1).tolist()]
            if any(w < 0 for w in lw):
                raise ValueError(
                    "All values of `label_weights` must be non-negative. "
                    f"Received: label_weights={label_weights!r}"
                )
            self.label_weights = lw
        else:
            self.label_weights = None
        if num_labels is not None and (not isinstance(num_labels, int) or num_labels < 1):
            raise ValueError(
                "Argument `num_labels` must be a positive integer. "
                f"Received: num_labels={num_labels}"
            )
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        self._from_logits = bool(from_logits)
        self._built = False
        if self.multi_label:
            if num_labels is not None:
                self._build((None, num_labels))
        else:
            if num_labels is not None:
                raise ValueError(
                    "`num_labels` is needed only when `multi_label` is True. "
                    f"Received: num_labels={num_labels}"
                )
            self._build(None)

    @property
    def thresholds(self) -> list[float]:
        """The thresholds, including the two just outside [0, 1]."""
        return list(self._thresholds)

    def _build(self, shape: Any) -> None:
        if self.multi_label:
            if shape is None or len(shape) != 2:
                raise ValueError(
                    "`y_pred` must have rank 2 when `multi_label=True`. "
                    f"Found rank {None if shape is None else len(shape)}. "
                    f"Full shape received for `y_pred`: {shape}"
                )
            self.num_labels = int(shape[-1])
            var_shape: tuple = (self.num_thresholds, self.num_labels)
        else:
            var_shape = (self.num_thresholds,)
        for cond in metrics_utils.CONDITIONS:
            setattr(self, cond, self.add_variable(var_shape, "zeros", name=cond))
        self._built = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's confusion counts at every threshold."""
        xp = current_module()
        y_pred = _array(y_pred, self.dtype)
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = 0.5 * (1.0 + xp.tanh(0.5 * y_pred))  # the sigmoid, overflow-free
        metrics_utils.update_confusion_matrix_variables(
            {c: getattr(self, c) for c in metrics_utils.CONDITIONS},
            y_true,
            y_pred,
            thresholds=self._thresholds,
            sample_weight=sample_weight,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )

    def _average(self, per_label: Any) -> Any:
        xp = current_module()
        if not self.multi_label:
            return xp.sum(per_label)
        by_label = xp.sum(per_label, axis=0)
        if self.label_weights is None:
            return xp.mean(by_label)
        lw = xp.asarray(self.label_weights, dtype=by_label.dtype)
        return metrics_utils.divide_no_nan(xp.sum(by_label * lw), xp.sum(lw))

    def _interpolate_pr_auc(self) -> Any:
        """Davis & Goadrich (2006): precision interpolated between thresholds."""
        xp = current_module()
        tp, fp, fn = self.true_positives.data, self.false_positives.data, self.false_negatives.data
        n = self.num_thresholds
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        slope = metrics_utils.divide_no_nan(dtp, xp.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[: n - 1] > 0) & (p[1:] > 0)
        ratio = xp.where(
            both, metrics_utils.divide_no_nan(p[: n - 1], xp.maximum(p[1:], 0)), xp.ones_like(p[1:])
        )
        increment = metrics_utils.divide_no_nan(
            slope * (dtp + intercept * xp.log(ratio)), xp.maximum(tp[1:] + fn[1:], 0)
        )
        return self._average(increment)

    def result(self) -> Tensor:
        xp = current_module()
        if not self._built:
            return Tensor(xp.asarray(0.0, dtype=self.dtype))
        if self.curve == "PR" and self.summation_method == "interpolation":
            return Tensor(xp.asarray(self._interpolate_pr_auc(), dtype=self.dtype))
        tp, fp = self.true_positives.data, self.false_positives.data
        tn, fn = self.true_negatives.data, self.false_negatives.data
        recall = metrics_utils.divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = metrics_utils.divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, metrics_utils.divide_no_nan(tp, tp + fp)
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = xp.minimum(y[: n - 1], y[1:])
        else:
            heights = xp.maximum(y[: n - 1], y[1:])
        value = self._average((x[: n - 1] - x[1:]) * heights)
        return Tensor(xp.asarray(value, dtype=self.dtype))

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": self.label_weights,
            "thresholds": self._thresholds[1:-1],
            "from_logits": self._from_logits,
        }
