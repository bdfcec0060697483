"""Loss functions and classes, as in `keras.losses`.

Function forms (`mean_squared_error(y_true, y_pred)`, ...) return per-sample
losses: the input reduced over its last axis only. Class forms wrap them:
`loss.call(y_true, y_pred)` returns the same unreduced Tensor, and calling the
instance applies sample weights, masks and the reduction. Everything is built
from `distkeras.ops`, so losses are differentiable; `y_true` may be a plain
array.
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

from distkeras import ops
from distkeras.backend import current_module, epsilon, floatx, standardize_dtype
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.saving.object_registration import get_registered_object
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    serialize_keras_object,
)

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def standardize_reduction(reduction: str | None) -> str | None:
    """Returns `reduction` if it is a valid reduction name, else raises ValueError."""
    if not (reduction is None or isinstance(reduction, str)) or reduction not in _REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {_REDUCTIONS}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def squeeze_or_expand_to_same_rank(x1: Any, x2: Any, expand_rank_1: bool = True) -> tuple:
    """Squeezes or expands the last axis when the ranks of `x1` and `x2` differ by one."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, axis=-1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, axis=-1)
    return x1, x2


def _mask_of(x: Any) -> Any:
    return x._keras_mask if isinstance(x, Tensor) else None


def _apply_mask(sample_weight: Any, mask: Any, dtype: str, reduction: Any) -> Any:
    """Merges a boolean mask into the sample weights (valid entries reweighted for means)."""
    if mask is None:
        return sample_weight
    xp = current_module()
    m = xp.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
    if reduction in ("mean", "sum_over_batch_size"):
        valid = int(m.sum())
        weight = m.size / valid if valid else 0.0
        float_mask = Tensor(xp.where(m, weight, 0.0).astype(dtype))
    else:
        float_mask = Tensor(m.astype(dtype))
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight)
    return ops.multiply(sample_weight, float_mask)


def reduce_values(
    values: Tensor, sample_weight: Any = None, reduction: Any = "sum_over_batch_size"
):
    """Reduces (already weighted) loss values as Keras does."""
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    loss = ops.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = float(current_module().sum(convert_to_tensor(sample_weight).data))
    else:
        divisor = float(values.size)
    return ops.divide(loss, divisor) if divisor else ops.multiply(loss, 0.0)


def reduce_weighted_values(
    values: Any,
    sample_weight: Any = None,
    mask: Any = None,
    reduction: Any = "sum_over_batch_size",
    dtype: Any = None,
) -> Tensor:
    """Applies sample weights and a mask to per-sample losses, then the reduction."""
    reduction = standardize_reduction(reduction)
    values = convert_to_tensor(values, dtype=dtype)
    if sample_weight is not None:
        sample_weight = convert_to_tensor(sample_weight, dtype=values.dtype)
    sample_weight = _apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = ops.multiply(values, sample_weight)
    return reduce_values(values, sample_weight, reduction)


