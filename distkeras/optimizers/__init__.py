"""Optimizers and learning-rate schedules, as `keras.optimizers`."""

from __future__ import annotations

from typing import Any

from distkeras.optimizers import schedules
from distkeras.optimizers.adadelta import Adadelta
from distkeras.optimizers.adagrad import Adagrad
from distkeras.optimizers.adam import Adam, AdamW
from distkeras.optimizers.adamax import Adamax
from distkeras.optimizers.base import Optimizer, set_update_threads
from distkeras.optimizers.ftrl import Ftrl
from distkeras.optimizers.lion import Lion
from distkeras.optimizers.nadam import Nadam
from distkeras.optimizers.rmsprop import RMSprop
from distkeras.optimizers.sgd import SGD
from distkeras.saving.serialization_lib import deserialize_keras_object, serialize_keras_object

ALL_OBJECTS = (Optimizer, Adam, AdamW, SGD, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion, Ftrl)
ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in ALL_OBJECTS}


def serialize(optimizer: Optimizer) -> dict:
    """Returns the Keras 3 config dict of an optimizer."""
    return serialize_keras_object(optimizer)


def deserialize(config: dict, custom_objects: dict | None = None) -> Optimizer:
    """Rebuilds an optimizer from `serialize` output (built-in names are case-insensitive).

    Raises:
        ValueError: for an unknown optimizer name.
    """
    if isinstance(config, dict) and isinstance(config.get("class_name"), str):
        name = config["class_name"].lower()
        if name in ALL_OBJECTS_DICT:
            config = dict(config, class_name=name)
            if config.get("registered_name") in (None, ALL_OBJECTS_DICT[name].__name__):
                config["registered_name"] = name
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="optimizer",
    )


def get(identifier: Any) -> Optimizer | None:
    """Returns an optimizer from a name ('adam', 'SGD', ...), a config dict, or an instance.

    Raises:
        ValueError: if `identifier` cannot be interpreted.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        if identifier.lower() not in ALL_OBJECTS_DICT:
            # Raises, naming the closest valid names.
            deserialize_keras_object(
                identifier, module_objects=ALL_OBJECTS_DICT, printable_module_name="optimizer"
            )
        obj = deserialize({"class_name": identifier, "config": {}})
    else:
        obj = identifier
    if isinstance(obj, Optimizer):
        return obj
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. "
        f"Received: identifier={identifier!r}"
    )


__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
    "set_update_threads",
]
