"""Pooling layers: max and average pooling (1D/2D/3D), global pooling, and Keras's aliases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distkeras import ops
from distkeras.backend.autodiff import Tensor
from distkeras.layers.conv_base import (
    check_positive_output,
    conv_output_spatial,
    join_shape,
    split_shape,
)
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer
from distkeras.ops.conv import standardize_data_format, standardize_padding, standardize_tuple


class BasePooling(Layer):
    """Max or average pooling over windows of `pool_size`, moved by `strides`.

    Args:
        pool_size: Int or tuple, the window size.
        strides: Int or tuple; None uses `pool_size`.
        pool_dimensions: Number of spatial axes.
        pool_mode: 'max' or 'average'.
        padding: 'valid' or 'same' (case-insensitive). With 'same', padded
            values never win a max and are not counted in an average.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any,
        strides: Any,
        pool_dimensions: int,
        pool_mode: str = "max",
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.pool_size = standardize_tuple(pool_size, pool_dimensions, "pool_size")
        self.strides = standardize_tuple(
            self.pool_size if strides is None else strides, pool_dimensions, "strides"
        )
        if pool_mode not in ("max", "average"):
            raise ValueError(
                f"`pool_mode` must be either 'max' or 'average'. Received: pool_mode={pool_mode!r}"
            )
        self.pool_mode = pool_mode
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=pool_dimensions + 2)

    def call(self, inputs: Tensor) -> Tensor:
        fn = ops.max_pool if self.pool_mode == "max" else ops.average_pool
        return fn(inputs, self.pool_size, self.strides, self.padding, self.data_format)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        spatial, channels = split_shape(input_shape, self.data_format)
        out = conv_output_spatial(
            spatial, self.pool_size, self.strides, self.padding, (1,) * len(self.pool_size)
        )
        check_positive_output(self, input_shape, out)
        return join_shape(input_shape[0], out, channels, self.data_format)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "pool_size": self.pool_size,
                "padding": self.padding,
                "strides": self.strides,
                "data_format": self.data_format,
            }
        )
        return cfg


class MaxPooling1D(BasePooling):
    """Max pooling for 1D inputs `(batch, steps, channels)` (channels_last).

    Args:
        pool_size: Int or tuple of 1 ints, the window size.
        strides: Int, tuple of 1 ints, or None (uses `pool_size`).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(pool_size, strides, 1, "max", padding, data_format, name=name, **kwargs)


class MaxPooling2D(BasePooling):
    """Max pooling for 2D inputs `(batch, rows, cols, channels)` (channels_last).

    Args:
        pool_size: Int or tuple of 2 ints, the window size.
        strides: Int, tuple of 2 ints, or None (uses `pool_size`).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(pool_size, strides, 2, "max", padding, data_format, name=name, **kwargs)


class MaxPooling3D(BasePooling):
    """Max pooling for 3D inputs `(batch, d1, d2, d3, channels)` (channels_last).

    Args:
        pool_size: Int or tuple of 3 ints, the window size.
        strides: Int, tuple of 3 ints, or None (uses `pool_size`).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any = (2, 2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(pool_size, strides, 3, "max", padding, data_format, name=name, **kwargs)


class AveragePooling1D(BasePooling):
    """Average pooling for 1D inputs `(batch, steps, channels)` (channels_last).

    Args:
        pool_size: Int or tuple of 1 ints, the window size.
        strides: Int, tuple of 1 ints, or None (uses `pool_size`).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            pool_size, strides, 1, "average", padding, data_format, name=name, **kwargs
        )


class AveragePooling2D(BasePooling):
    """Average pooling for 2D inputs `(batch, rows, cols, channels)` (channels_last).

    Args:
        pool_size: Int or tuple of 2 ints, the window size.
        strides: Int, tuple of 2 ints, or None (uses `pool_size`).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            pool_size, strides, 2, "average", padding, data_format, name=name, **kwargs
        )


class AveragePooling3D(BasePooling):
    """Average pooling for 3D inputs `(batch, d1, d2, d3, channels)` (channels_last).

    Args:
        pool_size: Int or tuple of 3 ints, the window size.
        strides: Int, tuple of 3 ints, or None (uses `pool_size`).
        padding: 'valid' or 'same' (case-insensitive).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(
        self,
        pool_size: Any = (2, 2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            pool_size, strides, 3, "average", padding, data_format, name=name, **kwargs
        )


class BaseGlobalPooling(Layer):
    """Max or mean over all spatial axes.

    Args:
        pool_dimensions: Number of spatial axes.
        data_format: 'channels_last' (default) or 'channels_first'.
        keepdims: Keep the spatial axes with size 1.
    """

    _mode = "max"

    def __init__(
        self,
        pool_dimensions: int,
        data_format: str | None = None,
        keepdims: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=pool_dimensions + 2)
        self._dims = pool_dimensions

    def _axes(self) -> tuple:
        start = 1 if self.data_format == "channels_last" else 2
        return tuple(range(start, start + self._dims))

    def call(self, inputs: Tensor) -> Tensor:
        fn = ops.max if self._mode == "max" else ops.mean
        return fn(inputs, axis=self._axes(), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        _, channels = split_shape(input_shape, self.data_format)
        spatial = (1,) * self._dims if self.keepdims else ()
        return join_shape(input_shape[0], spatial, channels, self.data_format)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return cfg


class GlobalMaxPooling1D(BaseGlobalPooling):
    """Max over the steps of `(batch, steps, channels)`.

    Args:
        data_format: 'channels_last' (default) or 'channels_first'.
        keepdims: Keep the steps axis with size 1.
    """

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(1, data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(BaseGlobalPooling):
    """Max over the two spatial axes. Args: as GlobalMaxPooling1D."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalMaxPooling3D(BaseGlobalPooling):
    """Max over the three spatial axes. Args: as GlobalMaxPooling1D."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(3, data_format, keepdims, **kwargs)


class GlobalAveragePooling1D(BaseGlobalPooling):
    """Mean over the steps of `(batch, steps, channels)`; masked steps are left out.

    Args:
        data_format: 'channels_last' (default) or 'channels_first'.
        keepdims: Keep the steps axis with size 1.
    """

    _mode = "average"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(1, data_format, keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs: Tensor, mask: Any = None) -> Tensor:
        if mask is None:
            return super().call(inputs)
        steps = self._axes()[0]
        m = ops.cast(
            ops.expand_dims(mask, 2 if self.data_format == "channels_last" else 1), inputs.dtype
        )
        total = ops.sum(ops.multiply(inputs, m), axis=steps, keepdims=self.keepdims)
        return ops.divide(total, ops.sum(m, axis=steps, keepdims=self.keepdims))

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> None:
        return None


class GlobalAveragePooling2D(BaseGlobalPooling):
    """Mean over the two spatial axes. Args: as GlobalAveragePooling1D."""

    _mode = "average"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalAveragePooling3D(BaseGlobalPooling):
    """Mean over the three spatial axes. Args: as GlobalAveragePooling1D."""

    _mode = "average"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(3, data_format, keepdims, **kwargs)


# Keras's aliases.
MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
MaxPool3D = MaxPooling3D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
AvgPool3D = AveragePooling3D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalMaxPool3D = GlobalMaxPooling3D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
