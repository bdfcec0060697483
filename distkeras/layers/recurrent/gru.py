"""GRUCell and GRU (Cho et al. 2014), Keras 3 gate order z, r, h; reset_after=True default."""

from __future__ import annotations

from typing import Any

from distkeras import activations, ops
from distkeras.backend.autodiff import Tensor
from distkeras.layers.recurrent.cells import BaseCell
from distkeras.layers.recurrent.rnn import CellLayer


class GRUCell(BaseCell):
    """One GRU step: `h = z * h_prev + (1 - z) * h~`.

    With `reset_after=True` (the default): `h~ = tanh(x W_h + b_h + r * (h U_h + b'_h))`
    and the bias has shape `(2, 3 units)` (input and recurrent biases); with
    `reset_after=False`: `h~ = tanh(x W_h + (r * h) U_h + b_h)`, bias `(3 units,)`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the candidate ('tanh').
        recurrent_activation: Activation of the gates z, r ('sigmoid').
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: As in `LSTMCell`.
        reset_after: Apply the reset gate after the recurrent matmul.

    Call arguments: `inputs` `(batch, features)`, `states` `[h]` (or `h`), `training`.
    """

    gates = 3

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        reset_after: bool = True,
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
        self.reset_after = bool(reset_after)

    def _build_bias(self) -> Any:
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return self._add_bias(shape, self.bias_initializer)

    def call(self, inputs: Tensor, states: Any, training: bool = False) -> tuple:
        nested = isinstance(states, (list, tuple))
        h_prev = states[0] if nested else states
        inputs, h_rec = self._dropped(inputs, h_prev, training)
        units = self.units
        x = ops.matmul(inputs, self.kernel)
        rec_bias = None
        if self.bias is not None:
            if self.reset_after:
                x = ops.add(x, self.bias[0])
                rec_bias = self.bias[1]
            else:
                x = ops.add(x, self.bias)
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        if self.reset_after:
            inner = ops.matmul(h_rec, self.recurrent_kernel)
            if rec_bias is not None:
                inner = ops.add(inner, rec_bias)
        else:
            inner = ops.matmul(h_rec, self.recurrent_kernel[:, : 2 * units])
        z = self.recurrent_activation(ops.add(x_z, inner[:, :units]))
        r = self.recurrent_activation(ops.add(x_r, inner[:, units : 2 * units]))
        if self.reset_after:
            rec_h = ops.multiply(r, inner[:, 2 * units :])
        else:
            rec_h = ops.matmul(ops.multiply(r, h_rec), self.recurrent_kernel[:, 2 * units :])
        hh = self.activation(ops.add(x_h, rec_h))
        h = ops.add(ops.multiply(z, h_prev), ops.multiply(ops.subtract(1.0, z), hh))
        return h, ([h] if nested else h)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        cfg["reset_after"] = self.reset_after
        return cfg


class GRU(CellLayer):
    """Gated Recurrent Unit layer (Cho et al. 2014).

    With the default activations ('tanh', 'sigmoid') and no recurrent dropout in
    training, the whole sequence runs in one fused primitive with a hand-written
    backward through time; other configurations loop over `GRUCell`.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
            seed, reset_after: As in `GRUCell`.
        activity_regularizer: Regularizer of the output.
        return_sequences, return_state, go_backwards, stateful, unroll: As in `RNN`.

    Input shape: `(batch, timesteps, features)`. Output shape: `(batch, units)`, or
    `(batch, timesteps, units)` with `return_sequences`; with `return_state` the
    list `[output, h]`.
    """

    cell_class = GRUCell
    cell_name = "gru_cell"

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
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
        reset_after: bool = True,
        **kwargs: Any,
    ):
        self._init_with_cell(locals())

    def _fused_loop(self, sequences: Tensor, states: Any, mask: Any, training: bool) -> Any:
        cell = self.cell
        if not self._gates_fusable(training):
            return None
        x = self._dropped_inputs(sequences, training)
        seq = ops.gru(
            x,
            states[0],
            cell.kernel,
            cell.recurrent_kernel,
            cell.bias,
            mask,
            reset_after=cell.reset_after,
        )
        h = seq[:, x.shape[1] - 1]
        return (seq if self.return_sequences else None), h, [h]
