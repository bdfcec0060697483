"""Mean, Sum and MeanMetricWrapper, plus the sample-weight helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module, floatx
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.metrics.metric import Metric
from distkeras.saving.serialization_lib import serialize_keras_object


def _array(x: Any, dtype: str | None = None) -> Any:
    """`x` (Tensor, array, list, scalar) as an array of the current module, cast to `dtype`."""
    xp = current_module()
    d = x.data if isinstance(x, Tensor) else x
    if not isinstance(d, xp.ndarray):
        d = xp.asarray(d)
    if dtype is not None and d.dtype != dtype:
        d = d.astype(dtype)
    return d


def squeeze_or_expand_to_same_rank(x1: Any, x2: Any, expand_rank_1: bool = True) -> tuple:
    """Squeezes or expands the last axis of one input when ranks differ by exactly one."""
    xp = current_module()

    def expand(x):
        return ops.expand_dims(x, -1) if isinstance(x, Tensor) else xp.expand_dims(x, -1)

    def squeeze(x):
        return ops.squeeze(x, -1) if isinstance(x, Tensor) else xp.squeeze(x, -1)

    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = expand(x2)
        else:
            x1 = squeeze(x1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = expand(x1)
        else:
            x2 = squeeze(x2)
    return x1, x2


def apply_mask(sample_weight: Any, mask: Any, dtype: str) -> Any:
    """Multiplies sample weights by a Keras mask (the mask itself when no weights)."""
    if mask is None:
        return sample_weight
    mask = _array(mask, dtype)
    if sample_weight is None:
        return mask
    sample_weight = _array(sample_weight, dtype)
    mask, sample_weight = squeeze_or_expand_to_same_rank(mask, sample_weight)
    return sample_weight * mask


def reduce_to_samplewise_values(
    values: Any, sample_weight: Any, reduce_fn: str, dtype: str | None
) -> tuple:
    """Weights `values` and reduces them to one value per sample, as Keras does.

    Args:
        values: Per-element values (a Tensor may carry a Keras mask).
        sample_weight: None, a scalar, or weights broadcastable to the values.
        reduce_fn: 'mean' or 'sum', used over the axes the weights lack.
        dtype: Dtype of the computation.

    Returns:
        `(values, sample_weight)` as arrays: values of shape `(batch,)` (or
        scalar), weights reduced the same way (or None).
    """
    xp = current_module()
    dtype = dtype or floatx()
    reduce = xp.mean if reduce_fn == "mean" else xp.sum
    mask = getattr(values, "_keras_mask", None) if isinstance(values, Tensor) else None
    values = _array(values, dtype)
    if sample_weight is not None:
        sample_weight = _array(sample_weight, dtype)
        if mask is not None:
            sample_weight = apply_mask(sample_weight, mask, dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        w_ndim, v_ndim = sample_weight.ndim, values.ndim
        if v_ndim > w_ndim:
            values = reduce(values, axis=tuple(range(w_ndim, v_ndim)))
        sample_weight = xp.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if w_ndim > 1:
            sample_weight = reduce(sample_weight, axis=tuple(range(1, w_ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


def _divide_no_nan(total: Any, count: Any) -> Tensor:
    xp = current_module()
    if total.ndim == 0 and count.ndim == 0 and xp is np:  # every Mean's result: read per step
        return Tensor(np.asarray(total / count if count != 0 else np.zeros_like(total)))
    safe = xp.where(count == 0, xp.ones_like(count), count)
    return Tensor(xp.where(count == 0, xp.zeros_like(total), total / safe))


class Sum(Metric):
    """The (weighted) sum of the values seen, as `keras.metrics.Sum`.

    State: `total`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, name: str = "sum", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "zeros", dtype=self.dtype, name="total")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds the (weighted) values."""
        values, _ = reduce_to_samplewise_values(values, sample_weight, "sum", self.dtype)
        self.total.assign_add(current_module().sum(values))

    def result(self) -> Tensor:
        return Tensor(self.total.data.copy())


class Mean(Metric):
    """The (weighted) mean of the values seen, as `keras.metrics.Mean`.

    State: `total` (weighted sum of per-sample values) and `count` (sum of
    weights, or number of samples), so the result is `total / count`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, name: str = "mean", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "zeros", dtype=self.dtype, name="total")
        self.count = self.add_variable((), "zeros", dtype=self.dtype, name="count")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds the (weighted) values and their weight."""
        xp = current_module()
        if type(values) is float and type(sample_weight) in (int, float) and xp is np:
            # A scalar with a scalar weight (the loss trackers, every step): the array
            # path's float32 product and sums, without its shape handling.
            dt = self.total.data.dtype
            w = np.asarray(sample_weight, dtype=dt)
            self.total.data += np.asarray(values, dtype=dt) * w
            self.count.data += w
            return
        values, sample_weight = reduce_to_samplewise_values(
            values, sample_weight, "mean", self.dtype
        )
        self.total.assign_add(xp.sum(values))
        if sample_weight is not None:
            n = xp.sum(sample_weight)
        elif values.ndim >= 1:
            n = values.shape[0]
        else:
            n = 1
        self.count.assign_add(xp.asarray(n, dtype=self.dtype))

    def result(self) -> Tensor:
        return _divide_no_nan(self.total.data, self.count.data)


class MeanMetricWrapper(Mean):
    """The mean of `fn(y_true, y_pred, **kwargs)` over all samples seen.

    Args:
        fn: Function returning per-sample values.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        **kwargs: Passed on to `fn`.
    """

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates `fn(y_true, y_pred)` for one batch."""
        mask = getattr(y_pred, "_keras_mask", None) if isinstance(y_pred, Tensor) else None
        with no_grad():
            values = self._fn(y_true, y_pred, **self._fn_kwargs)
        sample_weight = apply_mask(sample_weight, mask, self.dtype)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict:
        config = {"name": self.name, "dtype": self.dtype, "fn": serialize_keras_object(self._fn)}
        config.update(serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config: dict) -> MeanMetricWrapper:
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            from distkeras.metrics import deserialize  # noqa: PLC0415

            config["fn"] = deserialize(config["fn"])
        return cls(**config)
