"""What the recurrent cells share: argument checks, dropout masks, StackedRNNCells."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import activations, constraints, initializers, ops, regularizers
from distkeras.backend.autodiff import Tensor
from distkeras.backend.random import SeedGenerator
from distkeras.layers.layer import Layer


def check_units(value: Any) -> int:
    """Returns `units` as an int, or raises Keras's error for a non-positive value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            "Received an invalid value for argument `units`, expected a positive integer. "
            f"Received: units={value!r}"
        )
    return int(value)


def check_rate(name: str, value: Any) -> float:
    """Clips a dropout rate to [0, 1] as Keras does; rejects non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"`{name}` must be a float in [0, 1]. Received: {name}={value!r}")
    return min(1.0, max(0.0, float(value)))


def data_of(x: Any) -> Any:
    """The array behind a Tensor (or the value itself)."""
    return x.data if isinstance(x, Tensor) else x


class DropoutRNNCell:
    """Mixin for cells with `dropout`/`recurrent_dropout` and a `seed_generator`.

    One mask per sequence, drawn on the first step and reused for every step
    (reset by the RNN layer after each call), as in Keras 3.
    """

    _dropout_mask: Any = None
    _recurrent_dropout_mask: Any = None

    def _draw(self, like: Any, rate: float) -> Any:
        arr = data_of(like)
        keep = 1.0 - rate
        u = self.seed_generator.random(tuple(arr.shape), dtype=arr.dtype)
        mask = (u < keep).astype(arr.dtype)
        mask *= 1.0 / keep
        return mask

    def get_dropout_mask(self, step_input: Any) -> Any:
        """The input dropout mask (an array shaped like one step's input), or None."""
        if self._dropout_mask is None and self.dropout > 0:
            self._dropout_mask = self._draw(step_input, self.dropout)
        return self._dropout_mask

    def get_recurrent_dropout_mask(self, step_state: Any) -> Any:
        """The recurrent dropout mask (shaped like the state), or None."""
        if self._recurrent_dropout_mask is None and self.recurrent_dropout > 0:
            self._recurrent_dropout_mask = self._draw(step_state, self.recurrent_dropout)
        return self._recurrent_dropout_mask

    def reset_dropout_mask(self) -> None:
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self) -> None:
        self._recurrent_dropout_mask = None


def zero_states(batch_size: int, state_size: Any, dtype: str) -> Any:
    """Zero tensors with the structure of `state_size` (int or nested lists of ints)."""
    if isinstance(state_size, (list, tuple)):
        return [zero_states(batch_size, s, dtype) for s in state_size]
    return ops.zeros((batch_size, int(state_size)), dtype=dtype)


class StackedRNNCells(Layer):
    """Wraps a list of cells to behave as one cell (the output of each feeds the next).

    Args:
        cells: List of RNN cell instances.
    """

    def __init__(self, cells: list, **kwargs: Any):
        super().__init__(**kwargs)
        for cell in cells:
            if "call" not in dir(cell):
                raise ValueError(f"All cells must have a `call` method. Received: cells={cells}")
            if "state_size" not in dir(cell):
                raise ValueError(
                    f"All cells must have a `state_size` attribute. Received: cells={cells}"
                )
        self.cells = list(cells)

    @property
    def state_size(self) -> list:
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> int:
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        if isinstance(last.state_size, (list, tuple)):
            return last.state_size[0]
        return last.state_size

    def get_initial_state(self, batch_size: int | None = None) -> list:
        states = []
        for cell in self.cells:
            fn = getattr(cell, "get_initial_state", None)
            if fn is not None:
                states.append(fn(batch_size=batch_size))
            else:
                states.append(zero_states(batch_size, cell.state_size, self.compute_dtype))
        return states

    def call(self, inputs: Tensor, states: list, training: bool = False) -> tuple:
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            nested = isinstance(cell_states, (list, tuple))
            cell_states = list(cell_states) if nested else [cell_states]
            kwargs = {"training": training} if isinstance(cell, Layer) else {}
            if isinstance(cell, Layer) and not cell._signature()[0]:
                kwargs = {}
            inputs, out_states = cell(inputs, cell_states, **kwargs)
            if not isinstance(out_states, (list, tuple)):
                out_states = [out_states]
            out_states = list(out_states)
            new_states.append(out_states[0] if len(out_states) == 1 and not nested else out_states)
        return inputs, new_states

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._maybe_build(shape)
            out = getattr(cell, "output_size", None)
            if out is None:
                ss = cell.state_size
                out = ss[0] if isinstance(ss, (list, tuple)) else ss
            shape = (shape[0], out)
        self.built = True

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["cells"] = [serialize_sublayer(c) for c in self.cells]
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> StackedRNNCells:
        from distkeras import layers  # noqa: PLC0415

        config = dict(config)
        cells = [layers.deserialize(c, custom_objects=custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


class BaseCell(Layer, DropoutRNNCell):
    """Arguments, weights and config shared by SimpleRNNCell, LSTMCell and GRUCell.

    Subclasses set `gates` (how many `units`-wide blocks the kernels hold) and
    may create a different bias in `_build_bias`.
    """

    gates = 1

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ):
        units = check_units(units)
        kwargs.pop("implementation", None)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.state_size: Any = self.units
        self.output_size = self.units

    def build(self, input_shape: Any) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to {type(self).__name__} must be defined. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        n = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, n),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, n),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = self._build_bias() if self.use_bias else None
        self.built = True

    def _build_bias(self) -> Any:
        return self._add_bias((self.gates * self.units,), self.bias_initializer)

    def _add_bias(self, shape: tuple, initializer: Any) -> Any:
        """The `bias` weight of `shape`, with the cell's bias regularizer and constraint."""
        return self.add_weight(
            shape=shape,
            initializer=initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
            name="bias",
        )

    def _dropped(self, inputs: Tensor, h_prev: Tensor, training: bool) -> tuple:
        """Applies the (per-sequence) dropout masks in training."""
        if training and 0.0 < self.dropout < 1.0:
            inputs = ops.multiply(inputs, self.get_dropout_mask(inputs))
        if training and 0.0 < self.recurrent_dropout < 1.0:
            h_prev = ops.multiply(h_prev, self.get_recurrent_dropout_mask(h_prev))
        return inputs, h_prev

    def get_initial_state(self, batch_size: int | None = None) -> list:
        return zero_states(batch_size, flatten_sizes(self.state_size), self.compute_dtype)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
            }
        )
        return cfg


def flatten_sizes(state_size: Any) -> list:
    """`state_size` as a list (an int becomes a one-element list)."""
    return [state_size] if isinstance(state_size, int) else list(state_size)


def serialize_sublayer(layer: Any) -> dict:
    """A nested layer's config without its `build_config` (the wrapper rebuilds it)."""
    from distkeras.saving import serialize_keras_object  # noqa: PLC0415

    cfg = serialize_keras_object(layer)
    if isinstance(cfg, dict):
        cfg.pop("build_config", None)
    return cfg
