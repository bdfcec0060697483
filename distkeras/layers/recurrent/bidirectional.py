"""Bidirectional: runs a recurrent layer forwards and backwards and merges the outputs."""

from __future__ import annotations

import copy
from typing import Any

from distkeras import ops
from distkeras.backend.autodiff import Tensor
from distkeras.layers.layer import Layer
from distkeras.layers.recurrent.cells import serialize_sublayer

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _reverse_time(x: Tensor) -> Tensor:
    return ops.getitem(x, (slice(None), slice(None, None, -1)))


class Bidirectional(Layer):
    """Bidirectional wrapper for RNNs.

    Args:
        layer: A recurrent layer instance (RNN, LSTM, GRU, ...). A fresh copy made
            from its config runs forwards; another one with `go_backwards` flipped
            runs backwards, unless `backward_layer` is given.
        merge_mode: How the two outputs combine: 'concat' (default), 'sum', 'mul',
            'ave', or None (a list of both outputs).
        backward_layer: Optional recurrent layer for the backward direction.

    Call arguments: `sequences`, `initial_state` (forward states then backward
    states), `mask`, `training`.
    """

    def __init__(
        self,
        layer: Layer,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: Layer | None = None,
        **kwargs: Any,
    ):
        from distkeras import layers  # noqa: PLC0415

        if not isinstance(layer, Layer):
            raise ValueError(
                "Please initialize `Bidirectional` layer with a `Layer` instance. "
                f"Received: layer={layer}"
            )
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(
                f"`backward_layer` need to be a `Layer` instance. Received: {backward_layer}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                "Invalid merge mode. Merge mode should be one of "
                f'{{"sum", "mul", "ave", "concat", None}}. Received: merge_mode={merge_mode!r}'
            )
        super().__init__(**kwargs)
        config = serialize_sublayer(layer)
        config["config"]["name"] = "forward_" + layer.name.removeprefix("forward_")
        self.forward_layer = layers.deserialize(config)
        if backward_layer is None:
            config = serialize_sublayer(layer)
            config["config"]["go_backwards"] = not config["config"].get("go_backwards", False)
            config["config"]["name"] = "backward_" + layer.name.removeprefix("backward_")
            self.backward_layer = layers.deserialize(config)
        else:
            self.backward_layer = backward_layer
        self._verify_layer_config()
        for sub in (self.forward_layer, self.backward_layer):
            if getattr(sub, "zero_output_for_mask", None) is not None:
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self._initial_weights = weights
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True
        self.input_spec = layer.input_spec

    def _verify_layer_config(self) -> None:
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards={fwd.go_backwards}, "
                f"backward_layer.go_backwards={bwd.go_backwards}"
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(
                    "Forward layer and backward layer are expected to have the same value for "
                    f'attribute "{attr}". Received: {getattr(fwd, attr)} for the forward layer '
                    f"and {getattr(bwd, attr)} for the backward layer"
                )

    def build(self, sequences_shape: Any, initial_state_shape: Any = None) -> None:
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub._maybe_build(tuple(sequences_shape))
        self.built = True
        if self._initial_weights:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, sequences_shape: Any, initial_state_shape: Any = None) -> Any:
        out = self.forward_layer.compute_output_shape(tuple(sequences_shape))
        states: list = []
        if self.return_state:
            out, states = out[0], list(out[1:])
        if self.merge_mode == "concat":
            out = (*tuple(out)[:-1], out[-1] * 2)
        outputs = [tuple(out), tuple(out)] if self.merge_mode is None else [tuple(out)]
        if self.return_state:
            return outputs + states + states
        return outputs if self.merge_mode is None else outputs[0]

    def call(
        self,
        sequences: Tensor,
        initial_state: Any = None,
        mask: Any = None,
        training: bool | None = None,
    ) -> Any:
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state = list(initial_state[:half])
            backward_state = list(initial_state[half:])
        kwargs = {"mask": mask}
        if training is not None:
            kwargs["training"] = training
        y = self.forward_layer(sequences, initial_state=forward_state, **kwargs)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, **kwargs)
        states: list = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = _reverse_time(y_rev)
        if self.merge_mode == "concat":
            output: Any = ops.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = ops.add(y, y_rev)
        elif self.merge_mode == "ave":
            output = ops.multiply(ops.add(y, y_rev), 0.5)
        elif self.merge_mode == "mul":
            output = ops.multiply(y, y_rev)
        else:
            output = [y, y_rev]
        if self.return_state:
            return (output if isinstance(output, list) else [output]) + states
        return output

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        mask = previous_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.return_sequences:
            output_mask: Any = [mask, mask] if not self.merge_mode else mask
        else:
            output_mask = [None, None] if not self.merge_mode else None
        if self.return_state:
            n = len(self.forward_layer.state_size)
            head = output_mask if isinstance(output_mask, list) else [output_mask]
            return head + [None] * (2 * n)
        return output_mask

    @property
    def states(self) -> Any:
        if self.forward_layer.states and self.backward_layer.states:
            return tuple(self.forward_layer.states + self.backward_layer.states)
        return None

    def reset_state(self) -> None:
        """Zeroes the carried states of both directions (stateful layers only)."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["merge_mode"] = self.merge_mode
        cfg["layer"] = serialize_sublayer(self.forward_layer)
        cfg["backward_layer"] = serialize_sublayer(self.backward_layer)
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Bidirectional:
        from distkeras import layers  # noqa: PLC0415

        config = copy.deepcopy(config)
        config["layer"] = layers.deserialize(config["layer"], custom_objects=custom_objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            config["backward_layer"] = layers.deserialize(backward, custom_objects=custom_objects)
        return cls(**config)
