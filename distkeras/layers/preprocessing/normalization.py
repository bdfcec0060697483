"""`Normalization`: feature-wise standardization with statistics from `adapt` or given."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import epsilon, to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.layers.layer import Layer


def iter_batches(data: Any, steps: int | None = None):
    """Yields NumPy batches from an array, a PyDataset-like sequence or an iterable.

    Sequences and iterables may yield `(x, y)` tuples; only `x` is used.
    """
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        yield to_numpy(data)
        return
    if isinstance(data, (list, tuple)) and data and not hasattr(data[0], "__len__"):
        yield np.asarray(data)
        return
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, str) for d in data):
        yield np.asarray(data)
        return
    if (
        hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, (list, tuple))
    ):
        items: Any = (data[i] for i in range(len(data)))
    else:
        items = iter(data)
    for i, item in enumerate(items):
        if steps is not None and i >= steps:
            return
        if isinstance(item, tuple):
            item = item[0]
        yield to_numpy(item) if not isinstance(item, (list, str)) else np.asarray(item)


class Normalization(Layer):
    """Shifts and scales inputs to zero mean and unit variance per feature.

    `(x - mean) / max(sqrt(variance), epsilon)`; with `invert=True`
    `mean + x * max(sqrt(variance), epsilon)`.

    Args:
        axis: Axis (or tuple of axes) that keeps separate statistics; None
            for one scalar mean/variance. Defaults to -1 (features).
        mean: Mean to use instead of `adapt` (broadcast to the kept axes).
        variance: Variance to use instead of `adapt`.
        invert: Apply the inverse transform.
    """

    def __init__(
        self,
        axis: Any = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                "All `axis` values must be in the range [-ndim, ndim). "
                f"Received inputs with ndim={ndim}, while axis={self.axis}"
            )
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(
                    "All `axis` values to be kept must have a known shape. "
                    f"Received axis={self.axis}, inputs.shape={tuple(input_shape)}, "
                    f"with unknown axis at index {d}"
                )
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._stat_shape = tuple(int(input_shape[d]) for d in self._keep_axis)
        self._broadcast_shape = tuple(
            int(input_shape[d]) if d in self._keep_axis else 1 for d in range(ndim)
        )
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(
                shape=self._stat_shape, initializer="zeros", trainable=False, name="mean"
            )
            self.adapt_variance = self.add_weight(
                shape=self._stat_shape, initializer="ones", trainable=False, name="variance"
            )
        self.built = True

    def _stats(self, dtype: Any) -> tuple[Any, Any]:
        if self.input_mean is not None:
            mean = np.broadcast_to(np.asarray(self.input_mean, dtype), self._broadcast_shape)
            var = np.broadcast_to(np.asarray(self.input_variance, dtype), self._broadcast_shape)
            from distkeras.backend import current_module  # noqa: PLC0415

            xp = current_module()
            return xp.asarray(mean), xp.asarray(var)
        return (
            self.adapt_mean.data.reshape(self._broadcast_shape).astype(dtype, copy=False),
            self.adapt_variance.data.reshape(self._broadcast_shape).astype(dtype, copy=False),
        )

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Computes the mean and variance of `data` over the non-kept axes.

        Args:
            data: Array, or a PyDataset/iterable of batches (or `(x, y)` batches).
            steps: Number of batches to read from an iterable (all when None).
        """
        if self.input_mean is not None:
            raise ValueError(
                "Cannot `adapt` a Normalization layer that was given `mean` and `variance`. "
                f"Received: mean={self.input_mean}"
            )
        count = 0
        total_mean: np.ndarray | None = None
        total_m2: np.ndarray | None = None
        for batch in iter_batches(data, steps):
            batch = np.asarray(batch, dtype=np.float64)
            if not self.built:
                self._maybe_build(tuple(batch.shape))
            if batch.ndim != len(self._broadcast_shape):
                raise ValueError(
                    f"Layer {self.name!r} was built for inputs of rank "
                    f"{len(self._broadcast_shape)}. Received: data.shape={batch.shape}"
                )
            n = int(np.prod([batch.shape[d] for d in self._reduce_axis]))
            if n == 0:
                continue
            mean = batch.mean(axis=self._reduce_axis).reshape(self._stat_shape)
            m2 = (
                ((batch - mean.reshape(self._broadcast_shape)) ** 2)
                .sum(axis=self._reduce_axis)
                .reshape(self._stat_shape)
            )
            if total_mean is None:
                count, total_mean, total_m2 = n, mean, m2
            else:  # Chan et al. pairwise combination
                delta = mean - total_mean
                new = count + n
                total_mean = total_mean + delta * n / new
                total_m2 = total_m2 + m2 + delta**2 * count * n / new
                count = new
        if total_mean is None or total_m2 is None:
            raise ValueError(f"`adapt` received no data. Received: data={data!r}")
        self.adapt_mean.assign(total_mean.astype(self.adapt_mean.dtype))
        self.adapt_variance.assign((total_m2 / count).astype(self.adapt_variance.dtype))

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        if np.dtype(x.dtype).kind != "f":
            x = ops.cast(x, self.compute_dtype)
        mean, var = self._stats(x.dtype)
        scale = ops.maximum(ops.sqrt(var), epsilon())
        if self.invert:
            return ops.add(mean, ops.multiply(x, scale))
        return ops.divide(ops.subtract(x, mean), scale)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    @property
    def mean(self) -> np.ndarray:
        """The mean in use, broadcast to the input rank."""
        return to_numpy(self._stats(self.compute_dtype)[0])

    @property
    def variance(self) -> np.ndarray:
        """The variance in use, broadcast to the input rank."""
        return to_numpy(self._stats(self.compute_dtype)[1])

    def get_config(self) -> dict:
        cfg = super().get_config()

        def plain(v):
            return None if v is None else np.asarray(v).tolist()

        cfg.update(
            {
                "axis": self.axis,
                "invert": self.invert,
                "mean": plain(self.input_mean),
                "variance": plain(self.input_variance),
            }
        )
        return cfg
