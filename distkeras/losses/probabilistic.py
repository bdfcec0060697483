"""Probabilistic losses: crossentropies (focal too), KL divergence, Poisson."""

from __future__ import annotations

import warnings
from typing import Any

from distkeras import ops
from distkeras.backend import current_module, epsilon
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.losses.loss import _SBS, _BuiltinLoss, _check_axis, _pair


def kl_divergence(y_true: Any, y_pred: Any) -> Tensor:
    """sum(y_true * log(y_true / y_pred), axis=-1), both clipped to [eps, 1]."""
    y_true, y_pred = _pair(y_true, y_pred, "kl_divergence", match_rank=False)
    y_true = ops.clip(y_true, epsilon(), 1.0)
    y_pred = ops.clip(y_pred, epsilon(), 1.0)
    return ops.sum(ops.multiply(y_true, ops.log(ops.divide(y_true, y_pred))), axis=-1)


def poisson(y_true: Any, y_pred: Any) -> Tensor:
    """mean(y_pred - y_true * log(y_pred + eps), axis=-1)."""
    y_true, y_pred = _pair(y_true, y_pred, "poisson", match_rank=False)
    return ops.mean(
        ops.subtract(y_pred, ops.multiply(y_true, ops.log(ops.add(y_pred, epsilon())))), axis=-1
    )


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
    y_true, y_pred = _pair(y_true, y_pred, "binary_crossentropy", match_rank=False, same=True)
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
    y_true, y_pred = _pair(y_true, y_pred, "binary_focal_crossentropy", match_rank=False, same=True)
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
    y_true, y_pred = _pair(y_true, y_pred, "categorical_crossentropy", match_rank=False, same=True)
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
    y_true, y_pred = _pair(y_true, y_pred, "categorical_focal_crossentropy", match_rank=False)
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
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != axis % max(y_pred.ndim, 1))
    if tuple(t.shape) != expected:
        raise ValueError(
            "Loss `sparse_categorical_crossentropy` needs integer labels shaped like the "
            f"predictions without their class axis, here {expected} (or with a class axis of 1): "
            f"y_true shape {tuple(t.shape)} does not fit y_pred shape {y_pred.shape}. "
            f"Received: y_true.shape={tuple(t.shape)}, y_pred.shape={y_pred.shape}"
        )
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


class KLDivergence(_BuiltinLoss):
    """Kullback-Leibler divergence (see `kl_divergence`)."""

    def __init__(self, reduction=_SBS, name="kl_divergence", dtype=None):
        self._setup(kl_divergence, locals())


class Poisson(_BuiltinLoss):
    """Poisson loss (see `poisson`)."""

    def __init__(self, reduction=_SBS, name="poisson", dtype=None):
        self._setup(poisson, locals())


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
