"""Masking: skips timesteps whose features all equal `mask_value`."""

from __future__ import annotations

from typing import Any

from distkeras import ops
from distkeras.backend.autodiff import Tensor
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer


class Masking(Layer):
    """Masks timesteps where every feature equals `mask_value`.

    The output is the input with masked timesteps set to 0, carrying the mask
    `any(inputs != mask_value, axis=-1)` to the layers downstream (recurrent
    layers skip the masked steps).

    Args:
        mask_value: The padding value.

    Input shape: `(batch_size, timesteps, features)`. Output shape: the same.
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise ValueError(f"mask_value must be a number. Received: mask_value={mask_value!r}")
        self.mask_value = mask_value
        self.supports_masking = True

    def _keep(self, inputs: Any) -> Any:
        data = inputs.data if isinstance(inputs, Tensor) else inputs
        return (data != self.mask_value).any(axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        keep = self._keep(inputs)[..., None].astype(inputs.dtype)
        return ops.multiply(inputs, keep)

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if isinstance(inputs, KerasTensor):  # a symbolic mask, recorded as ops
            return ops.any(ops.not_equal(inputs, self.mask_value), axis=-1)
        return Tensor(self._keep(inputs))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["mask_value"] = self.mask_value
        return cfg
