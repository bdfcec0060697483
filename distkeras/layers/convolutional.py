"""Convolution layers: Conv1D/2D/3D, their transposes, separable and depthwise variants.

Keras 3 names, arguments and defaults. Weights: `kernel` of shape
`(*kernel_size, in_channels // groups, filters)` (transposed convolutions:
`(*kernel_size, filters, in_channels)`; depthwise: `(*kernel_size, in_channels,
depth_multiplier)`; separable: `depthwise_kernel` and `pointwise_kernel`) and
`bias` of shape `(filters,)`.
"""

from __future__ import annotations

from typing import Any

from distkeras.layers.conv_base import BaseConv, BaseConvTranspose
from distkeras.layers.depthwise_base import BaseDepthwiseConv, BaseSeparableConv


class Conv1D(BaseConv):
    """1D convolution over `(batch, steps, channels)` (channels_last).

    Args:
        filters: Number of output channels.
        kernel_size: Int or tuple of 1 int.
        strides: Int or tuple of 1 int.
        padding: 'valid', 'same' or 'causal' (output[t] sees only inputs[:t + 1]).
        data_format: 'channels_last' (default) or 'channels_first'.
        dilation_rate: Int or tuple of 1 int.
        groups: Number of channel groups.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint: As in Dense.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            1,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            groups,
            activation,
            use_bias,
            **kwargs,
        )


class Conv2D(BaseConv):
    """2D convolution over `(batch, height, width, channels)` (channels_last).

    Args: as Conv1D, with tuples of 2 ints; padding 'valid' or 'same'.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            2,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            groups,
            activation,
            use_bias,
            **kwargs,
        )


class Conv3D(BaseConv):
    """3D convolution over `(batch, d1, d2, d3, channels)` (channels_last).

    Args: as Conv1D, with tuples of 3 ints; padding 'valid' or 'same'.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1, 1),
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            3,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            groups,
            activation,
            use_bias,
            **kwargs,
        )


class Conv1DTranspose(BaseConvTranspose):
    """1D transposed convolution ("deconvolution").

    Args:
        filters: Number of output channels.
        kernel_size, strides, dilation_rate: Int or tuple of 1 int.
        padding: 'valid' or 'same'.
        output_padding: Int or tuple, extra length (less than the stride); None infers it.
        data_format: 'channels_last' (default) or 'channels_first'.
        activation, use_bias, initializers, regularizers, constraints: As in Dense.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            1,
            filters,
            kernel_size,
            strides,
            padding,
            output_padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


class Conv2DTranspose(BaseConvTranspose):
    """2D transposed convolution. Args: as Conv1DTranspose, with tuples of 2 ints."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            2,
            filters,
            kernel_size,
            strides,
            padding,
            output_padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


class Conv3DTranspose(BaseConvTranspose):
    """3D transposed convolution. Args: as Conv1DTranspose, with tuples of 3 ints."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1, 1),
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = (1, 1, 1),
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            3,
            filters,
            kernel_size,
            strides,
            padding,
            output_padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


class DepthwiseConv1D(BaseDepthwiseConv):
    """1D depthwise convolution: `depth_multiplier` filters per input channel.

    Args:
        kernel_size, strides, dilation_rate: Int or tuple of 1 int.
        padding: 'valid' or 'same'.
        depth_multiplier: Output channels per input channel.
        data_format: 'channels_last' (default) or 'channels_first'.
        activation, use_bias, depthwise_initializer, bias_initializer,
        depthwise_regularizer, bias_regularizer, activity_regularizer,
        depthwise_constraint, bias_constraint: As in Dense.
    """

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            1,
            depth_multiplier,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


class DepthwiseConv2D(BaseDepthwiseConv):
    """2D depthwise convolution. Args: as DepthwiseConv1D, with tuples of 2 ints."""

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            2,
            depth_multiplier,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


class SeparableConv1D(BaseSeparableConv):
    """1D separable convolution: depthwise, then pointwise to `filters` channels.

    Args:
        filters: Output channels.
        kernel_size, strides, dilation_rate: Int or tuple of 1 int.
        padding: 'valid' or 'same'.
        data_format: 'channels_last' (default) or 'channels_first'.
        depth_multiplier: Depthwise output channels per input channel.
        activation, use_bias, depthwise_/pointwise_/bias_ initializer, regularizer and
        constraint, activity_regularizer: As in Dense.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            1,
            depth_multiplier,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


class SeparableConv2D(BaseSeparableConv):
    """2D separable convolution. Args: as SeparableConv1D, with tuples of 2 ints."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            2,
            depth_multiplier,
            filters,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            **kwargs,
        )


# Keras's aliases.
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
