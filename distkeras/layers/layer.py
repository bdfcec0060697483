"""The `Layer` base class: config -> build -> call -> get_config, as in Keras 3."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras import constraints as constraints_mod
from distkeras import initializers as initializers_mod
from distkeras import regularizers as regularizers_mod
from distkeras.backend import current_module, floatx, standardize_dtype
from distkeras.backend.autodiff import Tensor, Variable, convert_to_tensor, dtype_name, no_grad
from distkeras.backend.random import SeedGenerator
from distkeras.layers.input_spec import InputSpec, assert_input_compatibility
from distkeras.layers.keras_tensor import KerasTensor, Node
from distkeras.layers.mask_propagation import flat_values as _flat_values
from distkeras.layers.mask_propagation import input_mask as _input_mask
from distkeras.layers.mask_propagation import set_output_masks, symbolic_mask
from distkeras.layers.symbolic_trace import trace_masks, trace_output_shapes
from distkeras.saving.limits import check_trace, check_weight
from distkeras.utils.naming import auto_name

_CALL_CONTEXT: dict[str, Any] = {"training": None, "depth": 0}
_PLAIN_ARGS = (bool, int, float, str, type(None))  # call flags that cannot be symbolic
# The layers being built, outermost first: Keras 3's name scopes. A weight created
# while a Sequential builds its layers gets the path "seq/dense/kernel".
_BUILDING: list[Any] = []


class build_scope:  # noqa: N801 - used as a context manager, like Keras's name_scope
    """Enters `layer`'s name scope while it builds or calls (a no-op if it is the innermost).

    Keras 3 opens a layer's name scope around its whole `__call__`, so a sublayer
    first built inside the `call` of a layer without `build` (or of a subclassed
    model) gets a path under it: "outer/inner/kernel".
    """

    def __init__(self, layer: Any):
        self.layer = layer
        self.pushed = False

    def __enter__(self) -> None:
        if not _BUILDING or _BUILDING[-1] is not self.layer:
            _BUILDING.append(self.layer)
            self.pushed = True

    def __exit__(self, *exc: Any) -> None:
        if self.pushed:
            _BUILDING.pop()


def weight_path(layer: Any, name: str) -> str:
    """The `path` of a weight `layer` creates now: the building layers' names, then its own."""
    scope = [b.name for b in _BUILDING]
    if not _BUILDING or _BUILDING[-1] is not layer:
        scope.append(layer.name)
    return "/".join([*scope, name])


def current_training(training: Any) -> bool:
    """Resolves `training=None` from the enclosing call, defaulting to False."""
    if training is None:
        training = _CALL_CONTEXT["training"]
    return bool(training) if training is not None else False


