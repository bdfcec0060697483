"""Image ops, public like `keras.ops.image`.

Resizing is one weight matrix per resized axis (`backend/image_kernels.py`,
the kernels Keras's NumPy backend uses), applied with `tensordot`, so it is
differentiable. Sampling at
arbitrary coordinates (`map_coordinates`, `affine_transform`) gathers the
2^k corner values around each point, with the out-of-range corners mapped by
the fill mode one by one, which is what padding the input and sampling it (as
Keras's NumPy backend does through SciPy) computes; the gather carries the
gradient to the input values (not to the coordinates).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as _np

from distkeras.backend import current_module as _xp
from distkeras.backend import floatx as _floatx
from distkeras.backend import primitives as _P
from distkeras.backend import to_numpy as _to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.backend.autodiff import convert_to_tensor as _tensor
from distkeras.backend.image_kernels import resize_weights as _resize_weights
from distkeras.ops.conv import conv as _conv
from distkeras.ops.conv import depthwise_conv as _depthwise_conv
from distkeras.ops.conv import standardize_data_format as _data_format
from distkeras.ops.numpy import moveaxis as _moveaxis
from distkeras.ops.numpy import tensordot as _tensordot

__all__ = [
    "affine_transform",
    "crop_images",
    "extract_patches",
    "gaussian_blur",
    "hsv_to_rgb",
    "map_coordinates",
    "pad_images",
    "resize",
    "rgb_to_grayscale",
    "rgb_to_hsv",
]

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")
FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


# ----------------------------------------------------------------- helpers
def _check_rank(images: Tensor) -> None:
    if images.ndim not in (3, 4):
        raise ValueError(
            "Invalid images rank: expected rank 3 (single image) or rank 4 (batch of "
            f"images). Received input with shape: images.shape={images.shape}"
        )


def _is_float(dtype: Any) -> bool:
    return _np.dtype(dtype).kind == "f"


def _channel_axis(data_format: str | None) -> int:
    return -1 if _data_format(data_format) == "channels_last" else -3


def _hw_axes(ndim: int, data_format: str) -> tuple[int, int]:
    return (ndim - 3, ndim - 2) if data_format == "channels_last" else (ndim - 2, ndim - 1)


def _channels_last(images: Tensor, data_format: str) -> Tensor:
    """`images` as (N, H, W, C)."""
    if images.ndim == 3:
        images = _P.reshape(images, (1, *images.shape))
    if data_format == "channels_first":
        images = _P.transpose(images, (0, 2, 3, 1))
    return images


def _restore(out: Tensor, ndim: int, data_format: str) -> Tensor:
    if data_format == "channels_first":
        out = _P.transpose(out, (0, 3, 1, 2))
    return _P.reshape(out, out.shape[1:]) if ndim == 3 else out


# ----------------------------------------------------------------- colour
def rgb_to_grayscale(images, data_format=None) -> Tensor:
    """Converts RGB images to one grayscale channel (weights 0.2989, 0.5870, 0.1140)."""
    images = _tensor(images)
    axis = _channel_axis(data_format)
    _check_rank(images)
    if images.shape[axis] not in (1, 3):
        raise ValueError(
            "Invalid channel size: expected 3 (RGB) or 1 (Grayscale). "
            f"Received input with shape: images.shape={images.shape}"
        )
    if images.shape[axis] == 1:
        return _P.multiply(images, 1) if _is_float(images.data.dtype) else Tensor(images.data)
    dtype = images.dtype
    x = images if _is_float(dtype) else _P.cast(images, _floatx())
    weights = _xp().asarray([0.2989, 0.5870, 0.1140], dtype=x.data.dtype)
    gray = _tensordot(x, Tensor(weights), axes=([axis % x.ndim], [0]))
    gray = _P.reshape(gray, _keep_axis(x.shape, axis))
    return gray if gray.dtype == dtype else _P.cast(gray, dtype)


def _keep_axis(shape: tuple, axis: int) -> tuple:
    shape = list(shape)
    shape[axis] = 1
    return tuple(shape)


def _split_channels(images: Tensor, axis: int) -> list[Tensor]:
    index = [slice(None)] * images.ndim
    planes = []
    for c in range(3):
        index[axis] = c
        planes.append(_P.getitem(images, tuple(index)))
    return planes


def _float_images(images: Any, name: str = "images") -> Tensor:
    images = _tensor(images)
    _check_rank(images)
    if not _is_float(images.data.dtype):
        raise ValueError(
            f"Invalid images dtype: expected float dtype. Received: {name}.dtype={images.dtype}"
        )
    return images


def rgb_to_hsv(images, data_format=None) -> Tensor:
    """Converts RGB images (floats in [0, 1]) to HSV, all three in [0, 1]."""
    images = _float_images(images)
    axis = _channel_axis(data_format)
    xp = _xp()
    eps = float(_np.finfo(images.data.dtype).eps)
    images = _P.where(Tensor(xp.abs(images.data) < eps), 0.0, images)
    r, g, b = _split_channels(images, axis)
    value = _P.maximum(_P.maximum(r, g), b)
    rng = _P.subtract(value, _P.minimum(_P.minimum(r, g), b))
    v, rg = value.data, rng.data
    safe_value = _P.where(Tensor(v > 0), value, 1.0)
    safe_range = _P.where(Tensor(rg > 0), rng, 1.0)
    saturation = _P.where(Tensor(v > 0), _P.divide(rng, safe_value), 0.0)
    norm = _P.divide(1.0 / 6.0, safe_range)
    hue = _P.where(
        Tensor(v == g.data),
        _P.add(_P.multiply(norm, _P.subtract(b, r)), 2.0 / 6.0),
        _P.add(_P.multiply(norm, _P.subtract(r, g)), 4.0 / 6.0),
    )
    hue = _P.where(Tensor(v == r.data), _P.multiply(norm, _P.subtract(g, b)), hue)
    wrap = (hue.data < 0).astype(hue.data.dtype)
    hue = _P.add(_P.where(Tensor(rg > 0), hue, 0.0), Tensor(wrap))
    return _P.cast(_P.stack([hue, saturation, value], axis=axis), images.dtype)


def hsv_to_rgb(images, data_format=None) -> Tensor:
    """Converts HSV images (all channels in [0, 1]) to RGB."""
    images = _float_images(images)
    axis = _channel_axis(data_format)
    h, s, v = _split_channels(images, axis)
    # mod(h, 1) with the gradient of h (mod's derivative is 1 almost everywhere)
    frac = _P.add(Tensor(_xp().mod(h.data, 1.0)), _P.subtract(h, Tensor(h.data)))
    dh = _P.multiply(frac, 6.0)
    dr = _P.clip(_P.subtract(_P.absolute(_P.subtract(dh, 3.0)), 1.0), 0.0, 1.0)
    dg = _P.clip(_P.subtract(2.0, _P.absolute(_P.subtract(dh, 2.0))), 0.0, 1.0)
    db = _P.clip(_P.subtract(2.0, _P.absolute(_P.subtract(dh, 4.0))), 0.0, 1.0)
    one_minus_s = _P.subtract(1.0, s)
    planes = [_P.multiply(v, _P.add(one_minus_s, _P.multiply(s, d))) for d in (dr, dg, db)]
    return _P.cast(_P.stack(planes, axis=axis), images.dtype)


# ----------------------------------------------------------------- resize
def _resize_axis(x: Tensor, axis: int, out_size: int, interpolation: str, antialias: bool):
    n = x.shape[axis]
    if n == out_size:
        return x
    xp = _xp()
    if interpolation == "nearest":
        idx = _np.floor((_np.arange(out_size, dtype=_np.float32) + 0.5) * n / out_size)
        return _P.take(x, xp.asarray(idx.astype(_np.int64)), axis=axis)
    w = xp.asarray(_resize_weights(n, out_size, interpolation, antialias), dtype=x.data.dtype)
    return _moveaxis(_tensordot(x, Tensor(w), axes=([axis], [0])), -1, axis)


def resize(
    images,
    size,
    interpolation="bilinear",
    antialias=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    fill_mode="constant",
    fill_value=0.0,
    data_format=None,
) -> Tensor:
    """Resizes images to `size = (height, width)` (as `keras.ops.image.resize`)."""
    data_format = _data_format(data_format)
    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError(
            "Invalid value for argument `interpolation`. Expected of one "
            f"{RESIZE_INTERPOLATIONS}. Received: interpolation={interpolation}"
        )
    if fill_mode != "constant":
        raise ValueError(
            "Invalid value for argument `fill_mode`. Only `'constant'` is supported. "
            f"Received: fill_mode={fill_mode}"
        )
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError(
            "Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`."
        )
    if len(size) != 2:
        raise ValueError(
            "Argument `size` must be a tuple of two elements (height, width). "
            f"Received: size={size}"
        )
    images = _tensor(images)
    _check_rank(images)
    th, tw = (int(s) for s in size)
    ha, wa = _hw_axes(images.ndim, data_format)
    height, width = images.shape[ha], images.shape[wa]
    if crop_to_aspect_ratio:
        ch = max(min(height, int(float(width * th) / tw)), 1)
        cw = max(min(width, int(float(height * tw) / th)), 1)
        top, left = int(float(height - ch) / 2), int(float(width - cw) / 2)
        images = _slice_hw(images, ha, wa, top, top + ch, left, left + cw)
    elif pad_to_aspect_ratio:
        ph = max(height, int(float(width * th) / tw))
        pw = max(width, int(float(height * tw) / th))
        top, left = int(float(ph - height) / 2), int(float(pw - width) / 2)
        pads = [(0, 0)] * images.ndim
        if top > 0:
            pads[ha] = (top, top)
        elif left > 0:
            pads[wa] = (left, left)
        images = _P.pad(images, pads, constant_values=fill_value)
    dtype = images.dtype
    x = images if _is_float(dtype) or interpolation == "nearest" else _P.cast(images, "float32")
    out = _resize_axis(x, ha, th, interpolation, antialias)
    out = _resize_axis(out, wa, tw, interpolation, antialias)
    if out.dtype != dtype:  # integer images: rounded and clipped to the input's range
        xp = _xp()
        lo, hi = (images.data.min(), images.data.max()) if images.size else (0, 0)
        out = Tensor(xp.clip(xp.round(out.data), lo, hi).astype(dtype))
    return out


def _slice_hw(images: Tensor, ha: int, wa: int, t: int, b: int, lft: int, r: int) -> Tensor:
    index = [slice(None)] * images.ndim
    index[ha], index[wa] = slice(t, b), slice(lft, r)
    return _P.getitem(images, tuple(index))


# ----------------------------------------------------------------- crop / pad
def _resolve(a: Any, b: Any, target: Any, size: int, names: tuple, sign: int) -> tuple[int, int]:
    """Two of (a, b, target) given: returns (a, b). `sign` is +1 for padding, -1 cropping."""
    if [a, b, target].count(None) != 1:
        raise ValueError(
            f"Must specify exactly two of {names[0]}, {names[1]}, {names[2]}. "
            f"Received: {names[0]}={a}, {names[1]}={b}, {names[2]}={target}"
        )
    for value, name in zip((a, b, target), names):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    if a is None:
        a = sign * (target - size) - b
    if b is None:
        b = sign * (target - size) - a
    for value, name in zip((a, b), names):
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    return int(a), int(b)


def pad_images(
    images,
    top_padding=None,
    left_padding=None,
    bottom_padding=None,
    right_padding=None,
    target_height=None,
    target_width=None,
    data_format=None,
) -> Tensor:
    """Pads images with zeros to a target size or by given amounts on each side."""
    data_format = _data_format(data_format)
    images = _tensor(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            "Invalid images rank: expected rank 3 (single image) or rank 4 (batch of "
            f"images). Received: images.shape={images.shape}"
        )
    ha, wa = _hw_axes(images.ndim, data_format)
    names_h = ("top_padding", "bottom_padding", "target_height")
    names_w = ("left_padding", "right_padding", "target_width")
    top, bottom = _resolve(top_padding, bottom_padding, target_height, images.shape[ha], names_h, 1)
    left, right = _resolve(left_padding, right_padding, target_width, images.shape[wa], names_w, 1)
    pads = [(0, 0)] * images.ndim
    pads[ha], pads[wa] = (top, bottom), (left, right)
    return _P.pad(images, pads)


def crop_images(
    images,
    top_cropping=None,
    left_cropping=None,
    bottom_cropping=None,
    right_cropping=None,
    target_height=None,
    target_width=None,
    data_format=None,
) -> Tensor:
    """Crops images to a target size or by given amounts on each side."""
    data_format = _data_format(data_format)
    images = _tensor(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            "Invalid images rank: expected rank 3 (single image) or rank 4 (batch of "
            f"images). Received: images.shape={images.shape}"
        )
    ha, wa = _hw_axes(images.ndim, data_format)
    h, w = images.shape[ha], images.shape[wa]
    names_h = ("top_cropping", "bottom_cropping", "target_height")
    names_w = ("left_cropping", "right_cropping", "target_width")
    top, bottom = _resolve(top_cropping, bottom_cropping, target_height, h, names_h, -1)
    left, right = _resolve(left_cropping, right_cropping, target_width, w, names_w, -1)
    if top + bottom >= h or left + right >= w:
        raise ValueError(
            "Cropping leaves no pixels. Received: "
            f"images.shape={images.shape}, top_cropping={top}, bottom_cropping={bottom}, "
            f"left_cropping={left}, right_cropping={right}"
        )
    return _slice_hw(images, ha, wa, top, h - bottom, left, w - right)


# ----------------------------------------------------------------- sampling
def _map_index(i: Any, n: int, fill_mode: str) -> tuple[Any, Any]:
    """Integer indices `i` into an axis of length `n`: (in-range index, valid mask)."""
    xp = _xp()
    if fill_mode == "constant":
        return xp.clip(i, 0, n - 1), (i >= 0) & (i < n)
    if fill_mode == "nearest" or n == 1:
        return xp.clip(i, 0, n - 1), None
    if fill_mode == "wrap":
        return xp.mod(i, n), None
    if fill_mode == "mirror":  # ... 2 1 | 0 1 2 | 1 0 ...
        m = xp.mod(i, 2 * n - 2)
        return xp.where(m < n, m, 2 * n - 2 - m), None
    m = xp.mod(i, 2 * n)  # reflect: ... 1 0 | 0 1 2 | 2 1 ...
    return xp.where(m < n, m, 2 * n - 1 - m), None


def _sample(inputs: Tensor, coords: list, order: int, fill_mode: str, fill_value: float):
    """`inputs` sampled at `coords` (one float array per axis, or an int array: exact)."""
    xp = _xp()
    corners = []
    for c in coords:
        if _np.issubdtype(c.dtype, _np.integer):
            corners.append([(c, None)])
        elif order == 0:
            corners.append([(xp.floor(c + 0.5).astype(xp.int64), None)])
        else:
            f = xp.floor(c)
            frac = c - f
            f = f.astype(xp.int64)
            corners.append([(f, 1.0 - frac), (f + 1, frac)])
    flat = _P.reshape(inputs, (-1,))
    dtype = inputs.data.dtype
    total: Any = None
    fill = None
    for combo in itertools.product(*corners):
        weight, valid, index = None, None, 0
        for axis, (i, w) in enumerate(combo):
            j, ok = _map_index(i, inputs.shape[axis], fill_mode)
            index = index * inputs.shape[axis] + j
            weight = w if weight is None else (weight if w is None else weight * w)
            valid = ok if valid is None else (valid if ok is None else valid & ok)
        w = xp.ones(index.shape, dtype) if weight is None else weight.astype(dtype)
        if valid is not None:
            miss = w * (~valid)
            fill = miss if fill is None else fill + miss
            w = w * valid
        term = _P.multiply(_P.take(flat, index), Tensor(w))
        total = term if total is None else _P.add(total, term)
    if fill is not None and fill_value != 0:
        total = _P.add(total, Tensor((fill * fill_value).astype(dtype)))
    return total


def _check_fill_mode(fill_mode: str) -> None:
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"Invalid value for argument `fill_mode`. Expected one of {set(FILL_MODES)}. "
            f"Received: fill_mode={fill_mode}"
        )


def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0.0) -> Tensor:
    """Samples `inputs` at `coordinates` (shape `(inputs.ndim, ...)`), order 0 or 1."""
    inputs = _tensor(inputs)
    coords = coordinates.data if isinstance(coordinates, Tensor) else _xp().asarray(coordinates)
    if coords.shape[0] != inputs.ndim:
        raise ValueError(
            "First dim of `coordinates` must be the same as the rank of `inputs`. "
            f"Received inputs with shape: {inputs.shape} and coordinate leading dim of "
            f"{coords.shape[0]}"
        )
    if coords.ndim < 2:
        raise ValueError(
            "Invalid coordinates rank: expected at least rank 2. "
            f"Received input with shape: {coords.shape}"
        )
    _check_fill_mode(fill_mode)
    if order not in (0, 1):
        raise ValueError(
            f"Invalid value for argument `order`. Expected one of [0, 1]. Received: order={order}"
        )
    dtype = inputs.dtype
    x = inputs if _is_float(dtype) else _P.cast(inputs, "float32")
    xp = _xp()
    ctype = x.data.dtype if _np.issubdtype(coords.dtype, _np.integer) else coords.dtype
    coords = [xp.asarray(c).astype(ctype) for c in coords]
    out = _sample(x, coords, order, fill_mode, fill_value)
    return out if out.dtype == dtype else Tensor(out.data.astype(dtype))


def affine_transform(
    images,
    transform,
    interpolation="bilinear",
    fill_mode="constant",
    fill_value=0,
    data_format=None,
) -> Tensor:
    """Applies projective transforms `[a0, a1, a2, b0, b1, b2, c0, c1]` (output -> input)."""
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(
            "Invalid value for argument `interpolation`. Expected of one "
            f"{ {'nearest', 'bilinear'} }. Received: interpolation={interpolation}"
        )
    _check_fill_mode(fill_mode)
    data_format = _data_format(data_format)
    images = _tensor(images)
    _check_rank(images)
    t = _np.asarray(_to_numpy(transform.data) if isinstance(transform, Tensor) else transform)
    if t.ndim not in (1, 2):
        raise ValueError(
            "Invalid transform rank: expected rank 1 (single transform) or rank 2 (batch "
            f"of transforms). Received input with shape: transform.shape={t.shape}"
        )
    dtype = images.dtype
    x = _channels_last(images, data_format)
    x = x if _is_float(dtype) else _P.cast(x, "float32")
    xp = _xp()
    n, h, w, c = x.shape
    t = xp.asarray(_np.broadcast_to(t.reshape(-1, 8), (n, 8)).astype(x.data.dtype))
    yy, xx = (
        g.astype(x.data.dtype) for g in xp.meshgrid(xp.arange(h), xp.arange(w), indexing="ij")
    )
    col = lambda k: t[:, k, None, None, None]  # noqa: E731
    gx, gy = xx[None, :, :, None], yy[None, :, :, None]
    # The documented projective map (as the TensorFlow and JAX backends compute it; Keras
    # 3.15.1's NumPy backend adds c0 * channel to y instead of dividing).
    k = col(6) * gx + col(7) * gy + 1.0
    ys = (col(3) * gx + col(4) * gy + col(5)) / k
    xs = (col(0) * gx + col(1) * gy + col(2)) / k
    shape = (n, h, w, c)
    coords = [
        xp.broadcast_to(xp.arange(n)[:, None, None, None], shape),
        xp.broadcast_to(ys, shape),
        xp.broadcast_to(xs, shape),
        xp.broadcast_to(xp.arange(c), shape),
    ]
    out = _sample(x, coords, 1 if interpolation == "bilinear" else 0, fill_mode, fill_value)
    out = _restore(out, images.ndim, data_format)
    return out if out.dtype == dtype else Tensor(out.data.astype(dtype))


# ----------------------------------------------------------------- patches, blur
def extract_patches(
    images, size, strides=None, dilation_rate=1, padding="valid", data_format=None
) -> Tensor:
    """Patches of `size` as channels: `(..., out_h, out_w, ph * pw * C)` (3-D `size`: volumes)."""
    images = _tensor(images)
    if isinstance(size, int):
        size = (size, size)
    if len(size) not in (2, 3):
        raise TypeError(
            "Invalid `size` argument. Expected an int or a tuple of length 2. "
            f"Received: size={size}"
        )
    data_format = _data_format(data_format)
    channels = images.shape[-1] if data_format == "channels_last" else images.shape[-len(size) - 1]
    out_dim = math.prod(size) * channels
    xp = _xp()
    kernel = xp.eye(out_dim, dtype=images.data.dtype).reshape(*size, channels, out_dim)
    unbatched = images.ndim == len(size) + 1
    x = _P.reshape(images, (1, *images.shape)) if unbatched else images
    patches = _conv(
        x,
        Tensor(kernel),
        strides=strides or tuple(size),
        padding=padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
    )
    return _P.reshape(patches, patches.shape[1:]) if unbatched else patches


def _gaussian_1d(size: int, sigma: float, dtype: Any) -> Any:
    x = _np.arange(size, dtype=dtype) - (size - 1) / 2
    k = _np.exp(-0.5 * (x / _np.asarray(sigma, dtype)) ** 2)
    return k / _np.sum(k)


def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None) -> Tensor:
    """Blurs each channel with a Gaussian kernel (zero padding, same size)."""
    images = _tensor(images)
    _check_rank(images)
    data_format = _data_format(data_format)
    dtype = images.dtype
    cdtype = dtype if _is_float(dtype) else "float32"
    ks = [int(k) for k in _np.asarray(kernel_size).reshape(-1)]
    sg = [float(s) for s in _np.asarray(sigma, dtype="float64").reshape(-1)]
    # As Keras: a (size[1], size[0]) kernel, rows from size[1] / sigma[1].
    k2 = _np.outer(_gaussian_1d(ks[1], sg[1], cdtype), _gaussian_1d(ks[0], sg[0], cdtype))
    x = _channels_last(images, data_format)
    x = x if x.dtype == cdtype else _P.cast(x, cdtype)
    c = x.shape[-1]
    kernel = _xp().asarray(_np.tile(k2[:, :, None, None], (1, 1, c, 1)).astype(cdtype))
    out = _depthwise_conv(x, Tensor(kernel), padding="same")
    out = _restore(out, images.ndim, data_format)
    return out if out.dtype == dtype else Tensor(out.data.astype(dtype))
