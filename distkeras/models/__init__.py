"""Models: Sequential, subclassed Model, JSON configs."""

from __future__ import annotations

import json
from typing import Any

from distkeras.layers.core import Input
from distkeras.models.functional import Functional
from distkeras.models.model import Model
from distkeras.models.saving import load_model
from distkeras.models.sequential import Sequential
from distkeras.saving.limits import DEFAULT_MAX_PARAMS, MAX_CONFIG_DEPTH


def model_from_json(
    json_string: str,
    custom_objects: dict | None = None,
    safe_mode: bool | None = None,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> Model:
    """Rebuilds a model (architecture only, fresh weights) from `to_json()` output.

    Nothing the config names is imported or run in safe mode (see SECURITY.md).

    Args:
        json_string: The JSON text.
        custom_objects: Extra classes/functions by name.
        safe_mode: False lets Lambda layers holding Python bytecode, or
            functions of modules the config names, load (trusted configs only).
        max_params: Most weight elements the model may have; a larger one is
            refused before its weights are allocated. The default, 2**28
            (268,435,456 elements, 1 GiB of float32), keeps a small JSON
            from allocating more than that; pass a larger value for a
            bigger model you trust.

    Raises:
        ValueError: for invalid JSON, a config that cannot be rebuilt, or a
            model above `max_params` (`FileFormatError`).
    """
    from distkeras.saving.limits import allocation_budget, check_nesting  # noqa: PLC0415
    from distkeras.saving.serialization_lib import SafeModeScope  # noqa: PLC0415
    from distkeras.saving.state_schema import json_depth  # noqa: PLC0415

    if isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 0:
        raise ValueError(
            f"max_params must be a non-negative integer. Received: max_params={max_params!r}"
        )
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise ValueError(
            f"model_from_json expects a JSON string. Received: {type(json_string).__name__}"
        )
    text = (
        json_string
        if isinstance(json_string, str)
        else bytes(json_string).decode("utf-8", "replace")
    )
    if json_depth(text) > MAX_CONFIG_DEPTH:
        raise ValueError(
            f"model_from_json: the JSON is nested more than {MAX_CONFIG_DEPTH} levels deep."
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"model_from_json received invalid JSON: {e}") from e
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "model_from_json expects a model config with a 'class_name'. "
            f"Received: {type(config).__name__}"
        )
    check_nesting(config, "The JSON config")
    budget = allocation_budget(
        max_params,
        "The JSON config",
        f"Pass a larger max_params (now {max_params:,}) to model_from_json if you trust it.",
    )
    try:
        with SafeModeScope(safe_mode), budget:
            return model_from_config(config, custom_objects=custom_objects)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a crafted config breaks, say so plainly
        raise ValueError(
            f"model_from_json: the config cannot be rebuilt: {type(e).__name__}: {e}"
        ) from e


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
