"""RNN: runs a cell over the time axis, with masks, initial and carried (stateful) states.

Layers whose cell has a fused time-loop primitive (SimpleRNN, LSTM, GRU with
their default activations) override `_fused_loop`; every other cell runs
through the generic loop, one `cell(x_t, states)` call per step through ops.
"""

from __future__ import annotations

from typing import Any

from distkeras import activations, ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, Variable, convert_to_tensor
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer
from distkeras.layers.recurrent.cells import (
    DropoutRNNCell,
    StackedRNNCells,
    data_of,
    serialize_sublayer,
    zero_states,
)
from distkeras.ops.rnn import unstack_time


def flatten(structure: Any) -> list:
    """Leaves of a nested list/tuple structure, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for s in structure for leaf in flatten(s)]
    return [structure]


def pack_like(structure: Any, flat: list) -> Any:
    """Rebuilds `structure`'s nesting (lists) from the leaves in `flat`."""
    it = iter(flat)

    def build(s):
        if isinstance(s, (list, tuple)):
            return [build(x) for x in s]
        return next(it)

    return build(structure)


def _is_shape(s: Any) -> bool:
    """Whether a `state_size`/`output_size` entry is one tensor's shape: an int or ints."""
    if isinstance(s, (list, tuple)):
        return len(s) > 0 and all(isinstance(d, int) for d in s)
    return isinstance(s, int)


def _dims(s: Any) -> tuple:
    """The per-sample shape that an entry of `state_size`/`output_size` names."""
    return (int(s),) if isinstance(s, int) else tuple(int(d) for d in s)


def _is_nested_shape(shape: Any) -> bool:
    """Whether a build/call shape is a list of input shapes (nested inputs)."""
    return isinstance(shape, list) or (len(shape) > 0 and isinstance(shape[0], (list, tuple)))


def _select(keep: Any, new: Tensor, old: Tensor) -> Tensor:
    """`new` where the step is kept, else `old` (keep: boolean `(batch,)`)."""
    k = keep.reshape((keep.shape[0],) + (1,) * (new.ndim - 1))
    return ops.where(k, new, old)


