"""Layers, grouped by module as in Keras."""

from distkeras.layers.core import (
    Activation,
    ActivityRegularization,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Input,
    InputLayer,
    Lambda,
    Permute,
    RepeatVector,
    Reshape,
)
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer
from distkeras.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)


def serialize(layer):
    """Returns a layer's Keras 3 config dict."""
    from distkeras.saving import serialize_keras_object

    return serialize_keras_object(layer)


def deserialize(config, custom_objects=None):
    """Rebuilds a layer from its config dict."""
    from distkeras.saving import deserialize_keras_object

    return deserialize_keras_object(
        config,
        module_objects=_module_objects(),
        custom_objects=custom_objects,
        printable_module_name="layer",
    )


def _module_objects():
    import inspect

    return {k: v for k, v in globals().items() if inspect.isclass(v) and issubclass(v, Layer)}
