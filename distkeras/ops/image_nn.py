"""Image-shaped `keras.ops` (top level, from Keras's `ops.nn`): pixel shuffles,
adaptive pooling, and `unfold` / `fold` (im2col and col2im).

Pixel shuffles are reshapes and transposes. Adaptive pooling uses PyTorch's
windows, which Keras 3 computes too: output `i` of an axis of length `L`
pooled to `n` covers `[floor(i L / n), ceil((i + 1) L / n))`; each spatial
axis is pooled in turn (a mean of means over a rectangle is its mean, a max
of maxes its max), averages as one matrix product, maxima over gathered
windows. `unfold` and `fold` are one primitive each, the VJP of one being the
other.
"""

from __future__ import annotations

from typing import Any

import numpy as _np

from distkeras.backend import current_module as _xp
from distkeras.backend import primitives as _P
from distkeras.backend.autodiff import Tensor
from distkeras.backend.autodiff import apply as _apply
from distkeras.backend.autodiff import convert_to_tensor as _tensor
from distkeras.backend.reduction_primitives import max as _max
from distkeras.ops.conv import standardize_data_format as _data_format
from distkeras.ops.numpy import moveaxis as _moveaxis
from distkeras.ops.numpy import tensordot as _tensordot

__all__ = [
    "adaptive_average_pool",
    "adaptive_max_pool",
    "depth_to_space",
    "fold",
    "space_to_depth",
    "unfold",
]


# ----------------------------------------------------------------- pixel shuffles
def _check_4d(x: Tensor, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} expects a 4-D input. Received: x.shape={x.shape}")


def _check_block(block_size: Any) -> int:
    if not isinstance(block_size, (int, _np.integer)) or block_size < 1:
        raise ValueError(
            f"`block_size` must be a positive integer. Received: block_size={block_size}"
        )
    return int(block_size)


