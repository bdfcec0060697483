"""Deterministic image preprocessing layers: Rescaling, Resizing, CenterCrop.

They are differentiable compositions of `distkeras.ops` (resizing is a pair of
interpolation matrices), so they can sit inside a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.layer import Layer
from distkeras.layers.preprocessing import image_ops


def standardize_data_format(data_format: str | None) -> str:
    """Returns 'channels_last' (the default) or 'channels_first', else raises."""
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def positive_int(name: str, value: Any) -> int:
    """Checks a positive integer argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def to_float(layer: Layer, x: Tensor) -> Tensor:
    """Casts non-float inputs (e.g. uint8 images) to the layer's compute dtype."""
    if np.dtype(x.dtype).kind != "f":
        return ops.cast(x, layer.compute_dtype)
    return x


def check_image_rank(layer: Layer, x: Any) -> None:
    if len(x.shape) not in (3, 4):
        raise ValueError(
            f"Layer {layer.name!r} expects a rank-3 image or rank-4 batch of images. "
            f"Received: inputs.shape={tuple(x.shape)}"
        )


def _hw_axes(ndim: int, data_format: str) -> tuple[int, int]:
    return (ndim - 3, ndim - 2) if data_format == "channels_last" else (ndim - 2, ndim - 1)


def resize_tensor(
    x: Tensor, size: tuple[int, int], interpolation: str, data_format: str = "channels_last"
) -> Tensor:
    """Differentiable resize of an image tensor by interpolation matrices."""
    xp = current_module()
    h_ax, w_ax = _hw_axes(x.ndim, data_format)
    h, w = x.shape[h_ax], x.shape[w_ax]
    mh = xp.asarray(image_ops.resize_matrix(h, size[0], interpolation), dtype=x.dtype)
    mw = xp.asarray(image_ops.resize_matrix(w, size[1], interpolation).T, dtype=x.dtype)
    # Move (H, W) to the last two axes, multiply, move them back.
    others = [a for a in range(x.ndim) if a not in (h_ax, w_ax)]
    perm = [*others, h_ax, w_ax]
    y = ops.matmul(ops.matmul(mh, ops.transpose(x, perm)), mw)
    inverse = list(np.argsort(perm))
    return ops.transpose(y, inverse)


def crop_tensor(x: Tensor, top: int, left: int, h: int, w: int, data_format: str) -> Tensor:
    """Differentiable crop of the (top, left, h, w) box."""
    h_ax, w_ax = _hw_axes(x.ndim, data_format)
    key = [slice(None)] * x.ndim
    key[h_ax] = slice(top, top + h)
    key[w_ax] = slice(left, left + w)
    return ops.getitem(x, tuple(key))


class Rescaling(Layer):
    """Rescales inputs: `inputs * scale + offset` (e.g. scale=1/255 maps [0, 255] to [0, 1]).

    Args:
        scale: Float or per-channel list.
        offset: Float or per-channel list.
    """

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        x = to_float(self, inputs)
        xp = current_module()
        scale = xp.asarray(self.scale, dtype=x.dtype)
        offset = xp.asarray(self.offset, dtype=x.dtype)
        return ops.add(ops.multiply(x, scale), offset)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"scale": _plain(self.scale), "offset": _plain(self.offset)})
        return cfg


def _plain(v: Any) -> Any:
    return np.asarray(v).tolist() if hasattr(v, "__len__") or hasattr(v, "shape") else v


class Resizing(Layer):
    """Resizes images to (height, width) as `tf.image.resize` does (half-pixel centers).

    Args:
        height: Output height.
        width: Output width.
        interpolation: 'bilinear' (default) or 'nearest'.
        crop_to_aspect_ratio: Crop the largest centred box with the target
            aspect ratio first, so the image is not distorted.
        pad_to_aspect_ratio: Pad with `fill_value` to the target aspect ratio first.
        fill_mode: Only 'constant' is supported for padding.
        fill_value: Padding value.
        data_format: 'channels_last' (default) or 'channels_first'.

    Input shape:
        3D (unbatched) or 4D image tensor.
    """

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.height = positive_int("height", height)
        self.width = positive_int("width", width)
        self.interpolation = image_ops.check_interpolation(interpolation)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(
                "Only one of `crop_to_aspect_ratio` or `pad_to_aspect_ratio` can be True. "
                f"Received: crop_to_aspect_ratio={crop_to_aspect_ratio}, "
                f"pad_to_aspect_ratio={pad_to_aspect_ratio}"
            )
        if fill_mode != "constant":
            raise ValueError(
                f"Resizing only supports fill_mode='constant'. Received: fill_mode={fill_mode!r}"
            )
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs: Tensor) -> Tensor:
        check_image_rank(self, inputs)
        x = to_float(self, inputs)
        h_ax, w_ax = _hw_axes(x.ndim, self.data_format)
        h, w = x.shape[h_ax], x.shape[w_ax]
        if self.crop_to_aspect_ratio:
            top, left, ch, cw = image_ops.crop_box(h, w, self.height, self.width)
            x = crop_tensor(x, top, left, ch, cw, self.data_format)
        elif self.pad_to_aspect_ratio:
            top, left, ph, pw = image_ops.pad_box(h, w, self.height, self.width)
            widths = [(0, 0)] * x.ndim
            widths[h_ax] = (top, ph - h - top)
            widths[w_ax] = (left, pw - w - left)
            x = ops.pad(x, widths, constant_values=self.fill_value)
        return resize_tensor(x, (self.height, self.width), self.interpolation, self.data_format)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = list(input_shape)
        h_ax, w_ax = _hw_axes(len(shape), self.data_format)
        shape[h_ax], shape[w_ax] = self.height, self.width
        return tuple(shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "height": self.height,
                "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
                "fill_mode": self.fill_mode,
                "fill_value": self.fill_value,
                "data_format": self.data_format,
            }
        )
        return cfg


class CenterCrop(Layer):
    """Crops the central (height, width) box; smaller inputs are smart-resized up first.

    Args:
        height: Output height.
        width: Output width.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    def __init__(self, height: int, width: int, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.height = positive_int("height", height)
        self.width = positive_int("width", width)
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs: Tensor) -> Tensor:
        check_image_rank(self, inputs)
        x = to_float(self, inputs)
        h_ax, w_ax = _hw_axes(x.ndim, self.data_format)
        h, w = x.shape[h_ax], x.shape[w_ax]
        if h < self.height or w < self.width:  # Keras: resize instead of cropping
            top, left, ch, cw = image_ops.crop_box(h, w, self.height, self.width)
            x = crop_tensor(x, top, left, ch, cw, self.data_format)
            return resize_tensor(x, (self.height, self.width), "bilinear", self.data_format)
        top, left = int((h - self.height) / 2), int((w - self.width) / 2)
        return crop_tensor(x, top, left, self.height, self.width, self.data_format)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = list(input_shape)
        h_ax, w_ax = _hw_axes(len(shape), self.data_format)
        shape[h_ax], shape[w_ax] = self.height, self.width
        return tuple(shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width, "data_format": self.data_format})
        return cfg