class RNN(Layer):
    """Base class for recurrent layers: applies a cell to every timestep.

    Args:
        cell: An RNN cell (a layer with `state_size` and
            `call(inputs, states, training=None) -> (output, new_states)`),
            or a list of cells (stacked with `StackedRNNCells`). A cell may take
            several inputs (the layer is called on a list of sequences, each step
            gets the list of their slices) and keep states or give outputs of any
            shape: each entry of `state_size`/`output_size` is an int or a tuple
            of ints (the shape without the batch axis), as tf.keras's
            `TensorShape` entries were.
        return_sequences: Return the full output sequence instead of the last output.
        return_state: Also return the last states (after the output).
        go_backwards: Process the sequence backwards (the output sequence is reversed).
        stateful: Reuse the last states of each batch as the initial states of the next
            (needs a fixed batch size); `reset_state()` zeroes them.
        unroll: Accepted for compatibility (loops are always Python loops here).
        zero_output_for_mask: Use zeros as the output of masked timesteps instead of
            repeating the previous output.

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: Tensor or list of tensors, the states for the first step.
        mask: Boolean `(batch, timesteps)`; False steps are skipped (the states carry
            over unchanged and the previous output repeats).
        training: Passed to the cell (dropout).
    """

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if "call" not in dir(cell):
            raise ValueError(f"Argument `cell` should have a `call` method. Received: cell={cell}")
        if "state_size" not in dir(cell):
            raise ValueError(
                "The RNN cell should have a `state_size` attribute (single integer or list of "
                f"integers, one integer per RNN state). Received: cell={cell}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=3)
        self.states: list[Variable] | None = None
        state_size = cell.state_size
        if not isinstance(state_size, (list, tuple, int)):
            raise ValueError(
                "state_size must be an integer, or a list/tuple of integers (one for each "
                f"state tensor). Received: state_size={state_size!r}"
            )
        self.single_state = isinstance(state_size, int)

    @property
    def state_size(self) -> list:
        ss = self.cell.state_size
        return [ss] if isinstance(ss, int) else list(ss)

    def _output_dims(self) -> Any:
        """The per-sample output shape, or a list of them for a cell with several outputs."""
        out = getattr(self.cell, "output_size", None)
        if out is None:  # the first state's shape
            first = self.state_size[0]
            shaped = self._shaped_states() and _is_shape(first)
            out = _dims(first) if shaped else flatten(self.state_size)[0]
        if isinstance(out, list):  # several outputs (a tuple of ints is one shape)
            return [_dims(o) for o in out]
        return _dims(out)

    def _shaped_states(self) -> bool:
        """Whether `state_size` entries are shapes (a custom cell), not per-cell sizes."""
        return not isinstance(self.cell, StackedRNNCells)

    # ------------------------------------------------------------ build / shapes
    def build(self, sequences_shape: Any, initial_state_shape: Any = None) -> None:
        if _is_nested_shape(sequences_shape):
            shapes = [tuple(s) for s in sequences_shape]
            step_shape: Any = [(s[0], *s[2:]) for s in shapes]
            shape = shapes[0]
        else:
            shape = tuple(sequences_shape)
            step_shape = (shape[0], *shape[2:])
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell._maybe_build(step_shape)
        if isinstance(self.cell, Layer):
            for v in self.cell.weights:
                if f"/{self.name}/" not in f"/{v.path}":  # a cell built on its own
                    v.path = f"{self.name}/{v.path}"
        if self.stateful:
            if shape[0] is None:
                raise ValueError(
                    "When using `stateful=True` in a RNN, the batch size must be static. "
                    f"Found dynamic batch size: sequence.shape={shape}"
                )
            self._create_state_variables(shape[0])
        self.built = True

    def _create_state_variables(self, batch_size: int) -> None:
        init = flatten(self.get_initial_state(batch_size))
        self.states = [
            Variable(data_of(s), trainable=False, name="rnn_state", dtype=self.compute_dtype)
            for s in init
        ]

    def compute_output_shape(self, sequences_shape: Any, initial_state_shape: Any = None) -> Any:
        shape = tuple(sequences_shape[0] if _is_nested_shape(sequences_shape) else sequences_shape)
        batch = shape[0]
        time = (shape[1],) if self.return_sequences else ()
        dims = self._output_dims()
        if isinstance(dims, list):
            out: Any = [(batch, *time, *d) for d in dims]
        else:
            out = (batch, *time, *dims)
        if not self.return_state:
            return out
        shaped = self._shaped_states()

        def state_shapes(s):
            if shaped and _is_shape(s):
                return (batch, *_dims(s))
            if isinstance(s, (list, tuple)):
                return [state_shapes(x) for x in s]
            return (batch, int(s))

        states = [state_shapes(s) for s in self.state_size]
        return [*out, *states] if isinstance(out, list) else [out, *states]

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        mask = previous_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if isinstance(self._output_dims(), list):
            output_mask = [output_mask] * len(self._output_dims())
            if self.return_state:
                return output_mask + [None for _ in self.state_size]
            return output_mask
        if self.return_state:
            return [output_mask] + [None for _ in self.state_size]
        return output_mask

    # ------------------------------------------------------------ states
    def get_initial_state(self, batch_size: int) -> list:
        """Zero states (or the cell's `get_initial_state`), one entry per state."""
        fn = getattr(self.cell, "get_initial_state", None)
        if fn is not None:
            init = fn(batch_size=batch_size)
            return list(init) if isinstance(init, (list, tuple)) else [init]
        dtype = getattr(self.cell, "compute_dtype", self.compute_dtype)
        if self._shaped_states():
            return [
                ops.zeros((batch_size, *_dims(s)), dtype=dtype)
                if _is_shape(s)
                else zero_states(batch_size, s, dtype)
                for s in self.state_size
            ]
        return [zero_states(batch_size, s, dtype) for s in self.state_size]

    def reset_state(self, states: Any = None) -> None:
        """Zeroes the carried states of a stateful layer (or sets them to `states`)."""
        if self.states is None:
            return
        if states is None:
            for v in self.states:
                v.assign(current_module().zeros(v.shape, dtype=v.dtype))
            return
        values = flatten(states)
        if len(values) != len(self.states):
            raise ValueError(
                f"Layer {self.name!r} expects {len(self.states)} states. "
                f"Received: {len(values)} states"
            )
        for v, s in zip(self.states, values):
            v.assign(data_of(s))

    reset_states = reset_state

    def _initial_states(self, initial_state: Any, batch_size: int) -> Any:
        structure = self.get_initial_state(batch_size)
        if initial_state is None:
            if self.stateful and self.states is not None:
                if self.states[0].shape[0] != batch_size:
                    raise ValueError(
                        f"Stateful layer {self.name!r} was built for batch size "
                        f"{self.states[0].shape[0]}. Received: batch size {batch_size}"
                    )
                # Copies, so later in-place updates of the state variables cannot
                # change values a recorded backward still needs.
                return pack_like(structure, [Tensor(v.data.copy()) for v in self.states])
            return structure
        given = flatten(
            initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
        )
        n = len(flatten(structure))
        if len(given) != n:
            raise ValueError(
                f"Layer {self.name!r} expects {n} initial state(s). "
                f"Received: initial_state with {len(given)} tensor(s)"
            )
        dtype = getattr(self.cell, "compute_dtype", self.compute_dtype)
        return pack_like(structure, [convert_to_tensor(s, dtype=dtype) for s in given])

    # ------------------------------------------------------------ loops
    def _fused_loop(self, sequences: Tensor, states: Any, mask: Any, training: bool) -> Any:
        """Runs the whole sequence in a fused primitive; None when not applicable.

        Returns `(outputs or None, last_state_output, new_states)` where outputs
        holds the carried output after every step.
        """
        return None

    def _generic_loop(self, sequences: Tensor, states: Any, mask: Any, training: bool) -> Any:
        cell = self.cell
        kwargs = {}
        if isinstance(cell, Layer) and cell._signature()[0]:
            kwargs["training"] = training
        if isinstance(sequences, (list, tuple)):  # nested inputs: a list of slices per step
            steps = [list(x) for x in zip(*(unstack_time(s) for s in sequences))]
        else:
            steps = unstack_time(sequences)
        outputs = []  # per step, the list of the cell's output tensors
        prev = None
        out = None
        for t, x_t in enumerate(steps):
            out, new_states = cell(x_t, states, **kwargs)
            if not isinstance(new_states, (list, tuple)):
                new_states = [new_states]
            flat_out = flatten(out)
            if mask is not None:
                keep = mask[:, t]
                if prev is None:
                    prev = [ops.zeros(o.shape, dtype=o.dtype) for o in flat_out]
                flat_out = [_select(keep, o, p) for o, p in zip(flat_out, prev)]
                new_states = pack_like(
                    new_states,
                    [_select(keep, n, o) for n, o in zip(flatten(new_states), flatten(states))],
                )
            outputs.append(flat_out)
            prev = flat_out
            states = list(new_states)
        if not isinstance(out, (list, tuple)):
            seq = ops.stack([o[0] for o in outputs], axis=1) if self.return_sequences else None
            return seq, outputs[-1][0], states
        seq = None
        if self.return_sequences:
            seq = [ops.stack(list(o), axis=1) for o in zip(*outputs)]
        return seq, list(outputs[-1]), states

    def _config_dropout(self, cell: Any, step_input: Any, states: Any, training: bool) -> None:
        if not training:
            return
        if isinstance(cell, DropoutRNNCell):
            cell.get_dropout_mask(step_input)
            cell.get_recurrent_dropout_mask(flatten(states)[0])
        if isinstance(cell, StackedRNNCells):
            for c, s in zip(cell.cells, states):
                self._config_dropout(c, step_input, s if isinstance(s, list) else [s], training)
                out_size = getattr(c, "output_size", None) or flatten([c.state_size])[0]
                step_input = current_module().zeros(
                    (data_of(step_input).shape[0], out_size), dtype=data_of(step_input).dtype
                )

    def _reset_dropout(self, cell: Any) -> None:
        if isinstance(cell, DropoutRNNCell):
            cell.reset_dropout_mask()
            cell.reset_recurrent_dropout_mask()
        if isinstance(cell, StackedRNNCells):
            for c in cell.cells:
                self._reset_dropout(c)

    def call(
        self,
        sequences: Tensor,
        initial_state: Any = None,
        mask: Any = None,
        training: bool = False,
    ) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        nested = isinstance(sequences, (list, tuple))
        first = sequences[0] if nested else sequences
        batch, steps = first.shape[0], first.shape[1]
        states = self._initial_states(initial_state, batch)
        keep = None
        if mask is not None:
            keep = current_module().asarray(data_of(mask)).astype(bool).reshape(batch, steps)
        x = sequences
        if self.go_backwards:
            backwards = (slice(None), slice(None, None, -1))
            x = [ops.getitem(s, backwards) for s in x] if nested else ops.getitem(x, backwards)
            keep = None if keep is None else keep[:, ::-1]
        self._config_dropout(self.cell, (x[0] if nested else x).data[:, 0], states, training)
        try:
            result = None if nested else self._fused_loop(x, states, keep, training)
            if result is None:
                result = self._generic_loop(x, states, keep, training)
        finally:
            self._reset_dropout(self.cell)
        outputs, last, new_states = result
        if keep is not None:
            if isinstance(last, list):
                seqs = outputs if outputs is not None else [None] * len(last)
                pairs = [self._mask_outputs(o, la, keep) for o, la in zip(seqs, last)]
                outputs = [p[0] for p in pairs] if outputs is not None else None
                last = [p[1] for p in pairs]
            else:
                outputs, last = self._mask_outputs(outputs, last, keep)
        if self.stateful and self.states is not None:
            for v, s in zip(self.states, flatten(new_states)):
                v.assign(s.data)
        output = outputs if self.return_sequences else last
        if self.return_state:
            return [*output, *new_states] if isinstance(output, list) else [output, *new_states]
        return output

    def _mask_outputs(self, outputs: Any, last: Tensor, keep: Any) -> tuple:
        """Keras repeats the previous *output* on masked steps, starting from zeros."""
        seen = current_module().cumsum(keep, axis=1) > 0
        extra = (1,) * (last.ndim - 1)  # the feature axes of one output
        if not bool(seen.all()):
            last = _select(seen[:, -1], last, ops.zeros(last.shape, dtype=last.dtype))
            if outputs is not None:
                outputs = ops.where(seen.reshape(seen.shape + extra), outputs, 0.0)
        if self.zero_output_for_mask:
            last = _select(keep[:, -1], last, ops.zeros(last.shape, dtype=last.dtype))
            if outputs is not None:
                outputs = ops.where(keep.reshape(keep.shape + extra), outputs, 0.0)
        return outputs, last

    # ------------------------------------------------------------ config
    def _rnn_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return cfg

    def get_config(self) -> dict:
        cfg = self._rnn_config()
        cfg["cell"] = serialize_sublayer(self.cell)
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> RNN:
        from distkeras import layers  # noqa: PLC0415

        config = dict(config)
        cell = layers.deserialize(config.pop("cell"), custom_objects=custom_objects)
        return cls(cell, **config)


_CELL_ATTRS = frozenset(
    {
        "units",
        "activation",
        "recurrent_activation",
        "use_bias",
        "unit_forget_bias",
        "reset_after",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "dropout",
        "recurrent_dropout",
        "seed",
    }
)


_RNN_ARGS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "activity_regularizer",
)


