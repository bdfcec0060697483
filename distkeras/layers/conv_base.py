"""Base classes of the convolution layers: argument checks, weights, shapes, configs.

The concrete layers (Conv1D ... DepthwiseConv2D) live in `convolutional.py`;
the computation is `distkeras.ops.conv` on fused im2col + GEMM primitives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras import activations, constraints, initializers, ops, regularizers
from distkeras.backend.autodiff import Tensor
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer
from distkeras.ops.conv import (
    conv_transpose_geometry,
    standardize_data_format,
    standardize_padding,
    standardize_tuple,
)


def positive_int(name: str, value: Any) -> int:
    """Validates a strictly positive integer argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a strictly positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def split_shape(shape: Sequence[int | None], data_format: str) -> tuple:
    """`(spatial, channels)` of a full input shape."""
    shape = tuple(shape)
    if data_format == "channels_last":
        return shape[1:-1], shape[-1]
    return shape[2:], shape[1]


def join_shape(batch: Any, spatial: Sequence, channels: Any, data_format: str) -> tuple:
    """The full shape from batch, spatial and channel sizes."""
    if data_format == "channels_last":
        return (batch, *spatial, channels)
    return (batch, channels, *spatial)


def conv_output_spatial(
    spatial: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> tuple:
    """Spatial output sizes of a convolution or pooling (None stays None)."""
    out = []
    for i, k, s, d in zip(spatial, kernel, strides, dilation):
        if i is None:
            out.append(None)
        elif padding == "valid":
            out.append((i - d * (k - 1) - 1) // s + 1)
        else:
            out.append((i - 1) // s + 1)
    return tuple(out)


def check_positive_output(layer: Layer, input_shape: Sequence, out_spatial: Sequence) -> None:
    """Raises Keras's error when an output size would be zero or negative."""
    if any(o is not None and o <= 0 for o in out_spatial):
        raise ValueError(
            "Computed output size would be zero or negative. Received "
            f"inputs shape={tuple(input_shape)}, kernel_size="
            f"{getattr(layer, 'kernel_size', getattr(layer, 'pool_size', None))}, "
            f"strides={layer.strides}, padding={layer.padding}, "
            f"dilation_rate={getattr(layer, 'dilation_rate', None)}."
        )


def _check_strides_dilation(strides: tuple, dilation: tuple) -> None:
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError(
            "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
            f"Received: strides={strides} and dilation_rate={dilation}"
        )


def known_channels(layer: Layer, channels: Any) -> int:
    if channels is None:
        raise ValueError(
            f"The channel dimension of the inputs to {type(layer).__name__} should be defined. "
            f"Received: input_shape with channels=None"
        )
    return int(channels)


class ConvCommon(Layer):
    """Stores the arguments shared by all convolution layers."""

    def __init__(
        self,
        rank: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        bias_initializer: Any = "zeros",
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        bias_constraint: Any = None,
        allow_causal: bool = False,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding, allow_causal=allow_causal)
        self.data_format = standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _add_bias(self, size: int) -> None:
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(size,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        else:
            self.bias = None

    def _fused_activation(self) -> str | None:
        """'relu' when the activation is plain relu (then applied inside the conv node)."""
        return "relu" if self.activation is activations.relu else None

    def _activate(self, x: Tensor) -> Tensor:
        if self.activation is None or self._fused_activation():
            return x
        return self.activation(x)

    def _common_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return cfg


class BaseConv(ConvCommon):
    """N-D convolution layer: `activation(conv(inputs, kernel) + bias)`.

    Args:
        rank: Number of spatial axes.
        filters: Number of output channels.
        kernel_size: Int or tuple of `rank` ints.
        strides: Int or tuple; `strides > 1` excludes `dilation_rate > 1`.
        padding: 'valid', 'same' (or 'causal' for rank 1), case-insensitive.
        data_format: 'channels_last' (default) or 'channels_first'.
        dilation_rate: Int or tuple.
        groups: Input channels and filters are split into this many groups.
        activation, use_bias, *_initializer, *_regularizer, *_constraint: As in Dense.
    """

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
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
            allow_causal=rank == 1,
            **kwargs,
        )
        self.filters = positive_int("filters", filters)
        self.groups = positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}"
            )
        _check_strides_dilation(self.strides, self.dilation_rate)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def build(self, input_shape: Sequence[int | None]) -> None:
        spatial, channels = split_shape(input_shape, self.data_format)
        channels = known_channels(self, channels)
        if channels % self.groups:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of groups. "
                f"Received groups={self.groups}, but the input has {channels} channels "
                f"(full input shape is {tuple(input_shape)})."
            )
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        out = ops.fused_conv(
            inputs,
            self.kernel,
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
        spatial, _ = split_shape(input_shape, self.data_format)
        out = conv_output_spatial(
            spatial, self.kernel_size, self.strides, self.padding, self.dilation_rate
        )
        check_positive_output(self, input_shape, out)
        return join_shape(input_shape[0], out, self.filters, self.data_format)

    def get_config(self) -> dict:
        cfg = self._common_config()
        cfg.update(
            {
                "filters": self.filters,
                "groups": self.groups,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
            }
        )
        return cfg


class BaseConvTranspose(ConvCommon):
    """N-D transposed convolution layer (the gradient of a convolution w.r.t. its input).

    Args:
        rank: Number of spatial axes.
        filters: Number of output channels.
        kernel_size, strides, dilation_rate: Int or tuple of `rank` ints.
        padding: 'valid' or 'same'.
        output_padding: Int or tuple, extra size added to every spatial axis
            (each strictly less than the stride); None infers it.
        data_format: 'channels_last' (default) or 'channels_first'.
        activation, use_bias, *_initializer, *_regularizer, *_constraint: As in Dense.
    """

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
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
        self.filters = positive_int("filters", filters)
        self.output_padding = (
            None
            if output_padding is None
            else standardize_tuple(output_padding, rank, "output_padding", allow_zero=True)
        )
        if self.output_padding is not None:
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(
                        "`output_padding` must be strictly less than `strides` for all "
                        f"dimensions. At dimension {i}, `output_padding` is {op} but `strides` "
                        f"is {s}. Received: output_padding={self.output_padding}, "
                        f"strides={self.strides}"
                    )
        _check_strides_dilation(self.strides, self.dilation_rate)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def build(self, input_shape: Sequence[int | None]) -> None:
        _, channels = split_shape(input_shape, self.data_format)
        channels = known_channels(self, channels)
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, self.filters, channels),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self._add_bias(self.filters)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis(): channels})
        self.built = True

    def _fused_activation(self) -> None:
        return None

    def call(self, inputs: Tensor) -> Tensor:
        out = ops.fused_conv_transpose(
            inputs,
            self.kernel,
            self.bias,
            self.strides,
            self.padding,
            self.output_padding,
            self.data_format,
            self.dilation_rate,
        )
        return self._activate(out)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input of {type(self).__name__} must have rank {self.rank + 2}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        spatial, _ = split_shape(input_shape, self.data_format)
        out = []
        for ax, size in enumerate(spatial):
            if size is None:
                out.append(None)
                continue
            op = None if self.output_padding is None else (self.output_padding[ax],)
            _, (o,) = conv_transpose_geometry(
                (size,),
                (self.kernel_size[ax],),
                (self.strides[ax],),
                self.padding,
                op,
                (self.dilation_rate[ax],),
            )
            out.append(o)
        check_positive_output(self, input_shape, out)
        return join_shape(input_shape[0], out, self.filters, self.data_format)

    def get_config(self) -> dict:
        cfg = self._common_config()
        cfg.update(
            {
                "filters": self.filters,
                "output_padding": self.output_padding,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
            }
        )
        return cfg


__all__ = [
    "BaseConv",
    "BaseConvTranspose",
    "conv_output_spatial",
]
