"""Loss functions and classes, as in `keras.losses`.

Function forms (`mean_squared_error(y_true, y_pred)`, ...) return per-sample
losses: the input reduced over its last axis only. Class forms wrap them:
`loss.call(y_true, y_pred)` returns the same unreduced Tensor, and calling the
instance applies sample weights, masks and the reduction. Everything is built
from `distkeras.ops`, so losses are differentiable; `y_true` may be a plain
array.

As in Keras 3, `compile` wraps a function or a name in `LossFunctionWrapper`,
whose `call` first rank-matches the labels to the predictions (labels (n,)
against an output (n, 1)); the bare functions do only what Keras's do, and
labels whose shape Keras rejects raise a ValueError naming both shapes.

Layout: `loss` (base class, wrapper, reductions), `regression`,
`probabilistic`, `hinge`, `segmentation`, `similarity`, `sequence` (CTC);
every public name is re-exported here.
"""

from __future__ import annotations

import inspect
from typing import Any

from distkeras.losses.hinge import (
    CategoricalHinge,
    Hinge,
    SquaredHinge,
    categorical_hinge,
    hinge,
    squared_hinge,
)
from distkeras.losses.loss import (
    Loss,
    LossFunctionWrapper,
    check_shapes,
    reduce_values,
    reduce_weighted_values,
    squeeze_or_expand_to_same_rank,
    standardize_reduction,
    validate_argument,
    weigh_values,
)
from distkeras.losses.probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)
from distkeras.losses.regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from distkeras.losses.segmentation import Dice, Tversky, dice, tversky
from distkeras.losses.sequence import CTC, ctc
from distkeras.losses.similarity import (
    CategoricalGeneralizedCrossEntropy,
    Circle,
    categorical_generalized_cross_entropy,
    circle,
)
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    get_from_identifier,
    serialize_keras_object,
)

# Short aliases, as Keras 2 exported them.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
bce = BCE = binary_crossentropy

_CLASSES = (
    Loss, LossFunctionWrapper, KLDivergence, Poisson, BinaryCrossentropy, BinaryFocalCrossentropy,
    CategoricalCrossentropy, CategoricalFocalCrossentropy, SparseCategoricalCrossentropy,
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    CosineSimilarity, LogCosh, Huber, Hinge, SquaredHinge, CategoricalHinge, Dice, Tversky,
    Circle, CategoricalGeneralizedCrossEntropy, CTC,
)  # fmt: skip
_FUNCTIONS = (
    kl_divergence, poisson, binary_crossentropy, binary_focal_crossentropy,
    categorical_crossentropy, categorical_focal_crossentropy, sparse_categorical_crossentropy,
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, cosine_similarity, log_cosh, huber, hinge, squared_hinge,
    categorical_hinge, dice, tversky, circle, categorical_generalized_cross_entropy, ctc,
)  # fmt: skip
ALL_OBJECTS_DICT: dict[str, Any] = {obj.__name__: obj for obj in (*_CLASSES, *_FUNCTIONS)}
for _short, _fn in (
    ("bce", binary_crossentropy), ("kld", kl_divergence), ("mae", mean_absolute_error),
    ("mse", mean_squared_error), ("mape", mean_absolute_percentage_error),
    ("msle", mean_squared_logarithmic_error),
):  # fmt: skip
    ALL_OBJECTS_DICT[_short] = ALL_OBJECTS_DICT[_short.upper()] = _fn


def serialize(loss: Any) -> Any:
    """Returns the Keras 3 config of a loss instance or function."""
    return serialize_keras_object(loss)


def deserialize(name: str | dict, custom_objects: dict | None = None) -> Any:
    """Returns the loss named or described by `name` (a function or a Loss instance)."""
    return deserialize_keras_object(
        name,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="loss",
    )


def get(identifier: Any) -> Any:
    """Resolves a loss identifier.

    Args:
        identifier: None, a function or class name ('mse',
            'categorical_crossentropy', 'CategoricalCrossentropy', ...), a
            config dict, a class, an instance, or a callable.

    Returns:
        A loss function or `Loss` instance (classes are instantiated), or None.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return None
    return get_from_identifier(identifier, ALL_OBJECTS_DICT, "loss")


__all__ = sorted(
    [name for name in ALL_OBJECTS_DICT if not name.isupper()]
    + ["MSE", "MAE", "MAPE", "MSLE", "KLD", "BCE"]
    + [
        "check_shapes",
        "deserialize",
        "get",
        "reduce_values",
        "reduce_weighted_values",
        "serialize",
        "squeeze_or_expand_to_same_rank",
        "standardize_reduction",
        "validate_argument",
        "weigh_values",
    ]
)
