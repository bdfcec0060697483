"""Random image augmentation layers (active only with `training=True`).

Every layer draws its per-image parameters from its own `SeedGenerator`, so
the same `seed` gives the same augmentation, and the generator's state is
saved with the model. In deterministic data-parallel training the draws come
from the per-sample stream (`distkeras.backend.random.sample_stream`): an
image's parameters depend on the seed, the step and its index in the global
batch, not on the number of workers. In inference the layers return their inputs unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.backend.random import SeedGenerator
from distkeras.layers.layer import Layer
from distkeras.layers.preprocessing import image_ops
from distkeras.layers.preprocessing.image_preprocessing import (
    check_image_rank,
    standardize_data_format,
    to_float,
)

HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL = "horizontal", "vertical", "horizontal_and_vertical"


def parse_factor(name: str, factor: Any, low: float, high: float) -> tuple[float, float]:
    """A float f -> (-f, f); a pair -> itself; checks the bounds and order."""
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(
                f"`{name}` must be a float or a tuple of 2 floats. Received: {name}={factor!r}"
            )
        lower, upper = float(factor[0]), float(factor[1])
    elif isinstance(factor, (int, float, np.floating, np.integer)) and not isinstance(factor, bool):
        lower, upper = -abs(float(factor)), abs(float(factor))
    else:
        raise ValueError(
            f"`{name}` must be a float or a tuple of 2 floats. Received: {name}={factor!r}"
        )
    if upper < lower:
        raise ValueError(
            f"`{name}` argument cannot have an upper bound lesser than the lower bound. "
            f"Received: {name}={factor!r}"
        )
    if lower < low or upper > high:
        raise ValueError(
            f"`{name}` must have values between [{low}, {high}]. Received: {name}={factor!r}"
        )
    return lower, upper


def as_config(factor: Any) -> Any:
    """Tuples become lists, so configs compare equal after a JSON round trip."""
    return list(factor) if isinstance(factor, tuple) else factor


class BaseRandomLayer(Layer):
    """Common plumbing: seed, data format, batching of unbatched images."""

    def __init__(self, seed: int | None = None, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.data_format = standardize_data_format(data_format)
        self.supports_masking = False

    def draw_uniform(self, n: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """One uniform float64 per image, drawn per global sample in deterministic training."""
        return self.seed_generator.host_uniform(n, low, high)

    def call(self, inputs: Tensor, training: bool = True) -> Tensor:
        check_image_rank(self, inputs)
        x = to_float(self, inputs)
        if not training:
            return x
        unbatched = x.ndim == 3
        if unbatched:
            x = ops.expand_dims(x, 0)
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        y = self.augment(x)
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, 3, 1, 2))
        return ops.squeeze(y, 0) if unbatched else y

    def augment(self, x: Tensor) -> Tensor:
        """Augments a channels-last batch; subclasses override it."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"seed": self.seed, "data_format": self.data_format})
        return cfg


