"""`Model`: a Layer with training (subclass it and define `call`)."""

from __future__ import annotations

import json
from typing import Any

from distkeras.layers.layer import Layer
from distkeras.models.trainer import Trainer


class Model(Trainer, Layer):
    """A model: layers plus compile/fit/evaluate/predict.

    Subclass it, create layers in `__init__` and define `call(inputs, training=None)`.

    Args:
        name: Model name.
        trainable: Whether its weights are trained.
        dtype: Default dtype of its layers' computations.
    """

    _masks_from_call = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from distkeras.models.functional import Functional  # noqa: PLC0415

            return Functional(*args, **kwargs)
        if _functional_arguments(args, kwargs):
            # `CustomModel(inputs, outputs)` of a subclass that overrides the
            # step (Keras's "customizing fit" pattern): a functional graph with
            # the subclass's methods, as Keras makes it.
            return super().__new__(_functional_subclass(cls))
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        if args:
            raise TypeError(
                f"{type(self).__name__} takes keyword arguments only (subclassed model). "
                f"Received: {len(args)} positional argument(s)"
            )
        Layer.__init__(self, **kwargs)
        self._init_trainer()

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        """Builds a model from `get_config` output (a Functional graph or constructor args).

        Args:
            config: The config dict.
            custom_objects: Names of custom layers and functions the config refers to.
        """
        from distkeras.saving.object_registration import custom_object_scope  # noqa: PLC0415

        graph_keys = ("layers", "input_layers", "output_layers")
        with custom_object_scope(custom_objects):
            if all(k in config for k in graph_keys):
                from distkeras.models.functional import Functional  # noqa: PLC0415

                target = cls if issubclass(cls, Functional) else Functional
                return target.from_config(config, custom_objects=custom_objects)
            return cls(**config)

    @property
    def layers(self) -> list[Layer]:
        """The model's direct sublayers, in creation order."""
        return [layer for layer in self._layers if type(layer).__name__ != "InputLayer"]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """Returns a layer by name or by index in `layers`."""
        if index is not None and name is not None:
            raise ValueError(
                "Provide only a layer name or a layer index. "
                f"Received: index={index}, name={name!r}"
            )
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(self.layers)} layers. Received: index={index}"
                )
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(
                f"No such layer: {name}. Existing layers are: {[l.name for l in self.layers]}. "
                f"Received: name={name!r}"
            )
        raise ValueError(
            "Provide either a layer name or layer index. Received: name=None, index=None"
        )

    def summary(
        self,
        line_length: int | None = None,
        positions: Any = None,
        print_fn: Any = None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range: Any = None,
    ) -> None:
        """Prints Keras 3's summary table (Layer (type) / Output Shape / Param #)."""
        from distkeras.models.summary import print_summary  # noqa: PLC0415

        print_summary(
            self, line_length=line_length, print_fn=print_fn, show_trainable=show_trainable
        )

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Writes the weights to `filepath` (msgpack container, atomic write).

        In a distributed run every rank calls it; rank 0 writes the one file.
        """
        from distkeras.models.saving import save_weights  # noqa: PLC0415

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any) -> None:
        """Loads weights saved by `save_weights` or `save` (paths, shapes, dtypes checked)."""
        from distkeras.models.saving import load_weights  # noqa: PLC0415

        load_weights(self, filepath)

    def save(self, filepath: Any, overwrite: bool = True) -> None:
        """Writes the whole model (config, weights, compile config, optimizer state).

        In a distributed run every rank calls it; rank 0 writes the one file.
        """
        from distkeras.models.saving import save_model  # noqa: PLC0415

        save_model(self, filepath, overwrite=overwrite)

    def to_json(self, **kwargs: Any) -> str:
        """Returns the model's config as a Keras 3 JSON string."""
        from distkeras.saving import serialize_keras_object  # noqa: PLC0415

        return json.dumps(serialize_keras_object(self), **kwargs)

    def get_config(self) -> dict:
        """Config of a subclassed model: its constructor keys (override for custom args)."""
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}

    def _output_shape_of(self, layer: Layer) -> Any:
        return getattr(layer, "_output_shape", None)


def _functional_arguments(args: tuple, kwargs: dict) -> bool:
    """Keras's test for `Model.__init__` arguments that define a functional graph."""
    return (
        len(args) == 2
        or (len(args) == 1 and "outputs" in kwargs)
        or ("inputs" in kwargs and "outputs" in kwargs)
    )


_FUNCTIONAL_SUBCLASSES: dict[type, type] = {}


def _functional_subclass(cls: type) -> type:
    """`cls` with `Functional` mixed in below it (cached), or `cls` if it has it already."""
    from distkeras.models.functional import Functional  # noqa: PLC0415

    if issubclass(cls, Functional):
        return cls
    if cls not in _FUNCTIONAL_SUBCLASSES:
        attrs = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        _FUNCTIONAL_SUBCLASSES[cls] = type(cls.__name__, (cls, Functional), attrs)
    return _FUNCTIONAL_SUBCLASSES[cls]
