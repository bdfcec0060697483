"""TimeDistributed: applies a layer to every temporal slice of an input."""

from __future__ import annotations

import copy
from typing import Any

from distkeras import ops
from distkeras.backend.autodiff import Tensor
from distkeras.layers.layer import Layer
from distkeras.layers.recurrent.cells import serialize_sublayer


class TimeDistributed(Layer):
    """Applies `layer` to every timestep (axis 1) of the input.

    The batch and time axes are merged into one before the inner layer runs (one
    call over `batch * timesteps` samples, which equals one call per timestep
    for every layer whose output for a sample depends only on that sample).

    Args:
        layer: A `Layer` instance.

    Input shape: `(batch, timesteps, ...)`, at least 3D.
    Output shape: `(batch, timesteps) + layer output shape[1:]`.
    """

    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(
                "Please initialize `TimeDistributed` layer with a `Layer` instance. "
                f"Received: layer={layer}"
            )
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = True

    @staticmethod
    def _child_shape(input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if len(shape) < 3:
            raise ValueError(
                "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 "
                f"dimensions. Received: input_shape={shape}"
            )
        return (shape[0], *shape[2:])

    def build(self, input_shape: Any) -> None:
        child = self._child_shape(input_shape)
        if not self.layer.built:
            self.layer._maybe_build(child)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        child_out = tuple(self.layer.compute_output_shape(self._child_shape(shape)))
        return (child_out[0], shape[1], *child_out[1:])

    def call(self, inputs: Tensor, training: bool | None = None, mask: Any = None) -> Tensor:
        self._child_shape(inputs.shape)
        batch, steps = inputs.shape[0], inputs.shape[1]
        x = ops.reshape(inputs, (batch * steps, *inputs.shape[2:]))
        kwargs: dict = {}
        if training is not None:
            kwargs["training"] = training
        takes_mask = self.layer._signature()[1]
        if takes_mask and mask is not None:
            m = mask.data if isinstance(mask, Tensor) else mask
            kwargs["mask"] = m.reshape((batch * steps, *m.shape[2:]))
        y = self.layer(x, **kwargs)
        return ops.reshape(y, (batch, steps, *y.shape[1:]))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["layer"] = serialize_sublayer(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> TimeDistributed:
        from distkeras import layers  # noqa: PLC0415

        config = copy.deepcopy(config)
        config["layer"] = layers.deserialize(config["layer"], custom_objects=custom_objects)
        return cls(**config)
