"""SimpleRNNCell and SimpleRNN: `h = activation(x W + h_prev U + b)`."""

from __future__ import annotations

from typing import Any

from distkeras import activations, ops
from distkeras.backend.autodiff import Tensor
from distkeras.layers.recurrent.cells import BaseCell
from distkeras.layers.recurrent.rnn import CellLayer

_FUSED = {activations.tanh: "tanh", activations.relu: "relu", activations.linear: "linear"}


class SimpleRNNCell(BaseCell):
    """One fully-connected recurrent step: `h = activation(x W + h_prev U + b)`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation function ('tanh').
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: As in `LSTMCell`.

    Call arguments: `inputs` `(batch, features)`, `states` `[h]` (or `h`), `training`.
    """

    gates = 1

    def call(self, inputs: Tensor, states: Any, training: bool = False) -> tuple:
        nested = isinstance(states, (list, tuple))
        h_prev = states[0] if nested else states
        inputs, h_prev = self._dropped(inputs, h_prev, training)
        h = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            h = ops.add(h, self.bias)
        out = ops.add(h, ops.matmul(h_prev, self.recurrent_kernel))
        if self.activation is not None:
            out = self.activation(out)
        return out, ([out] if nested else out)


class SimpleRNN(CellLayer):
    """Fully-connected RNN whose output is fed back as the next input state.

    With activation 'tanh', 'relu' or 'linear' and no recurrent dropout in
    training, the sequence runs in one fused primitive; otherwise the layer
    loops over `SimpleRNNCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, dropout, recurrent_dropout, seed: As in `SimpleRNNCell`.
        activity_regularizer: Regularizer of the output.
        return_sequences, return_state, go_backwards, stateful, unroll: As in `RNN`.

    Input shape: `(batch, timesteps, features)`. Output shape: `(batch, units)`, or
    `(batch, timesteps, units)` with `return_sequences`.
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"

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
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        **kwargs: Any,
    ):
        self._init_with_cell(locals())

    def _fused_loop(self, sequences: Tensor, states: Any, mask: Any, training: bool) -> Any:
        cell = self.cell
        act = _FUSED.get(cell.activation)
        if act is None or not self._fusable(training):
            return None
        x = self._dropped_inputs(sequences, training)
        seq = ops.simple_rnn(
            x, states[0], cell.kernel, cell.recurrent_kernel, cell.bias, mask, activation=act
        )
        h = seq[:, x.shape[1] - 1]
        return (seq if self.return_sequences else None), h, [h]
