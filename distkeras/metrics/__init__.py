"""Stateful metrics, as `keras.metrics`.

Every built-in metric keeps sum-reducible state (totals and counts): a
data-parallel trainer all-reduces `metric.variables` with a sum, then calls
`result()`, and gets exactly what one process seeing all the data would.
"""

from __future__ import annotations

from typing import Any

from distkeras.losses import (
    categorical_hinge,
    hinge,
    kl_divergence,
    log_cosh,
    poisson,
    squared_hinge,
)
from distkeras.metrics.accuracy_metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    in_top_k,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from distkeras.metrics.auc_metrics import AUC
from distkeras.metrics.confusion_metrics import (
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from distkeras.metrics.f_score_metrics import F1Score, FBetaScore
from distkeras.metrics.hinge_metrics import CategoricalHinge, Hinge, SquaredHinge
from distkeras.metrics.iou_metrics import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from distkeras.metrics.metric import Metric, to_snake_case
from distkeras.metrics.probabilistic_metrics import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
)
from distkeras.metrics.reduction_metrics import Mean, MeanMetricWrapper, Sum
from distkeras.metrics.regression_metrics import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
    cosine_similarity,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from distkeras.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

_snake = to_snake_case


ALL_OBJECTS = (
    Metric,
    Mean,
    Sum,
    MeanMetricWrapper,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TruePositives,
    TrueNegatives,
    FalsePositives,
    FalseNegatives,
    Precision,
    Recall,
    AUC,
    F1Score,
    FBetaScore,
    IoU,
    MeanIoU,
    BinaryIoU,
    OneHotIoU,
    OneHotMeanIoU,
    R2Score,
    LogCoshError,
    CosineSimilarity,
    KLDivergence,
    Poisson,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
)
ALL_OBJECTS_DICT: dict[str, Any] = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({_snake(cls.__name__): cls for cls in ALL_OBJECTS})
ALL_OBJECTS_DICT.update(
    {
        "bce": BinaryCrossentropy,
        "BCE": BinaryCrossentropy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "MAPE": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "MSLE": MeanSquaredLogarithmicError,
    }
)
FUNCTIONS = {
    f.__name__: f
    for f in (
        accuracy,
        binary_accuracy,
        categorical_accuracy,
        sparse_categorical_accuracy,
        top_k_categorical_accuracy,
        sparse_top_k_categorical_accuracy,
        mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
        binary_crossentropy,
        categorical_crossentropy,
        sparse_categorical_crossentropy,
        cosine_similarity,
        log_cosh,
        kl_divergence,
        poisson,
        hinge,
        squared_hinge,
        categorical_hinge,
    )
}


def serialize(metric: Any) -> Any:
    """Returns the Keras 3 config of a metric instance or metric function."""
    return serialize_keras_object(metric)


def deserialize(config: Any, custom_objects: dict | None = None) -> Any:
    """Rebuilds a metric instance (or metric function) from `serialize` output.

    Raises:
        ValueError: for an unknown name.
    """
    table = ALL_OBJECTS_DICT
    if isinstance(config, dict) and config.get("class_name") == "function":
        table = FUNCTIONS
    return deserialize_keras_object(
        config, module_objects=table, custom_objects=custom_objects, printable_module_name="metric"
    )


def get(identifier: Any) -> Any:
    """Returns a metric instance (or function) from a name, a config dict, or itself.

    Names may be class names ('CategoricalAccuracy'), their snake_case form
    ('categorical_accuracy') or the aliases 'mse', 'mae', 'mape', 'msle', 'bce'.
    Classes are instantiated with their defaults. 'accuracy'/'acc' in
    `compile` depend on the loss and shapes: see `resolve_accuracy`.

    Raises:
        ValueError: if `identifier` cannot be interpreted.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier) or deserialize(identifier)
    else:
        obj = identifier
    if isinstance(obj, type):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(
        f"Could not interpret metric identifier: {identifier!r}. "
        f"Received: identifier={identifier!r}"
    )


_BINARY_LOSSES = {"binary_crossentropy", "bce", "binary_focal_crossentropy"}
_SPARSE_LOSSES = {"sparse_categorical_crossentropy"}


def _loss_kind(loss: Any) -> str | None:
    if loss is None:
        return None
    names = set()
    if isinstance(loss, str):
        names.add(loss)
    else:
        names.add(getattr(loss, "__name__", ""))
        names.add(type(loss).__name__)
        names.add(getattr(getattr(loss, "fn", None), "__name__", ""))
        name = getattr(loss, "name", None)
        if isinstance(name, str):
            names.add(name)
    names = {_snake(n) for n in names if n}
    if names & _BINARY_LOSSES:
        return "binary"
    if names & _SPARSE_LOSSES:
        return "sparse"
    return None


def resolve_accuracy(
    loss: Any, y_true_shape: Any, y_pred_shape: Any, name: str = "accuracy"
) -> Metric:
    """The accuracy metric `compile(metrics=['accuracy'])` means for these shapes.

    As Keras 3 decides it from the shapes alone: binary accuracy when the
    output's last axis is 1; sparse categorical accuracy when the targets have
    fewer axes than the outputs, or a last axis of 1 against more than one
    output class; categorical accuracy otherwise (a multi-label sigmoid output
    trained with binary crossentropy included). The loss decides only when a
    shape is unknown.

    Args:
        loss: The loss as given to compile (name, function or Loss object), or None.
        y_true_shape: Shape of the targets (entries may be None), or None.
        y_pred_shape: Shape of the model output (entries may be None), or None.
        name: Name of the returned metric ('accuracy' or 'acc', as the user wrote it).
    """
    pred = tuple(y_pred_shape) if y_pred_shape is not None else None
    true = tuple(y_true_shape) if y_true_shape is not None else None
    if not pred or pred[-1] is None or true is None:
        kind = _loss_kind(loss)
        if kind == "binary":
            return BinaryAccuracy(name=name)
        if kind == "sparse":
            return SparseCategoricalAccuracy(name=name)
    pred_last = pred[-1] if pred else None
    if pred_last == 1:
        return BinaryAccuracy(name=name)
    if (
        pred is not None
        and true is not None
        and (
            len(true) < len(pred)
            or (len(true) > 0 and true[-1] == 1 and pred_last is not None and pred_last > 1)
        )
    ):
        return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)


def get_metric(
    identifier: Any, y_true_shape: Any = None, y_pred_shape: Any = None, loss: Any = None
) -> Metric | None:
    """Turns one entry of `compile(metrics=[...])` into a Metric, named as Keras names it.

    String identifiers keep the user's spelling as the metric name ('acc',
    'mse'); functions are wrapped in `MeanMetricWrapper` under their
    `__name__`; Metric instances pass through unchanged.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        return resolve_accuracy(loss, y_true_shape, y_pred_shape, name=identifier)
    obj = get(identifier)
    if isinstance(obj, Metric):
        if isinstance(identifier, str):
            obj.name = identifier
        return obj
    name = identifier if isinstance(identifier, str) else getattr(obj, "__name__", None)
    return MeanMetricWrapper(obj, name=name)


__all__ = sorted(
    [cls.__name__ for cls in ALL_OBJECTS]
    + list(FUNCTIONS)
    + ["deserialize", "get", "get_metric", "in_top_k", "resolve_accuracy", "serialize"]
)