class Layer:
    """Base class of all layers.

    Args:
        trainable: Whether the layer's weights are updated by training.
        name: Layer name (auto-generated from the class name when omitted).
        dtype: Dtype of the weights and computations (the default float type).
        input_shape: Shape of the input without the batch axis (first layer of a
            Sequential model only).
    """

    _CALL_SIGNATURE: dict[type, tuple[bool, bool, bool | None]] = {}
    # Models: output masks come out of the inner layers, so symbolic calls are traced.
    _masks_from_call = False

    def __init__(
        self,
        *,
        trainable: bool = True,
        name: str | None = None,
        dtype: Any = None,
        autocast: bool = True,
        input_shape: Sequence[int | None] | None = None,
        batch_input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        batch_size: int | None = None,
        activity_regularizer: Any = None,
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        object.__setattr__(self, "_tracked_layers", [])
        if name is None:
            name = auto_name(type(self).__name__)
        if not isinstance(name, str) or "/" in name:
            raise ValueError(
                "Argument `name` must be a string and cannot contain character `/`. "
                f"Received: name={name!r} (of type {type(name).__name__})"
            )
        self.name = name
        if isinstance(dtype, dict):  # a serialized DTypePolicy
            dtype = dtype.get("config", {}).get("name", floatx())
        self._dtype = standardize_dtype(dtype) if dtype is not None else floatx()
        self._trainable = bool(trainable)
        self.autocast = autocast
        self.built = False
        # As in Keras 3: a layer that defines `compute_mask` supports masking.
        self.supports_masking = type(self).compute_mask is not Layer.compute_mask
        self.input_spec: InputSpec | list[InputSpec] | None = None
        self._trainable_variables: list[Variable] = []
        self._non_trainable_variables: list[Variable] = []
        self._regularized: list[tuple[Variable, Any]] = []
        self._call_losses: list[Tensor] = []
        self._seed_generators: list[SeedGenerator] = []
        self._inbound_nodes: list[Node] = []
        self._build_shapes: Any = None
        self.activity_regularizer = regularizers_mod.get(activity_regularizer)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape: tuple | None = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size, *tuple(input_shape))
        else:
            self._batch_input_shape = None

    # ------------------------------------------------------------ tracking
    def __setattr__(self, name: str, value: Any) -> None:
        tracked = self.__dict__.get("_tracked_layers")
        if tracked is not None and not name.startswith("_"):
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Layer) and item is not self and item not in tracked:
                    tracked.append(item)
            if isinstance(value, SeedGenerator) and value not in self._seed_generators:
                self._seed_generators.append(value)
        object.__setattr__(self, name, value)

    @property
    def _layers(self) -> list[Layer]:
        return self._tracked_layers

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def compute_dtype(self) -> str:
        return self._dtype

    @property
    def variable_dtype(self) -> str:
        return self._dtype

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = bool(value)
        self._trainable = value
        for v in self._trainable_variables:
            v.trainable = value
        for layer in self._layers:
            layer.trainable = value

    # ------------------------------------------------------------ weights
    def add_weight(
        self,
        shape: Sequence[int] | None = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Variable:
        """Creates a weight variable tracked by this layer.

        Args:
            shape: Shape of the weight.
            initializer: Initializer instance, name or callable ('glorot_uniform' for
                floats and 'zeros' otherwise when omitted).
            dtype: Weight dtype (the layer's dtype when omitted).
            trainable: Whether training updates it.
            regularizer: Penalty added to `layer.losses`.
            constraint: Projection applied after each optimizer update.
            name: Weight name.
        """
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to add_weight: {kwargs}")
        shape = tuple(int(s) for s in (shape or ()))
        dtype = standardize_dtype(dtype) if dtype is not None else self._dtype
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype).kind == "f" else "zeros"
        init = initializers_mod.get(initializer)
        check_weight(shape, f"{self.name}/{name or 'variable'}")  # a no-op unless loading a file
        var = Variable(
            init,
            shape=shape,
            dtype=dtype,
            trainable=trainable and self._trainable,
            name=name or "variable",
            constraint=constraints_mod.get(constraint),
        )
        var.path = weight_path(self, var.name)
        if trainable:
            self._trainable_variables.append(var)
            if not self._trainable:
                var.trainable = False
        else:
            self._non_trainable_variables.append(var)
        reg = regularizers_mod.get(regularizer)
        if reg is not None:
            self._regularized.append((var, reg))
        return var

    def _flatten_layers(self, include_self: bool = True) -> list[Layer]:
        out: list[Layer] = [self] if include_self else []
        seen = {id(self)}
        stack = list(reversed(self._layers))
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            out.append(layer)
            stack.extend(reversed(layer._layers))
        return out

    @property
    def weights(self) -> list[Variable]:
        """All weights: this layer's trainable, then non-trainable, then sublayers'."""
        out: list[Variable] = []
        seen: set[int] = set()
        for layer in self._flatten_layers():
            for v in layer._trainable_variables + layer._non_trainable_variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def variables(self) -> list[Variable]:
        return self.weights

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return []
        return [v for v in self.weights if v.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return self.weights
        return [v for v in self.weights if not v.trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Returns the weights as a list of NumPy arrays (copies)."""
        return [v.numpy().copy() for v in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets the weights from a list of arrays, in the order of `weights`."""
        params = self.weights
        if len(params) != len(weights):
            raise ValueError(
                f"Layer {self.name!r} expects {len(params)} weights, but the weight list has "
                f"{len(weights)} elements. Received: weights of length {len(weights)}"
            )
        for v, w in zip(params, weights):
            if tuple(np.shape(w)) != v.shape:
                raise ValueError(
                    f"Layer {self.name!r} weight shape {v.shape} is not compatible with provided "
                    f"weight shape {tuple(np.shape(w))}."
                )
        for v, w in zip(params, weights):
            v.assign(np.asarray(w) if not hasattr(w, "shape") else w)

    def count_params(self) -> int:
        """Total number of scalars in the weights."""
        return int(sum(int(np.prod(v.shape)) for v in self.weights))

    # ------------------------------------------------------------ losses
    @property
    def losses(self) -> list[Tensor]:
        """Regularization penalties of the weights plus losses added during the last call."""
        out: list[Tensor] = []
        for layer in self._flatten_layers():
            for var, reg in layer._regularized:
                out.append(reg(var))
            out.extend(layer._call_losses)
        return out

    def add_loss(self, loss: Any) -> None:
        """Adds a loss tensor (a scalar or a tensor to be summed) from inside `call`."""
        self._call_losses.append(convert_to_tensor(loss))

    def _clear_losses(self) -> None:
        for layer in self._flatten_layers():
            if layer._call_losses:
                layer._call_losses = []

    # ------------------------------------------------------------ lifecycle
    def build(self, input_shape: Any) -> None:
        """Creates the weights; the default builds nothing."""
        self.built = True

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation; subclasses override it."""
        return inputs

    def _signature(self) -> tuple[bool, bool, bool | None]:
        """(takes `training`, takes `mask`, the `training` default when a bool) of `call`."""
        cls = type(self)
        sig = Layer._CALL_SIGNATURE.get(cls)
        if sig is None:
            params = inspect.signature(self.call).parameters
            has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
            default = params["training"].default if "training" in params else None
            default = default if isinstance(default, bool) else None
            sig = ("training" in params or has_var_kw, "mask" in params, default)
            Layer._CALL_SIGNATURE[cls] = sig
        return sig

    def _maybe_build(self, shapes: Any) -> None:
        if self.built:
            return
        if self._batch_input_shape is not None and not isinstance(shapes, list):
            expected = self._batch_input_shape[1:]
            got = tuple(shapes)[1:]
            if len(expected) != len(got) or any(
                e is not None and g is not None and e != g for e, g in zip(expected, got)
            ):
                raise ValueError(
                    f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                    f"shape={self._batch_input_shape}, found shape={tuple(shapes)}"
                )
        with build_scope(self):
            self.build(shapes)
        self.built = True
        self._build_shapes = shapes

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if not (  # the common eager call (a Tensor and flags) skips the symbolic scan
            isinstance(inputs, Tensor)
            and not args
            and all(type(v) in _PLAIN_ARGS for v in kwargs.values())
        ) and any(isinstance(x, KerasTensor) for x in _flat_values((inputs, args, kwargs))):
            return self._symbolic_call(inputs, *args, **kwargs)
        if _CALL_CONTEXT["depth"] == 0:  # a top-level call: `losses` restart, as in Keras
            self._clear_losses()
        _CALL_CONTEXT["depth"] += 1
        try:
            return self._eager_call(inputs, *args, **kwargs)
        finally:
            _CALL_CONTEXT["depth"] -= 1

    def _eager_call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        mask = kwargs.pop("mask", None)
        if mask is None:
            mask = _input_mask(inputs)  # read before the inputs are converted (cast)
        if isinstance(inputs, dict):
            inputs = {k: self._convert_input(v) for k, v in inputs.items()}
            shapes: Any = {k: v.shape for k, v in inputs.items()}
        elif isinstance(inputs, (list, tuple)):
            inputs = type(inputs)(self._convert_input(x) for x in inputs)
            shapes: Any = [x.shape for x in inputs]
        else:
            inputs = self._convert_input(inputs)
            shapes = inputs.shape
        self._maybe_build(shapes)
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, inputs, self.name)
        takes_training, takes_mask, default_training = self._signature()
        # As in Keras: an explicit `training`, else the enclosing call's, else the default
        # of this `call` (True for random augmentation layers called on their own).
        training = kwargs.pop("training", None)
        if training is None:
            training = _CALL_CONTEXT["training"]
            if training is None:
                training = default_training
        if takes_training:  # None (undecided) reaches the call as in Keras: a model passes it on
            kwargs["training"] = None if training is None else bool(training)
        if takes_mask:
            kwargs["mask"] = mask
        prev = _CALL_CONTEXT["training"]
        if training is not None:
            _CALL_CONTEXT["training"] = bool(training)
        try:
            with build_scope(self):
                outputs = self.call(inputs, *args, **kwargs)
        finally:
            _CALL_CONTEXT["training"] = prev
        if self.activity_regularizer is not None:
            for o in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
                n = o.shape[0] if o.ndim else 1
                self._call_losses.append(self.activity_regularizer(o) / n)
        if mask is not None or type(self).compute_mask is not Layer.compute_mask:
            set_output_masks(self, inputs, outputs, mask)  # (the default has nothing to add)
        return outputs

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        """The mask of the outputs; by default the inputs' mask, passed on unchanged.

        Only used when `supports_masking` is True (set it in `__init__`, or define
        `compute_mask`, as in Keras 3).

        Args:
            inputs: The call's inputs.
            previous_mask: The inputs' mask (a boolean array of shape
                `inputs.shape[:-1]` for sequences, or a list for several inputs).
        """
        return previous_mask

    def _convert_input(self, x: Any) -> Tensor:
        if isinstance(x, Tensor):
            if self.autocast and x.data.dtype.kind == "f" and x.dtype != self.compute_dtype:
                from distkeras.backend import primitives as P  # noqa: PLC0415

                y = P.cast(x, self.compute_dtype)
                y._keras_mask = x._keras_mask
                return y
            return x
        xpm = current_module()
        if not hasattr(x, "dtype"):
            x = np.asarray(x)
        if x.dtype.kind == "f" and self.autocast and dtype_name(x.dtype) != self.compute_dtype:
            x = x.astype(self.compute_dtype)
        if xpm is not np and isinstance(x, np.ndarray):
            x = xpm.asarray(x)
        return Tensor(x)

    # ------------------------------------------------------------ shapes
    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape for an input shape; by default traced on zeros of that shape."""

        def concrete(s):
            return tuple(1 if d is None else int(d) for d in s)

        for s in input_shape if isinstance(input_shape, list) else [input_shape]:
            check_trace(s, self.name)  # a no-op unless loading a file
        with no_grad():
            if isinstance(input_shape, list):
                dummy: Any = [
                    Tensor(current_module().zeros(concrete(s), dtype=self.compute_dtype))
                    for s in input_shape
                ]
                first = input_shape[0]
            else:
                dummy = Tensor(
                    current_module().zeros(concrete(input_shape), dtype=self.compute_dtype)
                )
                first = input_shape
            self._maybe_build(input_shape)
            with build_scope(self):
                out = self.call(dummy, **({"training": False} if self._signature()[0] else {}))
        batch_unknown = len(first) > 0 and first[0] is None

        def spec(t):
            s = tuple(t.shape)
            return (None, *s[1:]) if batch_unknown and s else s

        if isinstance(out, (list, tuple)):
            return [spec(o) for o in out]
        return spec(out)

    def _symbolic_call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("training", None)
        extra = [a for a in _flat_values((args, kwargs)) if isinstance(a, KerasTensor)]
        explicit = type(self).compute_output_shape is not Layer.compute_output_shape
        explicit = explicit and not self._masks_from_call
        traced_masks: Any = None
        if explicit and not extra and not isinstance(inputs, dict):
            shapes: Any = (
                [x.shape for x in inputs] if isinstance(inputs, (list, tuple)) else inputs.shape
            )
            self._maybe_build(shapes)
            out_shapes = self.compute_output_shape(shapes)
            if self.supports_masking:
                default = type(self).compute_mask is Layer.compute_mask
                traced_masks = trace_masks(self, inputs, kwargs.get("mask"), default)
        else:
            out_shapes, traced_masks = trace_output_shapes(self, inputs, args, kwargs)
        node = Node(self, inputs, args, kwargs)
        self._inbound_nodes.append(node)
        index = len(self._inbound_nodes) - 1
        if isinstance(out_shapes, list):
            outs = [
                KerasTensor(s, self.compute_dtype, history=(self, index, i))
                for i, s in enumerate(out_shapes)
            ]
        else:
            outs = [KerasTensor(out_shapes, self.compute_dtype, history=(self, index, 0))]
        node.outputs = outs
        if traced_masks is not None:
            first = next(x for x in _flat_values(inputs) if isinstance(x, KerasTensor))
            batch_unknown = len(first.shape) > 0 and first.shape[0] is None
            if not isinstance(traced_masks, (list, tuple)):
                traced_masks = [traced_masks] * len(outs)
            for out, m in zip(outs, traced_masks):
                if m is not None:
                    out._keras_mask = symbolic_mask(out, m, batch_unknown)
        return outs if isinstance(out_shapes, list) else outs[0]

    # ------------------------------------------------------------ introspection
    def _first_node(self, attr: str) -> Node:
        if not self._inbound_nodes:
            raise AttributeError(
                f"The layer {self.name} has never been called and thus has no defined {attr}."
            )
        return self._inbound_nodes[0]

    @property
    def input(self) -> Any:
        """The symbolic input(s) of the layer's first call on symbolic tensors (Keras 3)."""
        return self._first_node("input").inputs

    @property
    def output(self) -> Any:
        """The symbolic output(s) of the layer's first call on symbolic tensors (Keras 3)."""
        outs = self._first_node("output").outputs
        return outs[0] if len(outs) == 1 else list(outs)

    # ------------------------------------------------------------ config
    def get_config(self) -> dict:
        """Returns the constructor arguments (Keras 3 base keys: name, trainable, dtype)."""
        cfg: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = regularizers_mod.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """Builds a layer from `get_config` output."""
        return cls(**config)

    def get_build_config(self) -> dict | None:
        """The input shape the layer was built with, for rebuilding on load."""
        if self._build_shapes is None:
            return None
        shapes = self._build_shapes
        if isinstance(shapes, list):
            return {"input_shape": [list(s) for s in shapes]}
        return {"input_shape": list(shapes)}

    def build_from_config(self, config: dict) -> None:
        """Builds the layer from `get_build_config` output."""
        shape = config.get("input_shape")
        if shape is None or self.built:
            return
        if shape and isinstance(shape[0], list):
            self._maybe_build([tuple(s) for s in shape])
        else:
            self._maybe_build(tuple(shape))

    # ------------------------------------------------------------ RNG state
    def rng_states(self) -> list[dict]:
        """States of every random stream in this layer and its sublayers."""
        return [g.get_state() for layer in self._flatten_layers() for g in layer._seed_generators]

    def set_rng_states(self, states: list[dict]) -> None:
        """Restores the states returned by `rng_states`."""
        gens = [g for layer in self._flatten_layers() for g in layer._seed_generators]
        for g, s in zip(gens, states):
            g.set_state(s)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
