"""Convolution and pooling operations, as `keras.ops.nn` names them.

`conv`, `conv_transpose`, `depthwise_conv`, `separable_conv`, `max_pool` and
`average_pool` take Keras's arguments (padding strings, `data_format`,
`dilation_rate`) and run on the fused primitives of `distkeras.backend.conv`.
`fused_conv` and `fused_conv_transpose` also take a bias (one graph node
instead of two); the convolution layers use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distkeras.backend import conv as C
from distkeras.backend import pooling
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, convert_to_tensor

__all__ = [
    "average_pool",
    "conv",
    "conv_transpose",
    "depthwise_conv",
    "fused_conv",
    "fused_conv_transpose",
    "max_pool",
    "separable_conv",
]

IntOrTuple = int | Sequence[int]


# ---------------------------------------------------------------- argument handling
def standardize_data_format(data_format: str | None) -> str:
    """Returns 'channels_last' for None, else validates the string."""
    if data_format is None:
        return "channels_last"
    value = str(data_format).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}"
        )
    return value


def standardize_tuple(value: Any, n: int, name: str, allow_zero: bool = False) -> tuple:
    """An int or a sequence of `n` ints as a tuple of `n` ints (positive unless allow_zero)."""
    if isinstance(value, bool):
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers. Received: {name}={value!r}"
        )
    if isinstance(value, int) or (hasattr(value, "__index__") and not hasattr(value, "__len__")):
        out = (int(value),) * n
    else:
        try:
            out = tuple(value)
        except TypeError:
            out = None
        if (
            out is None
            or len(out) != n
            or any(isinstance(v, bool) or not hasattr(v, "__index__") for v in out)
        ):
            raise ValueError(
                f"The `{name}` argument must be a tuple of {n} integers. Received: {name}={value!r}"
            )
        out = tuple(int(v) for v in out)
    bad = [v for v in out if (v < 0 if allow_zero else v <= 0)]
    if bad:
        req = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"The `{name}` argument must be a tuple of {n} integers. Values {req} are required, "
            f"found {sorted(set(bad))} that does not satisfy the requirement. "
            f"Received: {name}={value!r}"
        )
    return out


def standardize_padding(padding: Any, allow_causal: bool = False) -> str:
    """Lower-cases and validates a padding string ('valid', 'same', optionally 'causal')."""
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    value = padding.lower() if isinstance(padding, str) else None
    if value not in allowed:
        raise ValueError(
            f"The `padding` argument must be one of {allowed}. Received: padding={padding!r}"
        )
    return value


def conv_pads(
    padding: str,
    in_sp: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> tuple:
    """`(low, high)` zero padding per spatial axis for Keras's 'valid'/'same'/'causal'."""
    pads = []
    for i, k, s, d in zip(in_sp, kernel, strides, dilation):
        keff = d * (k - 1) + 1
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "causal":
            pads.append((keff - 1, 0))
        else:
            total = max((-(-i // s) - 1) * s + keff - i, 0)
            pads.append((total // 2, total - total // 2))
    return tuple(pads)


def conv_transpose_geometry(
    in_sp: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: str,
    output_padding: Sequence[int] | None,
    dilation: Sequence[int],
) -> tuple[tuple, tuple]:
    """`(crop, out_shape)` of a Keras transposed convolution (TensorFlow's conventions)."""
    crop, out = [], []
    for ax, (i, k, s, d) in enumerate(zip(in_sp, kernel, strides, dilation)):
        keff = d * (k - 1) + 1
        op = None if output_padding is None else output_padding[ax]
        if padding == "valid":
            op = max(keff, s) - keff if op is None else op
            left = keff - 1
            size = (i - 1) * s + keff + op
        else:
            pad_len = s + keff - 2 if op is None else keff + keff % 2 - 2 + op
            left = min(pad_len // 2 + pad_len % 2, keff - 1)
            size = i * s if op is None else (i - 1) * s + keff % 2 + op
        crop.append(keff - 1 - left)
        out.append(size)
    return tuple(crop), tuple(out)


def _to_last(x: Tensor, data_format: str) -> Tensor:
    if data_format == "channels_first":
        return P.transpose(x, (0, *range(2, x.ndim), 1))
    return x


def _to_format(x: Tensor, data_format: str) -> Tensor:
    if data_format == "channels_first":
        return P.transpose(x, (0, x.ndim - 1, *range(1, x.ndim - 1)))
    return x


def _check_rank(x: Tensor, name: str, ranks: tuple = (3, 4, 5)) -> int:
    if x.ndim not in ranks:
        raise ValueError(
            f"`{name}` expects inputs of rank {' or '.join(map(str, ranks))} (batch, spatial "
            f"axes, channels). Received: inputs.shape={x.shape}"
        )
    return x.ndim - 2


# ---------------------------------------------------------------- convolution
def fused_conv(
    inputs: Any,
    kernel: Any,
    bias: Any = None,
    strides: IntOrTuple = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: IntOrTuple = 1,
    activation: str | None = None,
) -> Tensor:
    """`conv(inputs, kernel) + bias` as one node; also accepts padding='causal' (1D).

    Args:
        inputs: `(batch, *spatial, channels)` (or channels first).
        kernel: `(*kernel_size, channels // groups, filters)`; `groups` is
            `channels // kernel.shape[-2]`.
        bias: Optional `(filters,)`.
        strides, dilation_rate: Int or one per spatial axis.
        padding: 'valid', 'same' or (1D only) 'causal'.
        data_format: 'channels_last' (default) or 'channels_first'.
        activation: None, or 'relu' to apply it inside the same node.
    """
    x = convert_to_tensor(inputs)
    kernel = convert_to_tensor(kernel)
    r = _check_rank(x, "conv")
    data_format = standardize_data_format(data_format)
    padding = standardize_padding(padding, allow_causal=r == 1)
    strides = standardize_tuple(strides, r, "strides")
    dilation = standardize_tuple(dilation_rate, r, "dilation_rate")
    if kernel.ndim != r + 2:
        raise ValueError(
            f"The kernel of a {r}D convolution must have rank {r + 2}. "
            f"Received: kernel.shape={kernel.shape}"
        )
    x = _to_last(x, data_format)
    channels, kin = x.shape[-1], kernel.shape[-2]
    if kin == 0 or channels % kin:
        raise ValueError(
            "The number of input channels must be evenly divisible by kernel.shape[-2]. "
            f"Received: inputs.shape={tuple(x.shape)}, kernel.shape={kernel.shape}"
        )
    groups = channels // kin
    ksize = kernel.shape[:r]
    pads = conv_pads(padding, x.shape[1:-1], ksize, strides, dilation)
    for size, k, d, (lo, hi) in zip(x.shape[1:-1], ksize, dilation, pads):
        if size + lo + hi < d * (k - 1) + 1:
            raise ValueError(
                "Computed output size would be zero or negative. "
                f"Received: inputs.shape={tuple(x.shape)}, kernel.shape={kernel.shape}, "
                f"strides={strides}, padding={padding}, dilation_rate={dilation}"
            )
    out = C.conv(x, kernel, bias, strides, pads, dilation, groups, activation)
    return _to_format(out, data_format)


def conv(
    inputs: Any,
    kernel: Any,
    strides: IntOrTuple = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: IntOrTuple = 1,
) -> Tensor:
    """General N-D convolution (cross-correlation), as `keras.ops.conv`.

    Args:
        inputs: Rank 3, 4 or 5 tensor, `(batch, *spatial, channels)` for
            channels_last.
        kernel: `(*kernel_size, channels // groups, filters)`.
        strides: Int or tuple, stride per spatial axis.
        padding: 'valid' or 'same'.
        data_format: 'channels_last' (default) or 'channels_first'.
        dilation_rate: Int or tuple, dilation per spatial axis.
    """
    if isinstance(padding, str) and padding.lower() == "causal":
        raise ValueError(
            "`ops.conv` supports padding 'valid' or 'same' (Conv1D handles 'causal'). "
            f"Received: padding={padding!r}"
        )
    return fused_conv(inputs, kernel, None, strides, padding, data_format, dilation_rate)


def depthwise_conv(
    inputs: Any,
    kernel: Any,
    strides: IntOrTuple = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: IntOrTuple = 1,
) -> Tensor:
    """Depthwise convolution: each input channel gets its own `depth_multiplier` filters.

    Args:
        inputs: `(batch, *spatial, channels)` (or channels first).
        kernel: `(*kernel_size, channels, depth_multiplier)`; output channel
            `c * depth_multiplier + m` comes from input channel `c`.
    """
    kernel = convert_to_tensor(kernel)
    r = kernel.ndim - 2
    ksize, channels, mult = kernel.shape[:r], kernel.shape[-2], kernel.shape[-1]
    flat = P.reshape(kernel, (*ksize, 1, channels * mult))
    return fused_conv(inputs, flat, None, strides, padding, data_format, dilation_rate)


def separable_conv(
    inputs: Any,
    depthwise_kernel: Any,
    pointwise_kernel: Any,
    strides: IntOrTuple = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: IntOrTuple = 1,
) -> Tensor:
    """A depthwise convolution followed by a 1x1 (pointwise) convolution.

    Args:
        depthwise_kernel: `(*kernel_size, channels, depth_multiplier)`.
        pointwise_kernel: `(1, ..., channels * depth_multiplier, filters)`.
    """
    x = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format, dilation_rate)
    return fused_conv(x, pointwise_kernel, None, 1, "valid", data_format, 1)


def fused_conv_transpose(
    inputs: Any,
    kernel: Any,
    bias: Any = None,
    strides: IntOrTuple = 1,
    padding: str = "valid",
    output_padding: IntOrTuple | None = None,
    data_format: str | None = None,
    dilation_rate: IntOrTuple = 1,
) -> Tensor:
    """`conv_transpose(inputs, kernel) + bias` as one node."""
    x = convert_to_tensor(inputs)
    kernel = convert_to_tensor(kernel)
    r = _check_rank(x, "conv_transpose")
    data_format = standardize_data_format(data_format)
    padding = standardize_padding(padding)
    strides = standardize_tuple(strides, r, "strides")
    dilation = standardize_tuple(dilation_rate, r, "dilation_rate")
    if output_padding is not None:
        output_padding = standardize_tuple(output_padding, r, "output_padding", allow_zero=True)
    x = _to_last(x, data_format)
    if kernel.ndim != r + 2 or kernel.shape[-1] != x.shape[-1]:
        raise ValueError(
            "The kernel of a transposed convolution must have shape "
            "(*kernel_size, filters, input_channels). "
            f"Received: inputs.shape={tuple(x.shape)}, kernel.shape={kernel.shape}"
        )
    crop, out_sp = conv_transpose_geometry(
        x.shape[1:-1], kernel.shape[:r], strides, padding, output_padding, dilation
    )
    if min(out_sp) <= 0:
        raise ValueError(
            "Computed output size would be zero or negative. "
            f"Received: inputs.shape={tuple(x.shape)}, kernel.shape={kernel.shape}"
        )
    out = C.conv_transpose(x, kernel, bias, strides, dilation, crop, out_sp)
    return _to_format(out, data_format)


def conv_transpose(
    inputs: Any,
    kernel: Any,
    strides: IntOrTuple = 1,
    padding: str = "valid",
    output_padding: IntOrTuple | None = None,
    data_format: str | None = None,
    dilation_rate: IntOrTuple = 1,
) -> Tensor:
    """Transposed convolution (deconvolution), as `keras.ops.conv_transpose`.

    Args:
        inputs: `(batch, *spatial, in_channels)` (or channels first).
        kernel: `(*kernel_size, filters, in_channels)`.
        strides, dilation_rate: Int or tuple per spatial axis.
        padding: 'valid' or 'same'.
        output_padding: Extra size added to one side of every spatial axis
            (each strictly less than the stride); None infers it.
        data_format: 'channels_last' (default) or 'channels_first'.
    """
    return fused_conv_transpose(
        inputs, kernel, None, strides, padding, output_padding, data_format, dilation_rate
    )


# ---------------------------------------------------------------- pooling
def _pool(kind: str, inputs, pool_size, strides, padding, data_format) -> Tensor:
    x = convert_to_tensor(inputs)
    r = _check_rank(x, f"{kind}_pool")
    data_format = standardize_data_format(data_format)
    padding = standardize_padding(padding)
    pool = standardize_tuple(pool_size, r, "pool_size")
    strides = pool if strides is None else standardize_tuple(strides, r, "strides")
    x = _to_last(x, data_format)
    in_sp = x.shape[1:-1]
    if padding == "valid" and any(i < p for i, p in zip(in_sp, pool)):
        raise ValueError(
            "Computed output size would be zero or negative. "
            f"Received: inputs.shape={tuple(x.shape)}, pool_size={pool}, strides={strides}, "
            f"padding={padding}"
        )
    pads = conv_pads(padding, in_sp, pool, strides, (1,) * r)
    fn = pooling.max_pool if kind == "max" else pooling.average_pool
    return _to_format(fn(x, pool, strides, pads), data_format)


def max_pool(
    inputs: Any,
    pool_size: IntOrTuple,
    strides: IntOrTuple | None = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """Max pooling, as `keras.ops.max_pool` (`strides` defaults to `pool_size`)."""
    return _pool("max", inputs, pool_size, strides, padding, data_format)


def average_pool(
    inputs: Any,
    pool_size: IntOrTuple,
    strides: IntOrTuple | None = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Tensor:
    """Average pooling, as `keras.ops.average_pool`; 'same' padding averages real values only."""
    return _pool("average", inputs, pool_size, strides, padding, data_format)
