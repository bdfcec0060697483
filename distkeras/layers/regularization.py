"""Noise and structured dropout layers: SpatialDropout1D/2D/3D, GaussianNoise,
GaussianDropout, AlphaDropout. All are the identity outside training.

Every layer draws from its `SeedGenerator` with the batch on the first axis,
so in deterministic data-parallel training (`sample_stream` in
`distkeras.backend.random`) each sample's noise is keyed by the global seed,
the step and the sample's global index, whatever the number of workers (see
`Dropout`'s docstring for what the default mode guarantees).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from distkeras import ops
from distkeras.backend.autodiff import Tensor
from distkeras.backend.random import SeedGenerator
from distkeras.layers.core import Dropout
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer
from distkeras.layers.reshaping import standardize_data_format

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a float value between "
            f"0 and 1 (1 excluded). Received: {name}={value!r}"
        )
    return float(value)


class _NoiseLayer(Layer):
    """Shared config of the noise layers: a seed and its random stream."""

    def __init__(self, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["seed"] = self.seed
        return cfg


class GaussianNoise(_NoiseLayer):
    """Adds zero-centred Gaussian noise of standard deviation `stddev` in training.

    Args:
        stddev: Standard deviation of the noise, in [0, 1].
        seed: Seed of the layer's random stream.
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or not 0 <= stddev <= 1:
            raise ValueError(
                "Invalid value received for argument `stddev`. Expected a float value between "
                f"0 and 1. Received: stddev={stddev!r}"
            )
        self.stddev = float(stddev)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.stddev == 0:
            return inputs
        noise = self.seed_generator.normal(inputs.shape, stddev=self.stddev, dtype=inputs.dtype)
        return ops.add(inputs, noise)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["stddev"] = self.stddev
        return cfg


class GaussianDropout(_NoiseLayer):
    """Multiplies by Gaussian noise of mean 1 and stddev `sqrt(rate / (1 - rate))` in training.

    Args:
        rate: Drop probability in [0, 1) (as in Dropout).
        seed: Seed of the layer's random stream.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed, **kwargs)
        self.rate = _check_rate("rate", rate)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = self.seed_generator.normal(inputs.shape, 1.0, stddev, dtype=inputs.dtype)
        return ops.multiply(inputs, noise)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["rate"] = self.rate
        return cfg


class AlphaDropout(_NoiseLayer):
    """Dropout that keeps the self-normalizing mean and variance (for SELU networks).

    Dropped units are set to `-alpha * scale` of SELU, then the output is
    `a * x + b` with `a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5` and
    `b = -a * alpha_p * rate`.

    Args:
        rate: Drop probability in [0, 1).
        noise_shape: Shape of the keep mask (None entries take the input's size).
        seed: Seed of the layer's random stream.
    """

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(seed, **kwargs)
        self.rate = _check_rate("rate", rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(inputs.shape, self.noise_shape))
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        kept = (self.seed_generator.random(shape, dtype=inputs.dtype) >= self.rate).astype(
            inputs.dtype
        )
        a = ((1.0 - self.rate) * (1.0 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        x = ops.add(ops.multiply(inputs, kept), alpha_p * (1.0 - kept))
        return ops.add(ops.multiply(x, a), b)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["rate"] = self.rate
        cfg["noise_shape"] = None if self.noise_shape is None else list(self.noise_shape)
        return cfg


class _SpatialDropout(Dropout):
    """Drops whole feature maps: the mask has size 1 on every spatial axis."""

    _rank = 1

    def __init__(
        self, rate: float, data_format: Any = None, seed: int | None = None, **kwargs: Any
    ):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.data_format == "channels_last":
            mask_shape = (shape[0], *([1] * self._rank), shape[-1])
        else:
            mask_shape = (shape[0], shape[1], *([1] * self._rank))
        keep = 1.0 - self.rate
        mask = (self.seed_generator.random(mask_shape, dtype=inputs.dtype) < keep).astype(
            inputs.dtype
        )
        mask *= 1.0 / keep
        return ops.multiply(inputs, mask)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("noise_shape", None)
        cfg["data_format"] = self.data_format
        return cfg


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of `(batch, steps, channels)` inputs.

    Args:
        rate: Fraction of the channels to drop, in [0, 1).
        seed: Seed of the layer's random stream.
    """

    _rank = 1

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        kwargs.pop("noise_shape", None)
        kwargs.pop("data_format", None)
        super().__init__(rate, None, seed, **kwargs)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("data_format")
        return cfg


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole 2D feature maps.

    Args:
        rate: Fraction of the channels to drop, in [0, 1).
        data_format: 'channels_last' (default) or 'channels_first'.
        seed: Seed of the layer's random stream.
    """

    _rank = 2

    def __init__(
        self, rate: float, data_format: Any = None, seed: int | None = None, **kwargs: Any
    ):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, data_format, seed, **kwargs)


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole 3D feature maps.

    Args:
        rate: Fraction of the channels to drop, in [0, 1).
        data_format: 'channels_last' (default) or 'channels_first'.
        seed: Seed of the layer's random stream.
    """

    _rank = 3

    def __init__(
        self, rate: float, data_format: Any = None, seed: int | None = None, **kwargs: Any
    ):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, data_format, seed, **kwargs)
