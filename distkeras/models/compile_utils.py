"""Resolution of the loss and metrics given to `compile`, and their reduction."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import losses as losses_mod
from distkeras import metrics as metrics_mod
from distkeras import ops
from distkeras.backend import to_numpy as backend_to_numpy
from distkeras.backend.autodiff import Tensor


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss
    return getattr(loss, "name", None) or getattr(loss, "__name__", type(loss).__name__)


class CompileLoss:
    """The compiled loss: per-sample values, weights and the training reduction.

    Args:
        loss: A loss name, function or `Loss` instance.
        loss_weights: Optional scalar weight.
    """

    def __init__(self, loss: Any, loss_weights: Any = None):
        self.identifier = loss
        self.fn = losses_mod.get(loss)
        if isinstance(loss_weights, (list, tuple)):
            loss_weights = loss_weights[0] if len(loss_weights) == 1 else loss_weights
        if isinstance(loss_weights, dict):
            loss_weights = next(iter(loss_weights.values())) if len(loss_weights) == 1 else 1.0
        self.weight = 1.0 if loss_weights is None else float(loss_weights)
        self.reduction = getattr(self.fn, "reduction", "sum_over_batch_size")

    def per_sample(self, y_true: Any, y_pred: Tensor) -> Tensor:
        """Unreduced losses (batch shape), differentiable in y_pred."""
        if isinstance(self.fn, losses_mod.Loss):
            return self.fn.call(y_true, y_pred)
        return self.fn(y_true, y_pred)

    def weighted_sum(self, y_true: Any, y_pred: Tensor, sample_weight: Any) -> tuple[Tensor, int]:
        """Sum of (weighted) per-sample losses and the number of loss elements."""
        values = self.per_sample(y_true, y_pred)
        mask = getattr(y_pred, "_keras_mask", None)
        if mask is not None and tuple(mask.shape) == tuple(values.shape):
            # Keras 3: masked entries get weight 0 and the rest total/valid, so the
            # 'sum_over_batch_size' mean runs over the valid entries only.
            m = np.asarray(backend_to_numpy(mask), dtype="float64")
            valid = m.sum()
            scale = m * (m.size / valid) if valid > 0 else m
            values = ops.multiply(values, ops.convert_to_tensor(scale, dtype=values.dtype))
        if sample_weight is not None:
            sw = ops.convert_to_tensor(np.asarray(sample_weight), dtype=values.dtype)
            while sw.ndim < values.ndim:
                sw = ops.expand_dims(sw, -1)
            values = ops.multiply(values, sw)
        return ops.sum(values), int(values.size)


class CompileMetrics:
    """The compiled metrics, created on the first batch (to resolve 'accuracy').

    Args:
        metrics: Metric names/objects applied without sample weights.
        weighted_metrics: Metric names/objects applied with sample weights.
        loss: The compiled loss identifier (decides what 'accuracy' means).
    """

    def __init__(self, metrics: Any, weighted_metrics: Any, loss: Any):
        self.specs = _as_list(metrics)
        self.weighted_specs = _as_list(weighted_metrics)
        self.loss = loss
        self.metrics: list[Any] = []
        self.weighted: list[bool] = []
        self.built = False

    def build(self, y_true: Any, y_pred: Tensor) -> None:
        """Creates the metric objects from the first batch's shapes."""
        for specs, weighted in ((self.specs, False), (self.weighted_specs, True)):
            for spec in specs:
                self.metrics.append(self._make(spec, y_true, y_pred, weighted))
                self.weighted.append(weighted)
        self.built = True

    def _make(self, spec: Any, y_true: Any, y_pred: Tensor, weighted: bool) -> Any:
        if isinstance(spec, str) and spec in ("accuracy", "acc"):
            m = metrics_mod.resolve_accuracy(self.loss, np.shape(y_true), y_pred.shape)
            m.name = spec
            return m
        m = metrics_mod.get(spec)
        if isinstance(m, metrics_mod.Metric):
            return m
        if callable(m):
            name = spec if isinstance(spec, str) else getattr(m, "__name__", "metric")
            return metrics_mod.MeanMetricWrapper(m, name=name)
        raise ValueError(f"Could not interpret metric identifier: {spec!r}. Received: {spec!r}")

    def update_state(self, y_true: Any, y_pred: Tensor, sample_weight: Any) -> None:
        if not self.built:
            self.build(y_true, y_pred)
        for m, weighted in zip(self.metrics, self.weighted):
            m.update_state(y_true, y_pred, sample_weight=sample_weight if weighted else None)

    def reset_state(self) -> None:
        for m in self.metrics:
            m.reset_state()


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, dict):
        raise ValueError(
            f"Metrics given as a dict need a multi-output model. Received: metrics={x!r}"
        )
    return list(x) if isinstance(x, (list, tuple)) else [x]


def class_weight_to_sample_weight(y: Any, class_weight: dict, sample_weight: Any) -> np.ndarray:
    """Per-sample weights from a {class: weight} dict (multiplied into sample_weight)."""
    y = np.asarray(y)
    labels = (
        np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    )
    labels = np.rint(labels).astype(np.int64)
    w = np.ones(len(labels), dtype=np.float64)
    for cls, weight in class_weight.items():
        w[labels == int(cls)] = weight
    if sample_weight is not None:
        w = w * np.asarray(sample_weight, dtype=np.float64).reshape(len(w), -1)[:, 0]
    return w
