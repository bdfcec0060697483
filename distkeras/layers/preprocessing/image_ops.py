"""Image transforms shared by the preprocessing layers and `distkeras.preprocessing.image`.

Images are channels-last arrays `(H, W, C)` or batches `(N, H, W, C)` of the
NumPy or CuPy module that owns them. Resizing follows TensorFlow's
`tf.image.resize` (half-pixel centers, no antialiasing), which is what Keras
uses; it is a pair of interpolation matrices, so it is also differentiable
when applied with `distkeras.ops.matmul`. Geometric augmentation samples the
input at affinely transformed coordinates with the fill modes of
`keras.ops.image.affine_transform`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras.backend import get_array_module
from distkeras.backend.image_kernels import resize_weights

INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def check_interpolation(interpolation: str) -> str:
    """Returns `interpolation` or raises naming the supported methods."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"Invalid value for argument `interpolation`. Expected one of {INTERPOLATIONS}. "
            f"Received: interpolation={interpolation!r}"
        )
    return interpolation


def check_fill_mode(fill_mode: str) -> str:
    """Returns `fill_mode` or raises naming the supported modes."""
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"Invalid value for argument `fill_mode`. Expected one of {FILL_MODES}. "
            f"Received: fill_mode={fill_mode!r}"
        )
    return fill_mode


def resize_matrix(in_size: int, out_size: int, interpolation: str = "bilinear") -> np.ndarray:
    """The (out_size, in_size) matrix that resizes one axis, as `tf.image.resize`.

    Bilinear: the weights of `ops.image.resize` (`backend/image_kernels.py`):
    source coordinate `(i + 0.5) * in/out - 0.5`, interpolated between its
    floor and ceil (clamped to the edges). Nearest: source index
    `floor((i + 0.5) * in/out)`, clamped.
    """
    check_interpolation(interpolation)
    if interpolation == "bilinear":
        return resize_weights(in_size, out_size, "bilinear").T
    out = np.zeros((out_size, in_size), dtype=np.float64)
    centers = (np.arange(out_size) + 0.5) * (in_size / out_size)
    idx = np.minimum(np.floor(centers).astype(np.int64), in_size - 1)
    out[np.arange(out_size), idx] = 1.0
    return out


def resize(images: Any, size: tuple[int, int], interpolation: str = "bilinear") -> Any:
    """Resizes `(H, W, C)` or `(N, H, W, C)` images to `size` = (height, width)."""
    xp = get_array_module(images)
    h, w = images.shape[-3], images.shape[-2]
    dtype = images.dtype if images.dtype.kind == "f" else np.float32
    mh = xp.asarray(resize_matrix(h, size[0], interpolation), dtype=dtype)
    mw = xp.asarray(resize_matrix(w, size[1], interpolation), dtype=dtype)
    x = images.astype(dtype, copy=False)
    x = xp.einsum("ih,...hwc->...iwc", mh, x)
    return xp.einsum("jw,...iwc->...ijc", mw, x)


def crop_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w): the largest centred box with the target aspect ratio."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def smart_resize(images: Any, size: tuple[int, int], interpolation: str = "bilinear") -> Any:
    """Crops the central box with the target aspect ratio, then resizes (Keras's smart_resize).

    Args:
        images: `(H, W, C)` or `(N, H, W, C)` array.
        size: (height, width) of the output.
        interpolation: 'bilinear' or 'nearest'.
    """
    if len(size) != 2:
        raise ValueError(
            f"Expected `size` to be a tuple of 2 integers. Received: size={tuple(size)!r}"
        )
    if images.ndim not in (3, 4):
        raise ValueError(
            "Expected an image array with rank 3 (single image) or 4 (batch of images). "
            f"Received: images.shape={tuple(images.shape)}"
        )
    h, w = images.shape[-3], images.shape[-2]
    top, left, ch, cw = crop_box(h, w, int(size[0]), int(size[1]))
    cropped = images[..., top : top + ch, left : left + cw, :]
    return resize(cropped, (int(size[0]), int(size[1])), interpolation)


def pad_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """(top, left, padded_h, padded_w): the smallest box with the target aspect ratio around it."""
    pad_h = max(height, int(float(width * target_h) / target_w))
    pad_w = max(width, int(float(height * target_w) / target_h))
    return int(float(pad_h - height) / 2), int(float(pad_w - width) / 2), pad_h, pad_w


# ---------------------------------------------------------------- affine sampling
def _map_coordinate(c: Any, size: int, fill_mode: str, xp: Any) -> Any:
    """Maps continuous coordinates into [0, size-1] by the fill mode (not constant)."""
    if fill_mode == "nearest":
        return xp.clip(c, 0, size - 1)
    if fill_mode == "wrap":
        return xp.mod(c + 0.5, size) - 0.5 if size > 1 else xp.zeros_like(c)
    # reflect: (d c b a | a b c d | d c b a), mirror lines at -0.5 and size - 0.5.
    if size == 1:
        return xp.zeros_like(c)
    period = 2 * size
    t = xp.mod(c + 0.5, period)
    return xp.where(t >= size, period - t, t) - 0.5