def depth_to_space(x, block_size, data_format="channels_last") -> Tensor:
    """Moves blocks of channels into space: `(N, H, W, C r^2)` -> `(N, H r, W r, C)`."""
    x = _tensor(x)
    _check_4d(x, "depth_to_space")
    r = _check_block(block_size)
    data_format = _data_format(data_format)
    if data_format == "channels_last":
        n, h, w, c = x.shape
        if c % (r * r):
            raise ValueError(
                f"The channels ({c}) must be divisible by block_size**2. "
                f"Received: block_size={block_size}"
            )
        y = _P.reshape(x, (n, h, w, r, r, c // (r * r)))
        y = _P.transpose(y, (0, 1, 3, 2, 4, 5))
        return _P.reshape(y, (n, h * r, w * r, c // (r * r)))
    n, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(
            f"The channels ({c}) must be divisible by block_size**2. "
            f"Received: block_size={block_size}"
        )
    y = _P.reshape(x, (n, c // (r * r), r, r, h, w))
    y = _P.transpose(y, (0, 1, 4, 2, 5, 3))
    return _P.reshape(y, (n, c // (r * r), h * r, w * r))


def space_to_depth(x, block_size, data_format="channels_last") -> Tensor:
    """Moves spatial blocks into channels: `(N, H r, W r, C)` -> `(N, H, W, C r^2)`."""
    x = _tensor(x)
    _check_4d(x, "space_to_depth")
    r = _check_block(block_size)
    data_format = _data_format(data_format)
    if data_format == "channels_last":
        n, h, w, c = x.shape
    else:
        n, c, h, w = x.shape
    if h % r or w % r:
        raise ValueError(
            f"The height and width ({h}, {w}) must be divisible by block_size. "
            f"Received: block_size={block_size}"
        )
    if data_format == "channels_last":
        y = _P.reshape(x, (n, h // r, r, w // r, r, c))
        y = _P.transpose(y, (0, 1, 3, 2, 4, 5))
        return _P.reshape(y, (n, h // r, w // r, c * r * r))
    y = _P.reshape(x, (n, c, h // r, r, w // r, r))
    y = _P.transpose(y, (0, 1, 3, 5, 2, 4))
    return _P.reshape(y, (n, c * r * r, h // r, w // r))


# ----------------------------------------------------------------- adaptive pooling
def _windows(length: int, out: int) -> tuple[Any, Any]:
    i = _np.arange(out)
    return (i * length) // out, -((-(i + 1) * length) // out)  # floor, ceil


def _pool_axis(x: Tensor, axis: int, out: int, mode: str) -> Tensor:
    length = x.shape[axis]
    starts, ends = _windows(length, out)
    xp = _xp()
    if mode == "average":
        pos = _np.arange(length)[:, None]
        inside = (pos >= starts[None, :]) & (pos < ends[None, :])
        weights = inside / (ends - starts)[None, :]
        w = Tensor(xp.asarray(weights.astype(x.data.dtype)))
        return _moveaxis(_tensordot(x, w, axes=([axis], [0])), -1, axis)
    size = int((ends - starts).max())
    idx = _np.minimum(starts[:, None] + _np.arange(size)[None, :], ends[:, None] - 1)
    gathered = _P.take(x, xp.asarray(idx), axis=axis)  # (..., out, size, ...)
    return _max(gathered, axis=axis + 1)


def _adaptive_pool(inputs: Any, output_size: Any, data_format: Any, mode: str) -> Tensor:
    x = _tensor(inputs)
    dims = x.ndim - 2
    if dims not in (1, 2, 3):
        raise ValueError(
            f"adaptive_{mode}_pool supports only 1D/2D/3D inputs (rank 3 to 5). "
            f"Received: inputs.shape={x.shape}"
        )
    sizes = (output_size,) * dims if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != dims or any(int(s) < 1 for s in sizes):
        raise ValueError(
            f"`output_size` must be a positive int or a tuple of {dims} of them. "
            f"Received: output_size={output_size}"
        )
    first = 1 if _data_format(data_format) == "channels_last" else 2
    for k, size in enumerate(sizes):
        x = _pool_axis(x, first + k, int(size), mode)
    return x


def adaptive_average_pool(inputs, output_size, data_format=None) -> Tensor:
    """Average pooling to a fixed `output_size` whatever the input size (1D, 2D or 3D)."""
    return _adaptive_pool(inputs, output_size, data_format, "average")


def adaptive_max_pool(inputs, output_size, data_format=None) -> Tensor:
    """Max pooling to a fixed `output_size` whatever the input size (1D, 2D or 3D)."""
    return _adaptive_pool(inputs, output_size, data_format, "max")


# ----------------------------------------------------------------- unfold / fold
def _pair(v: Any, name: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, (int, _np.integer)) else tuple(v)
    if len(pair) != 2:
        raise ValueError(f"`{name}` must be an int or a tuple of 2 ints. Received: {name}={v}")
    return int(pair[0]), int(pair[1])


def _blocks(size: int, k: int, d: int, p: int, s: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _unfold_array(x: Any, k: tuple, d: tuple, p: tuple, s: tuple) -> Any:
    xp = _xp()
    n, c, h, w = x.shape
    x = xp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    nh, nw = _blocks(h, k[0], d[0], p[0], s[0]), _blocks(w, k[1], d[1], p[1], s[1])
    out = xp.empty((n, c, k[0], k[1], nh, nw), dtype=x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            hi, wj = i * d[0], j * d[1]
            out[:, :, i, j] = x[
                :, :, hi : hi + s[0] * (nh - 1) + 1 : s[0], wj : wj + s[1] * (nw - 1) + 1 : s[1]
            ]
    return out.reshape(n, c * k[0] * k[1], nh * nw)


def _fold_array(x: Any, size: tuple, k: tuple, d: tuple, p: tuple, s: tuple) -> Any:
    xp = _xp()
    n = x.shape[0]
    c = x.shape[1] // (k[0] * k[1])
    nh, nw = _blocks(size[0], k[0], d[0], p[0], s[0]), _blocks(size[1], k[1], d[1], p[1], s[1])
    x = x.reshape(n, c, k[0], k[1], nh, nw)
    out = xp.zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), dtype=x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            hi, wj = i * d[0], j * d[1]
            out[
                :, :, hi : hi + s[0] * (nh - 1) + 1 : s[0], wj : wj + s[1] * (nw - 1) + 1 : s[1]
            ] += x[:, :, i, j]
    return out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]]


def _unfold(x, k, d, p, s):
    size = x.shape[2:]

    def vjp(g, needs):
        return (_fold_array(g, size, k, d, p, s),)

    return _unfold_array(x, k, d, p, s), vjp


def _fold(x, size, k, d, p, s):
    def vjp(g, needs):
        return (_unfold_array(g, k, d, p, s),)

    return _fold_array(x, size, k, d, p, s), vjp


def unfold(x, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks of an `(N, C, H, W)` image as columns, `(N, C * kH * kW, L)` (im2col)."""
    x = _tensor(x)
    if x.ndim != 4:
        raise ValueError(f"unfold expects a 4-D input (N, C, H, W). Received: x.shape={x.shape}")
    k, d = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    p, s = _pair(padding, "padding"), _pair(stride, "stride")
    return _apply(lambda a: _unfold(a, k, d, p, s), x)


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sums columns of blocks `(N, C * kH * kW, L)` back into `(N, C, H, W)` (col2im)."""
    x = _tensor(x)
    size, k = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size")
    d, p, s = _pair(dilation, "dilation"), _pair(padding, "padding"), _pair(stride, "stride")
    if x.ndim != 3 or x.shape[1] % (k[0] * k[1]):
        raise ValueError(
            "fold expects a 3-D input (N, C * kH * kW, L). "
            f"Received: x.shape={x.shape}, kernel_size={kernel_size}"
        )
    blocks = _blocks(size[0], k[0], d[0], p[0], s[0]) * _blocks(size[1], k[1], d[1], p[1], s[1])
    if x.shape[2] != blocks:
        raise ValueError(
            f"fold: the input has {x.shape[2]} blocks, but output_size={output_size} with "
            f"these kernel_size, dilation, padding and stride gives {blocks}. "
            f"Received: x.shape={x.shape}"
        )
    return _apply(lambda a: _fold(a, size, k, d, p, s), x)