class RandomFlip(BaseRandomLayer):
    """Flips each image horizontally and/or vertically with probability 1/2.

    Args:
        mode: 'horizontal', 'vertical' or 'horizontal_and_vertical'.
        seed: Seed of the layer's random stream.
    """

    def __init__(self, mode: str = HORIZONTAL_AND_VERTICAL, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in (HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL):
            raise ValueError(
                f"RandomFlip layer {self.name} received an unknown mode argument {mode}. "
                f"Received: mode={mode!r}"
            )
        self.mode = mode

    def augment(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        xp = current_module()
        if self.mode in (HORIZONTAL, HORIZONTAL_AND_VERTICAL):
            flip = xp.asarray(self.draw_uniform(n) < 0.5).reshape(n, 1, 1, 1)
            x = ops.where(
                flip, ops.getitem(x, (slice(None), slice(None), slice(None, None, -1))), x
            )
        if self.mode in (VERTICAL, HORIZONTAL_AND_VERTICAL):
            flip = xp.asarray(self.draw_uniform(n) < 0.5).reshape(n, 1, 1, 1)
            x = ops.where(flip, ops.getitem(x, (slice(None), slice(None, None, -1))), x)
        return x

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["mode"] = self.mode
        return cfg


class _AffineLayer(BaseRandomLayer):
    """Shared arguments of the layers that resample the image grid."""

    def __init__(
        self,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.fill_mode = image_ops.check_fill_mode(fill_mode)
        self.interpolation = image_ops.check_interpolation(interpolation)
        self.fill_value = float(fill_value)

    def transforms(self, n: int, h: int, w: int) -> np.ndarray:
        raise NotImplementedError

    def augment(self, x: Tensor) -> Tensor:
        n, h, w, _ = x.shape
        t = self.transforms(n, h, w)
        out = image_ops.keras_transform(
            x.data, t, self.interpolation, self.fill_mode, self.fill_value
        )
        return Tensor(out)  # no gradient through the resampling

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "fill_mode": self.fill_mode,
                "interpolation": self.interpolation,
                "fill_value": self.fill_value,
            }
        )
        return cfg


class RandomRotation(_AffineLayer):
    """Rotates each image by a random angle `factor * 2pi` (positive: counter-clockwise).

    Args:
        factor: Float f (range [-f, f]) or pair (lower, upper), as fractions of 2pi.
        fill_mode: 'reflect' (default), 'wrap', 'constant' or 'nearest'.
        interpolation: 'bilinear' (default) or 'nearest'.
        seed: Seed of the layer's random stream.
        fill_value: Value outside the image with fill_mode='constant'.
    """

    def __init__(
        self,
        factor: Any,
        fill_mode: str = "reflect",
        interpolation="bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self._lower, self._upper = parse_factor("factor", factor, -math.inf, math.inf)
        self.factor = as_config(factor)

    def transforms(self, n: int, h: int, w: int) -> np.ndarray:
        angles = self.draw_uniform(n, self._lower, self._upper) * 2.0 * math.pi
        return image_ops.rotation_transforms(angles, h, w)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["factor"] = self.factor
        return cfg


class RandomZoom(_AffineLayer):
    """Zooms each image by a random factor (positive values zoom out, negative zoom in).

    Args:
        height_factor: Float f (range [-f, f]) or pair, as fractions of the height.
        width_factor: Same for the width; None keeps the aspect ratio.
        fill_mode, interpolation, seed, fill_value: As in `RandomRotation`.
    """

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any = None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = as_config(height_factor)
        self.width_factor = as_config(width_factor)
        self._h = parse_factor("height_factor", height_factor, -1.0, math.inf)
        self._w = (
            None
            if width_factor is None
            else parse_factor("width_factor", width_factor, -1.0, math.inf)
        )
        for name, (lo, _) in (("height_factor", self._h), ("width_factor", self._w or (0, 0))):
            if lo <= -1.0:
                raise ValueError(
                    f"`{name}` argument must have values larger than -1. "
                    f"Received: {name}={getattr(self, name)!r}"
                )

    def transforms(self, n: int, h: int, w: int) -> np.ndarray:
        zy = 1.0 + self.draw_uniform(n, self._h[0], self._h[1])
        zx = zy if self._w is None else 1.0 + self.draw_uniform(n, self._w[0], self._w[1])
        return image_ops.zoom_transforms(zx, zy, h, w)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"height_factor": self.height_factor, "width_factor": self.width_factor})
        return cfg


class RandomTranslation(_AffineLayer):
    """Shifts each image by random fractions of its height and width.

    Args:
        height_factor: Float f (range [-f, f]) or pair in [-1, 1]; positive shifts down.
        width_factor: Same for the width; positive shifts right.
        fill_mode, interpolation, seed, fill_value: As in `RandomRotation`.
    """

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any,
        fill_mode="reflect",
        interpolation="bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = as_config(height_factor)
        self.width_factor = as_config(width_factor)
        self._h = parse_factor("height_factor", height_factor, -1.0, 1.0)
        self._w = parse_factor("width_factor", width_factor, -1.0, 1.0)

    def transforms(self, n: int, h: int, w: int) -> np.ndarray:
        dy = self.draw_uniform(n, self._h[0], self._h[1]) * h
        dx = self.draw_uniform(n, self._w[0], self._w[1]) * w
        return image_ops.translation_transforms(dx, dy)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"height_factor": self.height_factor, "width_factor": self.width_factor})
        return cfg


class RandomContrast(BaseRandomLayer):
    """Scales each image's deviation from its per-channel mean by a random factor.

    `out = clip((x - mean) * c + mean, *value_range)` with `c` uniform in
    `[1 - lower, 1 + upper]`.

    Args:
        factor: Float f in [0, 1] or pair (lower, upper).
        value_range: Range the outputs are clipped to.
        seed: Seed of the layer's random stream.
    """

    def __init__(
        self, factor: Any, value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any
    ):
        super().__init__(seed=seed, **kwargs)
        self.factor = as_config(factor)
        pair = factor if isinstance(factor, (tuple, list)) else (factor, factor)
        if len(pair) != 2 or not all(
            isinstance(f, (int, float, np.floating, np.integer)) and not isinstance(f, bool)
            for f in pair
        ):
            raise ValueError(
                f"`factor` must be a float or a tuple of 2 floats. Received: factor={factor!r}"
            )
        if any(f < 0 or f > 1 for f in pair):
            raise ValueError(
                "`factor` argument cannot have negative values or values greater than 1. "
                f"Received: factor={factor!r}"
            )
        self._lower, self._upper = float(pair[0]), float(pair[1])
        if len(value_range) != 2 or value_range[0] >= value_range[1]:
            raise ValueError(
                "`value_range` must be a pair (low, high) with low < high. "
                f"Received: value_range={value_range!r}"
            )
        self.value_range = tuple(value_range)

    def augment(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        xp = current_module()
        c = self.draw_uniform(n, 1.0 - self._lower, 1.0 + self._upper)
        c = xp.asarray(c, dtype=x.dtype).reshape(n, 1, 1, 1)
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        y = ops.add(ops.multiply(ops.subtract(x, mean), c), mean)
        return ops.clip(y, self.value_range[0], self.value_range[1])

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"factor": self.factor, "value_range": list(self.value_range)})
        return cfg
