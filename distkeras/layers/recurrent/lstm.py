"""LSTMCell and LSTM (Hochreiter 1997), Keras 3 gate order i, f, c, o."""

from __future__ import annotations

from typing import Any

from distkeras import activations, ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.recurrent.cells import BaseCell
from distkeras.layers.recurrent.rnn import CellLayer


class LSTMCell(BaseCell):
    """One LSTM step: `c = f * c_prev + i * tanh(x W_c + h U_c + b_c)`, `h = o * tanh(c)`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the candidate and the output ('tanh').
        recurrent_activation: Activation of the gates i, f, o ('sigmoid').
        use_bias: Whether to use a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: Initializers
            ('glorot_uniform', 'orthogonal', 'zeros').
        unit_forget_bias: Add 1 to the forget-gate bias at initialization.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: Constraints.
        dropout: Fraction of the inputs to drop (one mask per sequence).
        recurrent_dropout: Fraction of the recurrent state to drop.
        seed: Seed of the dropout masks.

    Call arguments: `inputs` `(batch, features)`, `states` `[h, c]`, `training`.
    """

    gates = 4

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def _build_bias(self) -> Any:
        base = init = self.bias_initializer
        if self.unit_forget_bias:
            units = self.units

            def init_with_forget_ones(shape, dtype=None):
                value = current_module().array(base((4 * units,), dtype=dtype))
                value[units : 2 * units] = 1.0
                return value

            init = init_with_forget_ones
        return self._add_bias((4 * self.units,), init)

    def call(self, inputs: Tensor, states: Any, training: bool = False) -> tuple:
        h_prev, c_prev = states[0], states[1]
        inputs, h_rec = self._dropped(inputs, h_prev, training)
        z = ops.add(ops.matmul(inputs, self.kernel), ops.matmul(h_rec, self.recurrent_kernel))
        if self.bias is not None:
            z = ops.add(z, self.bias)
        z0, z1, z2, z3 = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z0)
        f = self.recurrent_activation(z1)
        c = ops.add(ops.multiply(f, c_prev), ops.multiply(i, self.activation(z2)))
        o = self.recurrent_activation(z3)
        h = ops.multiply(o, self.activation(c))
        return h, [h, c]

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        cfg["unit_forget_bias"] = self.unit_forget_bias
        return cfg


class LSTM(CellLayer):
    """Long Short-Term Memory layer (Hochreiter 1997).

    With the default activations ('tanh', 'sigmoid') and no recurrent dropout in
    training, the whole sequence runs in one fused primitive with a hand-written
    backward through time; other configurations loop over `LSTMCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: As in `LSTMCell`.
        activity_regularizer: Regularizer of the output.
        return_sequences, return_state, go_backwards, stateful, unroll: As in `RNN`.

    Input shape: `(batch, timesteps, features)`. Output shape: `(batch, units)`, or
    `(batch, timesteps, units)` with `return_sequences`; with `return_state` the
    list `[output, h, c]`.
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
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
        if not self._gates_fusable(training):
            return None
        x = self._dropped_inputs(sequences, training)
        steps = x.shape[1]
        packed = ops.lstm(
            x,
            states[0],
            states[1],
            cell.kernel,
            cell.recurrent_kernel,
            cell.bias,
            mask,
            return_sequences=self.return_sequences,
        )
        if not self.return_sequences:  # (batch, 2, units): the last h and c only
            h = packed[:, 0]
            return None, h, [h, packed[:, 1]]
        h = packed[:, steps - 1]
        return packed[:, :steps], h, [h, packed[:, steps]]