def affine_sample(
    images: Any,
    matrix: Any,
    offset: Any,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> Any:
    """Samples `images` (N, H, W, C) at `matrix @ (row, col) + offset` for every output pixel.

    Args:
        images: Batch of channels-last images.
        matrix: (N, 2, 2) maps output (row, col) to input (row, col).
        offset: (N, 2) translation in (row, col).
        interpolation: 'bilinear' or 'nearest'.
        fill_mode: 'constant', 'nearest', 'reflect' or 'wrap' for points outside.
        fill_value: Value of outside points with fill_mode='constant'.
    """
    check_interpolation(interpolation)
    check_fill_mode(fill_mode)
    xp = get_array_module(images)
    n, h, w, c = images.shape
    dtype = images.dtype if images.dtype.kind == "f" else np.float32
    images = images.astype(dtype, copy=False)
    matrix = xp.asarray(matrix, dtype=np.float64).reshape(n, 2, 2)
    offset = xp.asarray(offset, dtype=np.float64).reshape(n, 2)
    rr, cc = xp.meshgrid(xp.arange(h, dtype=np.float64), xp.arange(w, dtype=np.float64))
    rr, cc = rr.T[None], cc.T[None]  # (1, H, W)
    src_r = matrix[:, 0, 0, None, None] * rr + matrix[:, 0, 1, None, None] * cc
    src_r = src_r + offset[:, 0, None, None]
    src_c = matrix[:, 1, 0, None, None] * rr + matrix[:, 1, 1, None, None] * cc
    src_c = src_c + offset[:, 1, None, None]
    if fill_mode != "constant":
        src_r = _map_coordinate(src_r, h, fill_mode, xp)
        src_c = _map_coordinate(src_c, w, fill_mode, xp)
    batch = xp.arange(n)[:, None, None]

    def read(r_idx: Any, c_idx: Any) -> Any:
        valid = (r_idx >= 0) & (r_idx < h) & (c_idx >= 0) & (c_idx < w)
        vals = images[batch, xp.clip(r_idx, 0, h - 1), xp.clip(c_idx, 0, w - 1)]
        return xp.where(valid[..., None], vals, xp.asarray(fill_value, dtype=dtype))

    if interpolation == "nearest":
        return read(xp.floor(src_r + 0.5).astype(np.int64), xp.floor(src_c + 0.5).astype(np.int64))
    r0, c0 = xp.floor(src_r), xp.floor(src_c)
    fr, fc = (src_r - r0)[..., None].astype(dtype), (src_c - c0)[..., None].astype(dtype)
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    top = read(r0, c0) * (1 - fc) + read(r0, c0 + 1) * fc
    bottom = read(r0 + 1, c0) * (1 - fc) + read(r0 + 1, c0 + 1) * fc
    return (top * (1 - fr) + bottom * fr).astype(dtype, copy=False)


def keras_transform(
    images: Any,
    transforms: Any,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> Any:
    """`keras.ops.image.affine_transform`: rows `[a0, a1, a2, b0, b1, b2, c0, c1]`.

    Output point (x=col, y=row) reads input `(a0 x + a1 y + a2, b0 x + b1 y + b2)`
    (c0 and c1 are ignored, as on Keras's non-TensorFlow backends).
    """
    t = np.asarray(transforms, dtype=np.float64).reshape(-1, 8)
    matrix = np.stack([t[:, [4, 3]], t[:, [1, 0]]], axis=1)  # rows: (row', col')
    offset = t[:, [5, 2]]
    xp = get_array_module(images)
    return affine_sample(
        images, xp.asarray(matrix), xp.asarray(offset), interpolation, fill_mode, fill_value
    )


def rotation_transforms(angles: np.ndarray, height: int, width: int) -> np.ndarray:
    """Transforms rotating images counter-clockwise by `angles` (radians) about their centre."""
    cos, sin = np.cos(angles), np.sin(angles)
    x_off = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_off = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    zeros = np.zeros_like(angles)
    return np.stack([cos, -sin, x_off, sin, cos, y_off, zeros, zeros], axis=1)


def zoom_transforms(zx: np.ndarray, zy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Transforms scaling the sampling grid by (zx, zy) about the centre (>1 zooms out)."""
    x_off = ((width - 1) / 2.0) * (1.0 - zx)
    y_off = ((height - 1) / 2.0) * (1.0 - zy)
    zeros = np.zeros_like(zx)
    return np.stack([zx, zeros, x_off, zeros, zy, y_off, zeros, zeros], axis=1)


def translation_transforms(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Transforms shifting images right by dx and down by dy pixels."""
    zeros, ones = np.zeros_like(dx), np.ones_like(dx)
    return np.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=1)


def degrees_to_radians(deg: float) -> float:
    """Degrees to radians."""
    return deg * math.pi / 180.0
