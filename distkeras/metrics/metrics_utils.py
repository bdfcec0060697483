"""Confusion-count helpers shared by the thresholded metrics (Precision, Recall, AUC, ...).

Everything here updates sum-reducible state on raw arrays of the current array
module: counts of true/false positives/negatives per threshold, and the
class confusion matrix of the IoU metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Variable
from distkeras.metrics.reduction_metrics import _array, squeeze_or_expand_to_same_rank

NEG_INF = -1e10
CONDITIONS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


def parse_init_thresholds(thresholds: Any, default_threshold: float = 0.5) -> list[float]:
    """The thresholds as a list of floats, checked to lie in [0, 1].

    Raises:
        ValueError: naming the thresholds outside [0, 1].
    """
    if thresholds is not None:
        values = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
        invalid = [t for t in values if t is None or not 0 <= float(t) <= 1]
        if invalid:
            raise ValueError(
                f"Threshold values must be in [0, 1]. Received: thresholds={thresholds!r} "
                f"(invalid: {invalid})"
            )
        return [float(t) for t in values]
    return [float(default_threshold)]


def filter_top_k(x: Any, k: int) -> Any:
    """Keeps the `k` largest entries of the last axis; the others become `NEG_INF`."""
    xp = current_module()
    order = xp.argsort(-x, axis=-1, kind="stable")
    rank = xp.argsort(order, axis=-1)  # each entry's place in the descending order
    return xp.where(rank < k, x, xp.asarray(NEG_INF, dtype=x.dtype))


def update_confusion_matrix_variables(
    variables: dict[str, Variable],
    y_true: Any,
    y_pred: Any,
    thresholds: Sequence[float],
    top_k: int | None = None,
    class_id: int | None = None,
    sample_weight: Any = None,
    multi_label: bool = False,
    label_weights: Any = None,
) -> None:
    """Adds this batch's (weighted) confusion counts at each threshold, as Keras does.

    A prediction is positive at threshold `t` when `y_pred > t`; a label is
    positive when non-zero. Without `multi_label` all entries are pooled and
    each variable has shape `(num_thresholds,)`; with it, counts are kept per
    label, shape `(num_thresholds, num_labels)`.

    Args:
        variables: Condition name (one of `CONDITIONS`) -> the Variable to add to.
        y_true: Labels.
        y_pred: Predictions, usually in [0, 1].
        thresholds: The thresholds.
        top_k: Only the `top_k` largest predictions of each row count as positive.
        class_id: Only this column of the last axis is considered.
        sample_weight: Weights broadcastable to one value per sample (or entry).
        multi_label: Keep counts per label (last axis) instead of pooling them.
        label_weights: Per-label weights (ignored with `multi_label`).
    """
    unknown = set(variables) - set(CONDITIONS)
    if unknown:
        raise ValueError(
            f"Invalid keys: {sorted(unknown)}. Valid variable key options are: {list(CONDITIONS)}"
        )
    xp = current_module()
    dtype = next(iter(variables.values())).dtype
    y_true = _array(y_true, dtype)
    y_pred = _array(y_pred, dtype)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = xp.expand_dims(_array(sample_weight, dtype), -1)
        _, sample_weight = squeeze_or_expand_to_same_rank(
            y_true, sample_weight, expand_rank_1=False
        )
    if top_k is not None:
        y_pred = filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(
                "When class_id is provided, y_pred must be a 2D array with shape "
                f"(num_samples, num_classes). Received: y_pred.shape={y_pred.shape}"
            )
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
        if sample_weight is not None and sample_weight.ndim == y_pred.ndim:
            if sample_weight.shape[-1] > 1:
                sample_weight = sample_weight[..., class_id, None]
    weights = None
    if sample_weight is not None:
        weights = xp.broadcast_to(sample_weight, y_pred.shape)
    if label_weights is not None and not multi_label:
        lw = xp.broadcast_to(_array(label_weights, dtype), y_pred.shape)
        weights = lw if weights is None else weights * lw
    thresholds = xp.asarray(list(thresholds), dtype=dtype)
    if multi_label:
        # (T, N, L): sums over the batch axis keep one count per label.
        preds, labels = y_pred[None], y_true[None] != 0
        thresh = thresholds.reshape((-1,) + (1,) * y_pred.ndim)
        w = None if weights is None else weights[None]
        axis: Any = 1
    else:
        preds, labels = y_pred.reshape(1, -1), y_true.reshape(1, -1) != 0
        thresh = thresholds.reshape(-1, 1)
        w = None if weights is None else weights.reshape(1, -1)
        axis = 1
    pred_pos = preds > thresh
    cond = {
        "true_positives": lambda: labels & pred_pos,
        "false_positives": lambda: ~labels & pred_pos,
        "true_negatives": lambda: ~labels & ~pred_pos,
        "false_negatives": lambda: labels & ~pred_pos,
    }
    for key, var in variables.items():
        hits = cond[key]().astype(dtype)
        if w is not None:
            hits = hits * w
        var.assign_add(xp.sum(hits, axis=axis))


def confusion_matrix(labels: Any, predictions: Any, num_classes: int, weights: Any, dtype: str):
    """The `(num_classes, num_classes)` matrix of summed weights, rows = labels."""
    xp = current_module()
    labels = labels.astype("int64")
    predictions = predictions.astype("int64")
    for name, v in (("labels", labels), ("predictions", predictions)):
        if v.size and (int(v.min()) < 0 or int(v.max()) >= num_classes):
            raise ValueError(
                f"`{name}` must hold class ids in [0, {num_classes}). "
                f"Received: {name} in [{int(v.min())}, {int(v.max())}]"
            )
    idx = labels * num_classes + predictions
    cm = xp.bincount(idx, weights=weights.astype("float64"), minlength=num_classes**2)
    return cm.reshape(num_classes, num_classes).astype(dtype)


def divide_no_nan(x: Any, y: Any) -> Any:
    """`x / y` with 0 where `y == 0` (arrays)."""
    xp = current_module()
    safe = xp.where(y == 0, xp.ones_like(y), y)
    return xp.where(y == 0, xp.zeros_like(x * y), x / safe)