class CellLayer(RNN):
    """An RNN that owns one built-in cell (SimpleRNN, LSTM, GRU).

    The cell's arguments read through as attributes (`layer.units`), and the
    config is the RNN flags plus the cell's arguments, as in Keras.
    """

    cell_class: type
    cell_name: str

    def __init__(self, cell: Layer, **kwargs: Any):
        kwargs.pop("use_cudnn", None)
        super().__init__(cell, **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def _init_with_cell(self, args: dict) -> None:
        """Builds the `cell_class` cell and the layer from a layer's `__init__` arguments.

        Args:
            args: The `locals()` of the subclass's `__init__`: `self`, the
                arguments of the cell, those of `RNN` (`return_sequences`,
                `return_state`, `go_backwards`, `stateful`, `unroll`,
                `activity_regularizer`) and `kwargs` (the Layer's: the cell shares
                its dtype and trainable flag, and is named `cell_name`).
        """
        cell_args = {k: v for k, v in args.items() if k not in ("self", "__class__", "kwargs")}
        rnn_args = {k: cell_args.pop(k) for k in _RNN_ARGS}
        kwargs = args["kwargs"]
        cell = self.cell_class(
            **cell_args,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=self.cell_name,
        )
        CellLayer.__init__(self, cell, **rnn_args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        cell = self.__dict__.get("cell")
        if cell is not None and name in _CELL_ATTRS:
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self) -> dict:
        cfg = self._rnn_config()
        cell_cfg = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_cfg.pop(key, None)
        cfg.update(cell_cfg)
        return cfg

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> CellLayer:
        return cls(**config)

    def _fusable(self, training: bool) -> bool:
        """Whether the fused loop computes exactly what the cell would."""
        cell = self.cell
        return not (training and cell.recurrent_dropout > 0) and type(cell) is self.cell_class

    def _gates_fusable(self, training: bool) -> bool:
        """`_fusable` with the default activations of a gated cell ('tanh', 'sigmoid')."""
        cell = self.cell
        return (
            self._fusable(training)
            and cell.activation is activations.tanh
            and cell.recurrent_activation is activations.sigmoid
        )

    def _dropped_inputs(self, x: Tensor, training: bool) -> Tensor:
        mask = self.cell.get_dropout_mask(x.data[:, 0]) if training else None
        if mask is None or not 0.0 < self.cell.dropout < 1.0:
            return x
        return ops.multiply(x, mask[:, None, :])
