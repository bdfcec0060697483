"""Models: Sequential, subclassed Model, JSON configs."""

from __future__ import annotations

import json
from typing import Any

from distkeras.layers.core import Input
from distkeras.models.functional import Functional
from distkeras.models.model import Model
from distkeras.models.saving import load_model
from distkeras.models.sequential import Sequential


def model_from_json(
    json_string: str, custom_objects: dict | None = None, safe_mode: bool | None = None
) -> Model:
    """Rebuilds a model (architecture only, fresh weights) from `to_json()` output.

    Args:
        json_string: The JSON text.
        custom_objects: Extra classes/functions by name.
        safe_mode: False lets Lambda layers holding Python bytecode load.
    """
    from distkeras.saving.serialization_lib import SafeModeScope  # noqa: PLC0415

    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as e:
        raise ValueError(f"model_from_json received invalid JSON: {e}") from e
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "model_from_json expects a model config with a 'class_name'. "
            f"Received: {type(config).__name__}"
        )
    with SafeModeScope(safe_mode):
        return model_from_config(config, custom_objects=custom_objects)


def model_from_config(config: dict, custom_objects: dict | None = None) -> Model:
    """Rebuilds a model from its Keras 3 config dict."""
    from distkeras import layers as layers_mod  # noqa: PLC0415
    from distkeras.saving import deserialize_keras_object  # noqa: PLC0415

    objects: dict[str, Any] = dict(layers_mod._module_objects())
    objects.update({"Sequential": Sequential, "Model": Model, "Functional": Functional})
    if config.get("class_name") == "Sequential":
        return Sequential.from_config(config.get("config", {}), custom_objects=custom_objects)
    if config.get("class_name") in ("Functional", "Model"):
        return Functional.from_config(config.get("config", {}), custom_objects=custom_objects)
    return deserialize_keras_object(
        config,
        module_objects=objects,
        custom_objects=custom_objects,
        printable_module_name="model",
    )


def clone_model(model: Model) -> Model:
    """A new model with the same architecture and fresh weights."""
    return model_from_config(json.loads(model.to_json()))
