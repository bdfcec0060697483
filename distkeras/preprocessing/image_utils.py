"""Image files and arrays: `load_img`, `img_to_array`, `array_to_img`, `save_img`, `smart_resize`.

Files are read and written with Pillow (the `image` extra); arrays are NumPy,
channels-last unless `data_format='channels_first'`.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings
from typing import Any

import numpy as np

from distkeras.backend import floatx
from distkeras.layers.preprocessing import image_ops

ALLOWED_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
COLOR_MODES = ("grayscale", "rgb", "rgba")


def _pil():
    try:
        from PIL import Image  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - Pillow is in the image/dev extras
        raise ImportError(
            "Image loading needs Pillow: pip install 'distkeras[image]'. Received: no PIL module"
        ) from e
    return Image


def _interpolations() -> dict[str, Any]:
    resampling = _pil().Resampling
    return {
        "nearest": resampling.NEAREST,
        "bilinear": resampling.BILINEAR,
        "bicubic": resampling.BICUBIC,
        "hamming": resampling.HAMMING,
        "box": resampling.BOX,
        "lanczos": resampling.LANCZOS,
    }


def _check_data_format(data_format: str | None) -> str:
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def open_image(path: Any):
    """Opens an image file (path or BytesIO) with Pillow, raising a clear error if unreadable."""
    Image = _pil()
    if isinstance(path, io.BytesIO):
        data, name = path, "<BytesIO>"
    elif isinstance(path, (str, bytes, pathlib.Path, os.PathLike)):
        name = os.fsdecode(path)
        with open(name, "rb") as f:
            data = io.BytesIO(f.read())
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    try:
        img = Image.open(data)
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ValueError(
            f"Could not decode the image file (corrupt or not an image): {e}. "
            f"Received: path={name!r}"
        ) from e
    return img


def load_img(
    path: Any,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
):
    """Loads an image into a PIL Image.

    Args:
        path: Path of the image file, or an `io.BytesIO`.
        color_mode: 'grayscale', 'rgb' or 'rgba'.
        target_size: None (original size) or (height, width).
        interpolation: PIL resampling: 'nearest', 'bilinear', 'bicubic',
            'hamming', 'box' or 'lanczos'.
        keep_aspect_ratio: Crop the central box of the target aspect ratio
            before resizing.

    Returns:
        A PIL Image.
    """
    if color_mode not in COLOR_MODES:
        raise ValueError(
            f'color_mode must be "grayscale", "rgb", or "rgba". Received: color_mode={color_mode!r}'
        )
    img = open_image(path)
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    if target_size is not None:
        size = (int(target_size[1]), int(target_size[0]))
        if img.size != size:
            methods = _interpolations()
            if interpolation not in methods:
                raise ValueError(
                    f"Invalid interpolation method {interpolation} specified. Supported methods "
                    f"are {', '.join(methods)}. Received: interpolation={interpolation!r}"
                )
            box = None
            if keep_aspect_ratio:
                width, height = img.size
                crop_h = min(height, (width * size[1]) // size[0])
                crop_w = min(width, (height * size[0]) // size[1])
                top, left = (height - crop_h) // 2, (width - crop_w) // 2
                box = (left, top, left + crop_w, top + crop_h)
            img = img.resize(size, methods[interpolation], box=box)
    return img


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """Converts a PIL Image to a 3-D NumPy array (h, w, c), or (c, h, w) channels-first."""
    data_format = _check_data_format(data_format)
    x = np.asarray(img, dtype=dtype or floatx())
    if x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    elif x.ndim == 2:
        x = x.reshape((1, *x.shape)) if data_format == "channels_first" else x[..., None]
    else:
        raise ValueError(f"Unsupported image shape. Received: img shape={x.shape}")
    return x


def array_to_img(x: Any, data_format: str | None = None, scale: bool = True, dtype: Any = None):
    """Converts a 3-D array to a PIL Image; `scale` maps [min, max] to [0, 255]."""
    data_format = _check_data_format(data_format)
    x = np.array(x, dtype=dtype or floatx())
    if x.ndim != 3:
        raise ValueError(
            "Expected image array to have rank 3 (single image). "
            f"Got array with shape: {x.shape}. Received: x.shape={x.shape}"
        )
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    Image = _pil()
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}. Received: x.shape={x.shape}")


def save_img(
    path: Any,
    x: Any,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Saves an image array to a file (format from `file_format` or the extension)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (file_format or "").lower() in ("jpg", "jpeg"):
        warnings.warn(
            "The JPG format does not support RGBA images, converting to RGB.", stacklevel=2
        )
        img = img.convert("RGB")
    if file_format is not None and file_format.lower() == "jpg":
        file_format = "jpeg"
    img.save(path, format=file_format, **kwargs)


def smart_resize(
    x: Any,
    size: tuple[int, int],
    interpolation: str = "bilinear",
    data_format: str = "channels_last",
    backend_module: Any = None,
) -> np.ndarray:
    """Resizes images to `size` without distortion: crop the central box of that aspect ratio.

    Args:
        x: (h, w, c) image or (n, h, w, c) batch (channels-first with `data_format`).
        size: (height, width).
        interpolation: 'bilinear' or 'nearest'.
        data_format: 'channels_last' or 'channels_first'.
        backend_module: Accepted for Keras compatibility.
    """
    data_format = _check_data_format(data_format)
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(
            "Expected an image array with shape `(height, width, channels)`, or "
            f"`(batch_size, height, width, channels)`, but got input with incorrect rank, of "
            f"shape {x.shape}. Received: x.shape={x.shape}"
        )
    if data_format == "channels_first":
        x = np.moveaxis(x, -3, -1)
    out = image_ops.smart_resize(x, tuple(size), interpolation)
    return np.moveaxis(out, -1, -3) if data_format == "channels_first" else out
