"""LocallyConnected1D and LocallyConnected2D with Keras 2.15 semantics (removed in Keras 3).

Like a convolution, but every output position has its own, unshared filters.
The kernel always has Keras 2.15's `implementation=1` layout,
`(output_positions, prod(kernel_size) * input_channels, filters)`, each row
ordered as the flattened input window (`(*kernel_size, channels)` for
channels_last, `(channels, *kernel_size)` for channels_first); the bias has
shape `(*output_spatial, filters)`. `implementation` 1, 2 and 3 are accepted
and compute the same function (2 and 3 also allow padding='same').
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from distkeras import activations, constraints, initializers, ops, regularizers
from distkeras.backend.autodiff import Tensor
from distkeras.backend.conv import extract_patches
from distkeras.layers.conv_base import join_shape, positive_int, split_shape
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer
from distkeras.ops.conv import standardize_data_format, standardize_padding, standardize_tuple


class _LocallyConnected(Layer):
    """Shared implementation of the locally connected layers."""

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        implementation: int = 1,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = positive_int("filters", filters)
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.padding = standardize_padding(padding)
        if implementation not in (1, 2, 3) or isinstance(implementation, bool):
            raise ValueError(
                "Unrecognized implementation mode, expected 1, 2 or 3. "
                f"Received: implementation={implementation!r}"
            )
        if self.padding != "valid" and implementation == 1:
            raise ValueError(
                f"Invalid border mode for {type(self).__name__} (only 'valid' is supported "
                f"if implementation is 1). Received: padding={padding!r}"
            )
        self.implementation = int(implementation)
        self.data_format = standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _geometry(self, spatial: Sequence[int]) -> tuple[tuple, tuple]:
        """Output sizes and `(low, high)` pads (Keras 2.15: 'same' windows start at -k//2)."""
        out, pads = [], []
        for i, k, s in zip(spatial, self.kernel_size, self.strides):
            if self.padding == "valid":
                out.append((i - k) // s + 1)
                pads.append((0, 0))
            else:
                o = -(-i // s)
                lo = k // 2
                out.append(o)
                pads.append((lo, max((o - 1) * s + k - i - lo, 0)))
        return tuple(out), tuple(pads)

    def build(self, input_shape: Sequence[int | None]) -> None:
        spatial, channels = split_shape(input_shape, self.data_format)
        if any(s is None for s in spatial) or channels is None:
            raise ValueError(
                f"The spatial dimensions of the inputs to a {type(self).__name__} layer should "
                f"be fully-defined. Received: input_shape={tuple(input_shape)}"
            )
        out, _ = self._geometry(spatial)
        if min(out) <= 0:
            raise ValueError(
                f"One of the dimensions in the output is <= 0 due to downsampling in "
                f"{self.name}. Consider increasing the input size. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            shape=(math.prod(out), math.prod(self.kernel_size) * channels, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(*out, self.filters),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        else:
            self.bias = None
        axis = -1 if self.data_format == "channels_last" else 1
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={axis: channels})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        last = self.data_format == "channels_last"
        if not last:
            x = ops.transpose(x, (0, *range(2, x.ndim), 1))
        out_sp, pads = self._geometry(x.shape[1:-1])
        patches = extract_patches(x, self.kernel_size, self.strides, pads)
        if not last:  # window rows flatten as (channels, *kernel_size)
            patches = ops.swapaxes(patches, -1, -2)
        n, positions = x.shape[0], math.prod(out_sp)
        cols = ops.transpose(ops.reshape(patches, (n, positions, -1)), (1, 0, 2))
        y = ops.transpose(ops.matmul(cols, self.kernel), (1, 0, 2))
        y = ops.reshape(y, (n, *out_sp, self.filters))
        if not last:
            y = ops.transpose(y, (0, self.rank + 1, *range(1, self.rank + 1)))
        if self.bias is not None:
            # Keras 2.15's bias_add reshapes (not transposes) the bias for channels_first.
            shape = tuple(self.bias.shape)
            bias = self.bias if last else ops.reshape(self.bias, (shape[-1], *shape[:-1]))
            y = ops.add(y, bias)
        return self.activation(y)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        spatial, _ = split_shape(input_shape, self.data_format)
        out = []
        for i, k, s in zip(spatial, self.kernel_size, self.strides):
            if i is None:
                out.append(None)
            else:
                out.append((i - k) // s + 1 if self.padding == "valid" else -(-i // s))
        return join_shape(input_shape[0], out, self.filters, self.data_format)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "implementation": self.implementation,
            }
        )
        return cfg


class LocallyConnected1D(_LocallyConnected):
    """Locally connected layer for `(batch, steps, channels)`: Conv1D with unshared weights.

    Args:
        filters: Number of output channels.
        kernel_size, strides: Int or tuple of 1 int.
        padding: 'valid' ('same' only with implementation 2 or 3).
        data_format: 'channels_last' (default) or 'channels_first'.
        activation, use_bias, initializers, regularizers, constraints: As in Dense.
        implementation: 1, 2 or 3 (Keras 2.15's modes; all compute the same here).

    Weights: kernel `(output_length, kernel_size * channels, filters)`, bias
    `(output_length, filters)`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            1, filters, kernel_size, strides, padding, data_format, activation, use_bias, **kwargs
        )


class LocallyConnected2D(_LocallyConnected):
    """Locally connected layer for `(batch, rows, cols, channels)`: Conv2D with unshared weights.

    Args: as LocallyConnected1D, with tuples of 2 ints.

    Weights: kernel `(out_rows * out_cols, kh * kw * channels, filters)`, bias
    `(out_rows, out_cols, filters)`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        activation: Any = None,
        use_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            2, filters, kernel_size, strides, padding, data_format, activation, use_bias, **kwargs
        )
