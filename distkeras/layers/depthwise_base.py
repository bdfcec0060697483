"""Base classes of the depthwise and separable convolution layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distkeras import constraints, initializers, ops, regularizers
from distkeras.backend.autodiff import Tensor
from distkeras.layers.conv_base import (
    ConvCommon,
    check_positive_output,
    conv_output_spatial,
    join_shape,
    known_channels,
    positive_int,
    split_shape,
)
from distkeras.layers.input_spec import InputSpec


class BaseDepthwiseConv(ConvCommon):
    """Depthwise convolution: every input channel gets `depth_multiplier` own filters.

    Args:
        rank: Number of spatial axes.
        depth_multiplier: Output channels per input channel.
        kernel_size, strides, dilation_rate, padding, data_format: As in BaseConv.
        depthwise_initializer, depthwise_regularizer, depthwise_constraint: For the kernel
            of shape `(*kernel_size, channels, depth_multiplier)`.
    """

    def __init__(
        self,
        rank: int,
        depth_multiplier: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(
            rank,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            bias_regularizer,
            activity_regularizer,
            bias_constraint,
            **kwargs,
        )
        self.depth_multiplier = positive_int("depth_multiplier", depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def build(self, input_shape: Sequence[int | None]) -> None:
        _, channels = split_shape(input_shape, self.data_format)
        channels = known_channels(self, channels)
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
            name="kernel",
        )
        self._add_bias(channels * self.depth_multiplier)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        k = self.kernel
        flat = ops.reshape(k, (*self.kernel_size, 1, k.shape[-2] * k.shape[-1]))
        out = ops.fused_conv(
            inputs,
            flat,
            self.bias,
            self.strides,
            self.padding,
            self.data_format,
            self.dilation_rate,
            self._fused_activation(),
        )
        return self._activate(out)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input of {type(self).__name__} must have rank {self.rank + 2}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        spatial, channels = split_shape(input_shape, self.data_format)
        out = conv_output_spatial(
            spatial, self.kernel_size, self.strides, self.padding, self.dilation_rate
        )
        check_positive_output(self, input_shape, out)
        filters = None if channels is None else channels * self.depth_multiplier
        return join_shape(input_shape[0], out, filters, self.data_format)

    def get_config(self) -> dict:
        cfg = self._common_config()
        cfg.update(
            {
                "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
            }
        )
        return cfg


class BaseSeparableConv(BaseDepthwiseConv):
    """Depthwise convolution followed by a pointwise (1x1) convolution to `filters` channels.

    Args:
        rank: Number of spatial axes.
        depth_multiplier: Depthwise output channels per input channel.
        filters: Output channels of the pointwise convolution.
        pointwise_initializer, pointwise_regularizer, pointwise_constraint: For the
            pointwise kernel of shape `(1, ..., channels * depth_multiplier, filters)`.
        Other arguments: as in BaseDepthwiseConv.
    """

    def __init__(
        self,
        rank: int,
        depth_multiplier: int,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(
            rank,
            depth_multiplier,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            depthwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            bias_regularizer,
            activity_regularizer,
            depthwise_constraint,
            bias_constraint,
            **kwargs,
        )
        self.filters = positive_int("filters", filters)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape: Sequence[int | None]) -> None:
        _, channels = split_shape(input_shape, self.data_format)
        channels = known_channels(self, channels)
        self.compute_output_shape(input_shape)
        self.depthwise_kernel = self.add_weight(
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
            name="depthwise_kernel",
        )
        self.pointwise_kernel = self.add_weight(
            shape=((1,) * self.rank + (channels * self.depth_multiplier, self.filters)),
            initializer=self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
            name="pointwise_kernel",
        )
        self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        x = ops.depthwise_conv(
            inputs,
            self.depthwise_kernel,
            self.strides,
            self.padding,
            self.data_format,
            self.dilation_rate,
        )
        out = ops.fused_conv(
            x,
            self.pointwise_kernel,
            self.bias,
            1,
            "valid",
            self.data_format,
            1,
            self._fused_activation(),
        )
        return self._activate(out)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        shape = super().compute_output_shape(input_shape)
        spatial, _ = split_shape(shape, self.data_format)
        return join_shape(shape[0], spatial, self.filters, self.data_format)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "filters": self.filters,
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
            }
        )
        return cfg
