"""`Sequential`: a linear stack of layers."""

from __future__ import annotations

from typing import Any

from distkeras.backend.autodiff import Tensor
from distkeras.layers.core import InputLayer
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer, build_scope
from distkeras.models.model import Model


class Sequential(Model):
    """A plain stack of layers, each with one input and one output.

    Args:
        layers: Optional list of layers (an `Input(...)` first sets the input shape).
        trainable: Whether the weights are trained.
        name: Model name.
    """

    def __init__(
        self,
        layers: list | None = None,
        trainable: bool = True,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(trainable=trainable, name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        if layers is not None:
            if not isinstance(layers, (list, tuple)):
                raise TypeError(f"Sequential expects a list of layers. Received: layers={layers!r}")
            for layer in layers:
                self.add(layer, rebuild=False)
            self._maybe_build_from_input()

    # ------------------------------------------------------------ structure
    def add(self, layer: Any, rebuild: bool = True) -> None:
        """Appends a layer (or an `Input(...)` tensor to set the input shape)."""
        if isinstance(layer, KerasTensor):
            history = layer._keras_history
            if history is None or not isinstance(history[0], InputLayer):
                raise ValueError(
                    f"Only Input() tensors can be added to a Sequential model. Received: {layer!r}"
                )
            layer = history[0]
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(
                    "Sequential model already has an input; an InputLayer can only come first. "
                    f"Received: layer={layer.name!r}"
                )
            self._input_layer = layer
            self._tracked_layers.append(layer)
            return
        if not isinstance(layer, Layer):
            raise ValueError(
                "Only instances of `distkeras.Layer` can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. "
                f"Name {layer.name!r} is already the name of a layer in this model."
            )
        if not self._stack and self._input_layer is None and layer._batch_input_shape is not None:
            self._input_layer = InputLayer(batch_shape=layer._batch_input_shape, dtype=layer.dtype)
            self._tracked_layers.append(self._input_layer)
        self._stack.append(layer)
        self._tracked_layers.append(layer)
        self.built = False
        if rebuild:
            self._maybe_build_from_input()

    def pop(self) -> Layer:
        """Removes and returns the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._tracked_layers.remove(layer)
        self._train_state = None
        self._maybe_build_from_input()
        return layer

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    @property
    def input_shape(self) -> tuple | None:
        return None if self._input_layer is None else self._input_layer.batch_shape

    @property
    def inputs(self) -> list[KerasTensor] | None:
        # Once traced, the graph's own inputs (as Keras 3): the layers' `input`/`output`
        # belong to that graph, so `Model(model.inputs, [l.output for l in ...])` connects.
        functional = getattr(self, "_functional", None)
        if functional is not None and self._input_layer is not None:
            return list(functional.inputs)
        return None if self._input_layer is None else [self._input_layer.output]

    @property
    def input(self) -> KerasTensor | None:
        inputs = self.inputs
        return None if inputs is None else inputs[0]

    @property
    def outputs(self) -> list[KerasTensor] | None:
        functional = getattr(self, "_functional", None)
        if functional is not None and self._input_layer is not None:
            return list(functional.outputs)
        if self._input_layer is None or not self._stack:
            return None
        shape = getattr(self._stack[-1], "_output_shape", None)
        return None if shape is None else [KerasTensor(shape, self._stack[-1].dtype)]

    @property
    def output(self) -> KerasTensor | None:
        outs = self.outputs
        return None if outs is None else outs[0]

    @property
    def output_shape(self) -> tuple | None:
        return getattr(self._stack[-1], "_output_shape", None) if self._stack else None

    # ------------------------------------------------------------ build / call
    def _maybe_build_from_input(self) -> None:
        if self._input_layer is not None and self._stack:
            self.build(self._input_layer.batch_shape)

    def build(self, input_shape: Any = None) -> None:
        """Builds every layer in turn, recording each output shape."""
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(
                    "You must provide an input shape to build a Sequential model without an "
                    "Input. Received: input_shape=None"
                )
            input_shape = self._input_layer.batch_shape
        # As in Keras 3, a Sequential model with a known input shape is a linear
        # Functional graph: it is traced once here and then run by Functional.call.
        from distkeras.models.functional import Functional  # noqa: PLC0415

        source = self._graph_input(tuple(input_shape))
        x: Any = source.output
        with build_scope(self):  # Keras 3: weights built here are named "<name>/<layer>/..."
            for layer in self._stack:
                x = layer(x)
                layer._output_shape = x.shape if isinstance(x, KerasTensor) else None
        # Unnamed, as in Keras 3: each (re)build takes the next `functional` name.
        self._functional = Functional(source.output, x) if self._stack else None
        if self._functional is not None and self._input_layer is None:
            self._functional._check_input_shapes = False  # built from a call's shape
        self.built = True
        self._build_shapes = tuple(input_shape)

    def _graph_input(self, batch_shape: tuple) -> InputLayer:
        """The InputLayer the traced graph starts from.

        A model given an `Input` traces from a twin of it under the same name; one
        built from a shape creates its InputLayer once, auto-named `input_layer`
        as in Keras 3, and keeps it while the shape stays the same.
        """
        if self._input_layer is not None:
            layer = self._input_layer
            return InputLayer(batch_shape=batch_shape, dtype=layer.dtype, name=layer.name)
        cached = getattr(self, "_shape_input", None)
        if cached is None or cached.batch_shape != batch_shape:
            cached = InputLayer(batch_shape=batch_shape, dtype=self.dtype)
            object.__setattr__(self, "_shape_input", cached)
        return cached

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        functional = getattr(self, "_functional", None)
        if functional is not None:
            return functional.call(inputs, training=training, mask=mask)
        x = inputs
        for layer in self._stack:
            x = layer(x, training=training)
        return x

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, Tensor) or not isinstance(inputs, KerasTensor):
            if not self.built and self._stack:
                shape = (None, *tuple(getattr(inputs, "shape", ()))[1:])
                if self._input_layer is None:
                    self.build(shape)
        return super().__call__(inputs, *args, **kwargs)

    def _convert_input(self, x: Any) -> Tensor:
        if self._input_layer is not None and self.built:
            expected = self._input_layer.batch_shape
            got = tuple(getattr(x, "shape", ()))
            if len(got) != len(expected) or any(
                e is not None and e != g for e, g in zip(expected[1:], got[1:])
            ):
                raise ValueError(
                    f'Input 0 of layer "{self._stack[0].name if self._stack else self.name}" is '
                    f"incompatible with the layer: expected shape={expected}, "
                    f"found shape={got}"
                )
        return super()._convert_input(x)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        for layer in self._stack:
            shape = layer.compute_output_shape(shape)
        return shape

    # ------------------------------------------------------------ config
    def get_config(self) -> dict:
        from distkeras.saving import serialize_keras_object  # noqa: PLC0415

        layers = []
        if self._input_layer is not None:
            layers.append(serialize_keras_object(self._input_layer))
        layers.extend(serialize_keras_object(layer) for layer in self._stack)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype,
            "layers": layers,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        from distkeras.layers import deserialize as deserialize_layer  # noqa: PLC0415

        config = dict(config)
        layer_configs = config.pop("layers")
        config.pop("build_input_shape", None)
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for lc in layer_configs:
            model.add(deserialize_layer(lc, custom_objects=custom_objects), rebuild=False)
        model._maybe_build_from_input()
        return model