def _snake(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Loss:
    """Base class of losses: subclasses implement `call(y_true, y_pred)`.

    Args:
        name: Name of the loss (snake-cased class name by default).
        reduction: 'sum_over_batch_size' (default), 'mean' (same), 'sum',
            'mean_with_sample_weight' (sum divided by the sum of weights),
            or 'none'/None (no reduction).
        dtype: Computation dtype (the default float type when omitted).
    """

    def __init__(self, name: str | None = None, reduction: Any = "sum_over_batch_size", dtype=None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype = standardize_dtype(dtype or floatx())

    @property
    def dtype(self) -> str:
        """The computation dtype."""
        return self._dtype

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        """Returns the unreduced per-sample losses."""
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        """Computes the weighted, reduced loss.

        Args:
            y_true: Targets.
            y_pred: Predictions.
            sample_weight: Optional weights broadcastable to the per-sample losses.
        """
        in_mask = _mask_of(y_pred)
        y_pred = convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = convert_to_tensor(y_true, dtype=self.dtype)
        losses = self.call(y_true, y_pred)
        out_mask = _mask_of(losses)
        if in_mask is not None and out_mask is not None:
            mask = in_mask & out_mask
        else:
            mask = in_mask if in_mask is not None else out_mask
        return reduce_weighted_values(losses, sample_weight, mask, self.reduction, self.dtype)

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-friendly dict."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        """Builds a loss from `get_config()` output."""
        return cls(**config)


class LossFunctionWrapper(Loss):
    """Turns a loss function `fn(y_true, y_pred, **kwargs)` into a `Loss`.

    Args:
        fn: The per-sample loss function.
        reduction: See `Loss`.
        name: Name of the loss (the function's name by default).
        dtype: See `Loss`.
        **kwargs: Keyword arguments passed to `fn`.
    """

    def __init__(
        self, fn: Callable, reduction: Any = "sum_over_batch_size", name=None, dtype=None, **kwargs
    ):
        super().__init__(
            name=name or getattr(fn, "__name__", None), reduction=reduction, dtype=dtype
        )
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> Tensor:
        y_true = y_true if hasattr(y_true, "shape") else convert_to_tensor(y_true)
        y_pred = y_pred if hasattr(y_pred, "shape") else convert_to_tensor(y_pred)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "fn": serialize_keras_object(self.fn), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict) -> LossFunctionWrapper:
        config = dict(config)
        if "fn" in config:
            config["fn"] = get(config["fn"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


# ------------------------------------------------------------------ functions
def _pair(y_true: Any, y_pred: Any, match_rank: bool = True) -> tuple[Tensor, Tensor]:
    y_pred = convert_to_tensor(y_pred)
    if y_pred.data.dtype.kind != "f":
        y_pred = ops.cast(y_pred, floatx())
    y_true = convert_to_tensor(y_true, dtype=y_pred.dtype)
    if match_rank:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return y_true, y_pred


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.divide(x, ops.sqrt(ops.maximum(sq, epsilon() ** 2)))


def _check_axis(axis: Any) -> None:
    if isinstance(axis, bool):
        raise ValueError(
            f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}"
        )


def mean_squared_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((y_true - y_pred)^2, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.square(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean(|y_true - y_pred|, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.absolute(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Tensor:
    """100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    diff = ops.divide(ops.subtract(y_true, y_pred), ops.maximum(ops.absolute(y_true), epsilon()))
    return ops.multiply(ops.mean(ops.absolute(diff), axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Tensor:
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2, axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    first = ops.log(ops.add(ops.maximum(y_pred, epsilon()), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, epsilon()), 1.0))
    return ops.mean(ops.square(ops.subtract(first, second)), axis=-1)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Tensor:
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)."""
    y_true, y_pred = _pair(y_true, y_pred)
    prod = ops.multiply(_l2_normalize(y_true, axis), _l2_normalize(y_pred, axis))
    return ops.negative(ops.sum(prod, axis=axis))


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Tensor:
    """mean of 0.5 * e^2 where |e| <= delta, else delta * |e| - 0.5 * delta^2."""
    y_true, y_pred = _pair(y_true, y_pred)
    error = ops.subtract(y_pred, y_true)
    abs_error = ops.absolute(error)
    quad = ops.multiply(ops.square(error), 0.5)
    lin = ops.subtract(ops.multiply(abs_error, float(delta)), 0.5 * float(delta) ** 2)
    return ops.mean(ops.where(abs_error.data <= delta, quad, lin), axis=-1)


def log_cosh(y_true: Any, y_pred: Any) -> Tensor:
    """mean(log(cosh(y_pred - y_true)), axis=-1), computed stably."""
    y_true, y_pred = _pair(y_true, y_pred)
    x = ops.subtract(y_pred, y_true)
    logcosh = ops.subtract(ops.add(x, ops.softplus(ops.multiply(x, -2.0))), math.log(2.0))
    return ops.mean(logcosh, axis=-1)


def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    """sum(y_true * log(y_true / y_pred), axis=-1), both clipped to [eps, 1]."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    y_true = ops.clip(y_true, epsilon(), 1.0)
    y_pred = ops.clip(y_pred, epsilon(), 1.0)
    return ops.sum(ops.multiply(y_true, ops.log(ops.divide(y_true, y_pred))), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> Tensor:
    """mean(y_pred - y_true * log(y_pred + eps), axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    return ops.mean(
        ops.subtract(y_pred, ops.multiply(y_true, ops.log(ops.add(y_pred, epsilon())))), axis=-1
    )


def _hinge_labels(y_true: Tensor) -> Tensor:
    """Maps {0, 1} labels to {-1, 1}; other labels are returned unchanged."""
    xp = current_module()
    t = y_true.data
    if bool(xp.all((t == 0) | (t == 1))):
        return ops.subtract(ops.multiply(y_true, 2.0), 1.0)
    return y_true


def hinge(y_true: Any, y_pred: Any) -> Tensor:
    """mean(max(1 - y_true * y_pred, 0), axis=-1); {0, 1} labels become {-1, 1}."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    y_true = _hinge_labels(y_true)
    return ops.mean(ops.relu(ops.subtract(1.0, ops.multiply(y_true, y_pred))), axis=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """mean(max(1 - y_true * y_pred, 0)^2, axis=-1); {0, 1} labels become {-1, 1}."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    y_true = _hinge_labels(y_true)
    margin = ops.relu(ops.subtract(1.0, ops.multiply(y_true, y_pred)))
    return ops.mean(ops.square(margin), axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Tensor:
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    pos = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.relu(ops.add(ops.subtract(neg, pos), 1.0))


def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis=-1
) -> Tensor:
    """Mean over `axis` of the elementwise binary crossentropy.

    Args:
        y_true: Targets in [0, 1].
        y_pred: Probabilities, or logits when `from_logits`.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Targets become y * (1 - s) + 0.5 * s.
        axis: Axis the mean is taken over.
    """
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    return ops.mean(ops.binary_crossentropy(y_true, y_pred, from_logits=from_logits), axis=axis)


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis=-1,
) -> Tensor:
    """Binary crossentropy scaled by (1 - p_t)^gamma (and alpha weights when balancing)."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    bce = ops.binary_crossentropy(y_true, y_pred, from_logits=False)
    not_true = ops.subtract(1.0, y_true)
    p_t = ops.add(ops.multiply(y_true, y_pred), ops.multiply(not_true, ops.subtract(1.0, y_pred)))
    focal = ops.multiply(ops.power(ops.subtract(1.0, p_t), float(gamma)), bce)
    if apply_class_balancing:
        weight = ops.add(ops.multiply(y_true, alpha), ops.multiply(not_true, 1.0 - alpha))
        focal = ops.multiply(weight, focal)
    return ops.mean(focal, axis=axis)


def _smooth_categorical(y_true: Tensor, y_pred: Tensor, label_smoothing: float, name: str):
    if y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1. Received: y_pred.shape={y_pred.shape}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )
    if label_smoothing:
        n = float(y_true.shape[-1])
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), label_smoothing / n)
    return y_true


def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis=-1
) -> Tensor:
    """Crossentropy between one-hot (or soft) targets and predictions along `axis`.

    Args:
        y_true: One-hot or soft targets.
        y_pred: Probabilities, or logits when `from_logits`.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Targets become y * (1 - s) + s / num_classes.
        axis: The class axis.
    """
    _check_axis(axis)
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    y_true = _smooth_categorical(y_true, y_pred, label_smoothing, "categorical_crossentropy")
    return ops.categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis=-1,
) -> Tensor:
    """sum(alpha * (1 - p)^gamma * -y_true * log(p)) along `axis`."""
    _check_axis(axis)
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    y_true = _smooth_categorical(y_true, y_pred, label_smoothing, "categorical_focal_crossentropy")
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=axis)
    out = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
    out = ops.clip(out, epsilon(), 1.0 - epsilon())
    cce = ops.negative(ops.multiply(y_true, ops.log(out)))
    weight = ops.multiply(ops.power(ops.subtract(1.0, out), float(gamma)), alpha)
    return ops.sum(ops.multiply(weight, cce), axis=axis)


