"""Intersection-over-union metrics, as `keras.metrics`: IoU, MeanIoU, BinaryIoU,
OneHotIoU, OneHotMeanIoU.

State: the `(num_classes, num_classes)` confusion matrix of summed sample
weights (rows are labels, columns predictions), which is sum-reducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distkeras.backend import current_module, epsilon
from distkeras.backend.autodiff import Tensor
from distkeras.metrics import metrics_utils
from distkeras.metrics.metric import Metric
from distkeras.metrics.reduction_metrics import _array


class IoU(Metric):
    """`TP / (TP + FP + FN)` per target class, averaged over the classes present.

    Args:
        num_classes: Number of classes.
        target_class_ids: The classes whose IoU is averaged.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        ignore_class: A label whose entries are left out.
        sparse_y_true: Whether labels are class ids (else one-hot, argmax taken).
        sparse_y_pred: Whether predictions are class ids (else scores, argmax taken).
        axis: The class axis of one-hot inputs.
    """

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                "Argument `num_classes` must be a positive integer. "
                f"Received: num_classes={num_classes}"
            )
        target_class_ids = list(target_class_ids)
        if not target_class_ids or max(target_class_ids) >= num_classes:
            raise ValueError(
                f"Target class id {max(target_class_ids, default=None)} is out of range, which "
                f"is [0, {num_classes}). Received: target_class_ids={target_class_ids}"
            )
        self.num_classes = num_classes
        self.target_class_ids = target_class_ids
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.total_cm = self.add_variable(
            (num_classes, num_classes), "zeros", name="total_confusion_matrix"
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Adds the batch's weighted (label, prediction) pairs to the confusion matrix."""
        xp = current_module()
        y_true = _array(y_true)
        y_pred = _array(y_pred)
        if not self.sparse_y_true:
            y_true = xp.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = xp.argmax(y_pred, axis=self.axis)
        y_true = y_true.reshape(-1).astype(self.dtype)
        y_pred = y_pred.reshape(-1).astype(self.dtype)
        if sample_weight is None:
            weights = xp.ones(y_true.shape, dtype=self.dtype)
        else:
            weights = xp.broadcast_to(_array(sample_weight, self.dtype).reshape(-1), y_true.shape)
        if self.ignore_class is not None:
            valid = (y_true != self.ignore_class).astype(self.dtype)
            y_true, y_pred, weights = y_true * valid, y_pred * valid, weights * valid
        cm = metrics_utils.confusion_matrix(
            y_true, y_pred, self.num_classes, weights=weights, dtype=self.dtype
        )
        self.total_cm.assign_add(cm)

    def result(self) -> Tensor:
        xp = current_module()
        cm = self.total_cm.data
        tp = xp.diagonal(cm)
        denominator = xp.sum(cm, axis=0) + xp.sum(cm, axis=1) - tp
        ids = xp.asarray(self.target_class_ids)
        tp, denominator = tp[ids], denominator[ids]
        num_valid = xp.sum((denominator > 1e-9).astype(self.dtype))
        iou = tp / (denominator + epsilon())
        return Tensor(xp.asarray(xp.sum(iou) / (num_valid + epsilon()), dtype=self.dtype))

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_classes": self.num_classes,
            "target_class_ids": self.target_class_ids,
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }


class MeanIoU(IoU):
    """The IoU averaged over all classes, as `keras.metrics.MeanIoU`.

    Args:
        num_classes: Number of classes.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        ignore_class: A label whose entries are left out.
        sparse_y_true: Whether labels are class ids (else one-hot).
        sparse_y_pred: Whether predictions are class ids (else scores).
        axis: The class axis of one-hot inputs.
    """

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        super().__init__(
            num_classes=num_classes,
            target_class_ids=list(range(num_classes)) if isinstance(num_classes, int) else [0],
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["target_class_ids"]
        return config


class BinaryIoU(IoU):
    """IoU of binary labels against predictions thresholded at `threshold`.

    Args:
        target_class_ids: Which of the classes 0 and 1 are averaged.
        threshold: Predictions `>= threshold` count as class 1.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(
        self,
        target_class_ids: Sequence[int] = (0, 1),
        threshold: float = 0.5,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Thresholds the predictions, then adds them to the confusion matrix."""
        y_pred = (_array(y_pred, self.dtype) >= self.threshold).astype(self.dtype)
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "target_class_ids": self.target_class_ids,
            "threshold": self.threshold,
        }


class OneHotIoU(IoU):
    """IoU with one-hot labels (and score predictions unless `sparse_y_pred`)."""

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes=num_classes,
            target_class_ids=target_class_ids,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot labels (and score predictions unless `sparse_y_pred`)."""

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes=num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["sparse_y_true"]
        return config
