"""Accuracy metrics and their function forms, as `keras.metrics`."""

from __future__ import annotations

from typing import Any

from distkeras import ops
from distkeras.backend import current_module, floatx
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.metrics.reduction_metrics import MeanMetricWrapper, squeeze_or_expand_to_same_rank


def accuracy(y_true: Any, y_pred: Any) -> Tensor:
    """Mean over the last axis of `y_true == y_pred`."""
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true, dtype=y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return ops.mean(ops.cast(ops.equal(y_true, y_pred), floatx()), axis=-1)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> Tensor:
    """Mean over the last axis of `y_true == (y_pred > threshold)`."""
    y_true = convert_to_tensor(y_true)
    y_pred = convert_to_tensor(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = ops.cast(ops.greater(y_pred, threshold), y_true.dtype)
    return ops.mean(ops.cast(ops.equal(y_true, y_pred), floatx()), axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> Tensor:
    """1.0 where `argmax(y_true) == argmax(y_pred)` over the last axis, else 0.0."""
    y_true = ops.argmax(y_true, axis=-1)
    y_pred = convert_to_tensor(y_pred)
    reshape_matches = False
    true_shape = y_true.shape
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, -1)
        reshape_matches = True
    y_pred = ops.argmax(y_pred, axis=-1)
    if y_pred.dtype != y_true.dtype:
        y_pred = ops.cast(y_pred, y_true.dtype)
    matches = ops.cast(ops.equal(y_true, y_pred), floatx())
    if reshape_matches:
        matches = ops.reshape(matches, true_shape)
    return matches


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> Tensor:
    """1.0 where the integer label equals `argmax(y_pred)` over the last axis, else 0.0."""
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true)
    reshape_matches = False
    true_shape = y_true.shape
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
        reshape_matches = True
    y_pred = ops.argmax(y_pred, axis=-1)
    if y_pred.dtype != y_true.dtype:
        y_pred = ops.cast(y_pred, y_true.dtype)
    matches = ops.cast(ops.equal(y_true, y_pred), floatx())
    if reshape_matches:
        matches = ops.reshape(matches, true_shape)
    if len(matches.shape) > 1 and matches.shape[-1] == 1:
        matches = ops.squeeze(matches, -1)
    return matches


def in_top_k(targets: Any, predictions: Any, k: int) -> Tensor:
    """Whether each target's prediction is among the `k` largest of its row.

    Ties straddling the k-th place count as in the top k; a non-finite target
    prediction or an out-of-range target is never in it (TensorFlow's rule).
    """
    xp = current_module()
    t = convert_to_tensor(targets).data.astype("int64")
    p = convert_to_tensor(predictions).data
    num_classes = p.shape[-1]
    valid = (t >= 0) & (t < num_classes)
    idx = xp.where(valid, t, 0)
    target_pred = xp.take_along_axis(p, idx[:, None], axis=-1)
    rank = xp.sum(p > target_pred, axis=-1)
    return Tensor((rank < k) & valid & xp.isfinite(target_pred[:, 0]))


def _top_k(y_true: Tensor, y_pred: Any, k: int, labels_shape: tuple, name: str) -> Tensor:
    y_pred = convert_to_tensor(y_pred)
    true_shape = y_true.shape
    rows = 1
    for d in y_pred.shape[:-1]:
        rows *= d
    if len(y_pred.shape) < 2 or y_true.size != rows:
        raise ValueError(
            f"`{name}` needs one target per row of y_pred: y_true shape {labels_shape} does not "
            f"fit y_pred shape {y_pred.shape}. "
            f"Received: y_true.shape={labels_shape}, y_pred.shape={y_pred.shape}"
        )
    if len(y_pred.shape) > 2:
        y_pred = ops.reshape(y_pred, (-1, y_pred.shape[-1]))
    reshape = len(y_true.shape) > 1
    if reshape:
        y_true = ops.reshape(y_true, (-1,))
    matches = ops.cast(in_top_k(y_true, y_pred, k), floatx())
    return ops.reshape(matches, true_shape) if reshape else matches


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> Tensor:
    """1.0 where the one-hot target class is among the top `k` predictions."""
    y_true = convert_to_tensor(y_true)
    return _top_k(
        ops.argmax(y_true, axis=-1), y_pred, k, y_true.shape, "top_k_categorical_accuracy"
    )


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> Tensor:
    """1.0 where the integer target is among the top `k` predictions."""
    y_true = convert_to_tensor(y_true)
    return _top_k(y_true, y_pred, k, y_true.shape, "sparse_top_k_categorical_accuracy")


class _AccuracyBase(MeanMetricWrapper):
    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class Accuracy(_AccuracyBase):
    """How often `y_pred` equals `y_true` exactly, as `keras.metrics.Accuracy`."""

    def __init__(self, name: str = "accuracy", dtype: Any = None):
        super().__init__(fn=accuracy, name=name, dtype=dtype)
        self._direction = "up"


class BinaryAccuracy(_AccuracyBase):
    """How often thresholded predictions match binary labels.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        threshold: Predictions above it count as 1, in (0, 1).
    """

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5):
        if threshold is not None and (threshold <= 0 or threshold >= 1):
            raise ValueError(
                "Invalid value for argument `threshold`. Expected a value in interval (0, 1). "
                f"Received: threshold={threshold}"
            )
        super().__init__(fn=binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(_AccuracyBase):
    """How often `argmax(y_pred)` matches one-hot labels."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None):
        super().__init__(fn=categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"


class SparseCategoricalAccuracy(_AccuracyBase):
    """How often `argmax(y_pred)` matches integer labels."""

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None):
        super().__init__(fn=sparse_categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"


class TopKCategoricalAccuracy(_AccuracyBase):
    """How often one-hot targets are in the top `k` predictions.

    Args:
        k: Number of top predictions considered.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None):
        super().__init__(fn=top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


class SparseTopKCategoricalAccuracy(_AccuracyBase):
    """How often integer targets are in the top `k` predictions.

    Args:
        k: Number of top predictions considered.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(
        self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: Any = None
    ):
        super().__init__(fn=sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}
