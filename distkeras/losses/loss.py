"""The `Loss` base class, the function wrapper, and Keras's reductions.

Function forms (`mean_squared_error(y_true, y_pred)`, ...) return per-sample
losses: the input reduced over its last axis only. Class forms wrap them:
`loss.call(y_true, y_pred)` returns the same unreduced Tensor, and calling the
instance applies sample weights, masks and the reduction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distkeras import ops
from distkeras.backend import current_module, epsilon, floatx, standardize_dtype
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.saving.serialization_lib import serialize_keras_object
from distkeras.utils.naming import auto_name

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
_SBS = "sum_over_batch_size"


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
    s1, s2 = x1.shape, x2.shape
    r1, r2 = len(s1), len(s2)
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and s1[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, axis=-1)
    elif r2 == r1 + 1 and s2[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, axis=-1)
    return x1, x2


def _broadcastable(a: tuple, b: tuple) -> bool:
    return all(i == j or i == 1 or j == 1 for i, j in zip(reversed(a), reversed(b)))


def check_shapes(name: str, y_true_shape: Any, y_pred_shape: Any, same: bool = False) -> None:
    """Raises ValueError when a loss cannot combine labels and predictions of these shapes.

    Keras 3 rejects labels whose shape does not broadcast against the
    predictions (after rank matching), and for the crossentropies shapes that
    differ at all. Checking the Python shapes first turns what would be a
    broadcasting error, or a silent broadcast, into an error naming both.

    Args:
        name: The loss name, for the message.
        y_true_shape: Shape of the labels.
        y_pred_shape: Shape of the predictions.
        same: Whether the shapes must be equal rather than broadcastable.
    """
    t, p = tuple(y_true_shape), tuple(y_pred_shape)
    if t == p or (not same and _broadcastable(t, p)):
        return
    rule = "must be equal" if same else "must broadcast together"
    raise ValueError(
        f"Loss `{name}` cannot compare labels of y_true shape {t} with predictions of y_pred "
        f"shape {p}: the shapes {rule}. Received: y_true.shape={t}, y_pred.shape={p}"
    )


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


def weigh_values(
    values: Any, sample_weight: Any = None, mask: Any = None, reduction: Any = _SBS, dtype=None
) -> tuple[Tensor, Any]:
    """Per-sample losses times their weights (mask merged in), as Keras weighs them.

    The mask becomes part of the weights (see `_apply_mask`); the weights are
    then rank-matched to the losses with `squeeze_or_expand_to_same_rank`, so
    weights of shape (n,) or (n, 1) weigh losses of shape (n,), and weights of
    shape (n, t) or (n, t, 1) weigh the losses of a sequence output.

    Returns:
        The weighted values and the merged weights (None when there are none).

    Raises:
        ValueError: when the weights do not broadcast against the losses.
    """
    if dtype is not None or not isinstance(values, Tensor):
        values = convert_to_tensor(values, dtype=dtype)
    if sample_weight is None and mask is None:
        return values, None
    dtype = values.dtype
    if sample_weight is not None:
        sample_weight = convert_to_tensor(sample_weight, dtype=dtype)
    sample_weight = _apply_mask(sample_weight, mask, dtype, reduction)
    values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
    if values.shape != sample_weight.shape and not _broadcastable(
        values.shape, sample_weight.shape
    ):
        v, w = tuple(values.shape), tuple(sample_weight.shape)
        if mask is None:
            what, hint = "`sample_weight`", "give one weight per sample, (batch,) or (batch, 1)"
        else:  # Keras 3 rejects this too, e.g. a per-step mask on losses averaged over time
            what = "`sample_weight` (with the mask of y_pred merged in)"
            hint = "labels of shape (batch, steps) against an output (batch, steps, 1) are "
            hint += "averaged over the steps; give labels of shape (batch, steps, 1)"
        raise ValueError(
            f"{what} of shape {w} does not broadcast against the per-sample losses of shape "
            f"{v}: {hint}, or one weight per loss entry. "
            f"Received: sample_weight.shape={w}, losses.shape={v}"
        )
    return ops.multiply(values, sample_weight), sample_weight


def reduce_weighted_values(
    values: Any,
    sample_weight: Any = None,
    mask: Any = None,
    reduction: Any = "sum_over_batch_size",
    dtype: Any = None,
) -> Tensor:
    """Applies sample weights and a mask to per-sample losses, then the reduction."""
    reduction = standardize_reduction(reduction)
    values, sample_weight = weigh_values(values, sample_weight, mask, reduction, dtype)
    return reduce_values(values, sample_weight, reduction)


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
        self.name = name or auto_name(type(self).__name__)
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
            from distkeras.losses import get  # noqa: PLC0415

            config["fn"] = get(config["fn"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


# ------------------------------------------------------------------ helpers
def _pair(
    y_true: Any, y_pred: Any, name: str, match_rank: bool = True, same: bool = False
) -> tuple[Tensor, Tensor]:
    """Tensors of the prediction dtype, rank-matched as the Keras function does, shapes checked."""
    y_pred = convert_to_tensor(y_pred)
    if y_pred.data.dtype.kind != "f":
        y_pred = ops.cast(y_pred, floatx())
    y_true = convert_to_tensor(y_true, dtype=y_pred.dtype)
    if match_rank:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    check_shapes(name, y_true.shape, y_pred.shape, same=same)
    return y_true, y_pred


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.divide(x, ops.sqrt(ops.maximum(sq, epsilon() ** 2)))


def _check_axis(axis: Any) -> None:
    if isinstance(axis, bool):
        raise ValueError(
            f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}"
        )


def _in_unit_interval(v: Any) -> bool:
    return 0.0 <= v <= 1.0


def _non_negative(v: Any) -> bool:
    return v >= 0.0


# Argument -> (test, what the error says is expected), for the built-in losses.
_ARG_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "label_smoothing": (_in_unit_interval, "a float in the interval [0, 1]"),
    "gamma": (_non_negative, "a float >= 0"),
    "delta": (_non_negative, "a float >= 0"),
    "alpha": (_non_negative, "a float >= 0"),
    "beta": (_non_negative, "a float >= 0"),
    "q": (lambda v: 0.0 < v < 1.0, "a float in the interval (0, 1)"),
}


def validate_argument(name: str, value: Any) -> None:
    """Raises ValueError when a built-in loss argument is out of its valid range.

    Args:
        name: The argument name ('label_smoothing', 'gamma', 'delta', ...).
        value: The received value; arguments without a rule pass.
    """
    rule = _ARG_RULES.get(name)
    if rule is None or value is None:
        return
    test, expected = rule
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and test(value)
    if not ok:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={value!r}"
        )


class _BuiltinLoss(LossFunctionWrapper):
    """A built-in loss class: its config holds its own arguments, not the function.

    Subclasses call `self._setup(fn, locals())` from `__init__`; every argument
    other than reduction, name and dtype is passed on to `fn`.
    """

    def _setup(self, fn: Callable, args: dict) -> None:
        kwargs = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        reduction, name, dtype = kwargs.pop("reduction"), kwargs.pop("name"), kwargs.pop("dtype")
        for key, value in kwargs.items():
            validate_argument(key, value)
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