def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, ignore_class: int | None = None, axis=-1
) -> Tensor:
    """Crossentropy with integer class targets.

    Args:
        y_true: Integer labels, shaped like `y_pred` without the class axis
            (or with a class axis of size 1).
        y_pred: Probabilities, or logits when `from_logits`.
        from_logits: Whether `y_pred` holds logits.
        ignore_class: A label whose entries get zero loss; the result then
            carries `_keras_mask` so `Loss.__call__` averages over the rest.
        axis: The class axis.
    """
    y_pred = convert_to_tensor(y_pred)
    xp = current_module()
    t = y_true.data if isinstance(y_true, Tensor) else xp.asarray(y_true)
    if t.ndim == y_pred.ndim and t.shape[axis] == 1:
        t = xp.squeeze(t, axis=axis)
    if axis not in (-1, y_pred.ndim - 1):
        y_pred = ops.moveaxis(y_pred, axis, -1)
    valid = None
    if ignore_class is not None:
        valid = t != ignore_class
        t = xp.where(valid, t, 0)
    res = ops.sparse_categorical_crossentropy(t, y_pred, from_logits=from_logits)
    if valid is not None:
        valid = valid.reshape(res.shape)
        res = ops.where(valid, res, 0.0)
        res._keras_mask = valid
    return res


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Tensor:
    """1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps) over `axis`."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    inter = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    denom = ops.add(ops.add(ops.sum(y_true, axis=axis), ops.sum(y_pred, axis=axis)), epsilon())
    return ops.subtract(1.0, ops.divide(ops.multiply(inter, 2.0), denom))


def tversky(y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis=None) -> Tensor:
    """1 - TP / (TP + alpha * FP + beta * FN + eps), sums taken over `axis`."""
    y_true, y_pred = _pair(y_true, y_pred, match_rank=False)
    tp = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    fp = ops.sum(ops.multiply(ops.subtract(1.0, y_pred), y_true), axis=axis)
    fn = ops.sum(ops.multiply(y_pred, ops.subtract(1.0, y_true)), axis=axis)
    denom = ops.add(
        ops.add(ops.add(tp, ops.multiply(fp, alpha)), ops.multiply(fn, beta)), epsilon()
    )
    return ops.subtract(1.0, ops.divide(tp, denom))


# ------------------------------------------------------------------ classes
_SBS = "sum_over_batch_size"


class _BuiltinLoss(LossFunctionWrapper):
    """A built-in loss class: its config holds its own arguments, not the function.

    Subclasses call `self._setup(fn, locals())` from `__init__`; every argument
    other than reduction, name and dtype is passed on to `fn`.
    """

    def _setup(self, fn: Callable, args: dict) -> None:
        kwargs = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        reduction, name, dtype = kwargs.pop("reduction"), kwargs.pop("name"), kwargs.pop("dtype")
        LossFunctionWrapper.__init__(
            self, fn, reduction=reduction, name=name, dtype=dtype, **kwargs
        )
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_config(self) -> dict:
        return {**Loss.get_config(self), **self._fn_kwargs}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)


class MeanSquaredError(_BuiltinLoss):
    """Mean of the squared errors (see `mean_squared_error`)."""

    def __init__(self, reduction=_SBS, name="mean_squared_error", dtype=None):
        self._setup(mean_squared_error, locals())


class MeanAbsoluteError(_BuiltinLoss):
    """Mean of the absolute errors (see `mean_absolute_error`)."""

    def __init__(self, reduction=_SBS, name="mean_absolute_error", dtype=None):
        self._setup(mean_absolute_error, locals())


class MeanAbsolutePercentageError(_BuiltinLoss):
    """Mean absolute percentage error (see `mean_absolute_percentage_error`)."""

    def __init__(self, reduction=_SBS, name="mean_absolute_percentage_error", dtype=None):
        self._setup(mean_absolute_percentage_error, locals())


class MeanSquaredLogarithmicError(_BuiltinLoss):
    """Mean squared logarithmic error (see `mean_squared_logarithmic_error`)."""

    def __init__(self, reduction=_SBS, name="mean_squared_logarithmic_error", dtype=None):
        self._setup(mean_squared_logarithmic_error, locals())


class CosineSimilarity(_BuiltinLoss):
    """Negative cosine similarity along `axis` (see `cosine_similarity`)."""

    def __init__(self, axis=-1, reduction=_SBS, name="cosine_similarity", dtype=None):
        self._setup(cosine_similarity, locals())


class Huber(_BuiltinLoss):
    """Huber loss: quadratic within `delta`, linear beyond (see `huber`)."""

    def __init__(self, delta=1.0, reduction=_SBS, name="huber_loss", dtype=None):
        self._setup(huber, locals())


class LogCosh(_BuiltinLoss):
    """Logarithm of the hyperbolic cosine of the error (see `log_cosh`)."""

    def __init__(self, reduction=_SBS, name="log_cosh", dtype=None):
        self._setup(log_cosh, locals())


class KLDivergence(_BuiltinLoss):
    """Kullback-Leibler divergence (see `kl_divergence`)."""

    def __init__(self, reduction=_SBS, name="kl_divergence", dtype=None):
        self._setup(kl_divergence, locals())


class Poisson(_BuiltinLoss):
    """Poisson loss (see `poisson`)."""

    def __init__(self, reduction=_SBS, name="poisson", dtype=None):
        self._setup(poisson, locals())


class Hinge(_BuiltinLoss):
    """Hinge loss (see `hinge`)."""

    def __init__(self, reduction=_SBS, name="hinge", dtype=None):
        self._setup(hinge, locals())


class SquaredHinge(_BuiltinLoss):
    """Squared hinge loss (see `squared_hinge`)."""

    def __init__(self, reduction=_SBS, name="squared_hinge", dtype=None):
        self._setup(squared_hinge, locals())


class CategoricalHinge(_BuiltinLoss):
    """Categorical hinge loss (see `categorical_hinge`)."""

    def __init__(self, reduction=_SBS, name="categorical_hinge", dtype=None):
        self._setup(categorical_hinge, locals())


class BinaryCrossentropy(_BuiltinLoss):
    """Binary crossentropy (see `binary_crossentropy`)."""

    def __init__(
        self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=_SBS,
        name="binary_crossentropy", dtype=None,
    ):  # fmt: skip
        self._setup(binary_crossentropy, locals())


class BinaryFocalCrossentropy(_BuiltinLoss):
    """Binary focal crossentropy (see `binary_focal_crossentropy`)."""

    def __init__(
        self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
        label_smoothing=0.0, axis=-1, reduction=_SBS, name="binary_focal_crossentropy",
        dtype=None,
    ):  # fmt: skip
        self._setup(binary_focal_crossentropy, locals())


class CategoricalCrossentropy(_BuiltinLoss):
    """Categorical crossentropy (see `categorical_crossentropy`)."""

    def __init__(
        self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=_SBS,
        name="categorical_crossentropy", dtype=None,
    ):  # fmt: skip
        self._setup(categorical_crossentropy, locals())


class CategoricalFocalCrossentropy(_BuiltinLoss):
    """Categorical focal crossentropy (see `categorical_focal_crossentropy`)."""

    def __init__(
        self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
        reduction=_SBS, name="categorical_focal_crossentropy", dtype=None,
    ):  # fmt: skip
        self._setup(categorical_focal_crossentropy, locals())


class SparseCategoricalCrossentropy(_BuiltinLoss):
    """Crossentropy with integer labels (see `sparse_categorical_crossentropy`)."""

    def __init__(
        self, from_logits=False, ignore_class=None, reduction=_SBS, axis=-1,
        name="sparse_categorical_crossentropy", dtype=None,
    ):  # fmt: skip
        self._setup(sparse_categorical_crossentropy, locals())


class Dice(_BuiltinLoss):
    """Dice loss (see `dice`)."""

    def __init__(self, reduction=_SBS, name="dice", axis=None, dtype=None):
        self._setup(dice, locals())


class Tversky(_BuiltinLoss):
    """Tversky loss (see `tversky`)."""

    def __init__(self, alpha=0.5, beta=0.5, reduction=_SBS, name="tversky", axis=None, dtype=None):
        self._setup(tversky, locals())


# ------------------------------------------------------------------ registry
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
)  # fmt: skip
_FUNCTIONS = (
    kl_divergence, poisson, binary_crossentropy, binary_focal_crossentropy,
    categorical_crossentropy, categorical_focal_crossentropy, sparse_categorical_crossentropy,
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, cosine_similarity, log_cosh, huber, hinge, squared_hinge,
    categorical_hinge, dice, tversky,
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
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier) or get_registered_object(identifier)
    else:
        obj = identifier
    if callable(obj):
        return obj() if inspect.isclass(obj) else obj
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
