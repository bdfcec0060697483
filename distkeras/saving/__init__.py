"""Object registry, JSON configs, and (later) weight and checkpoint files."""

from distkeras.saving.object_registration import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    serialize_keras_object,
)

# Keras 3's `keras.saving.save_model` / `load_model` build models (a higher
# floor, `distkeras.models.saving`): they load on first access.
_MODEL_EXPORTS = {"save_model", "load_model"}


def __getattr__(name: str):
    if name not in _MODEL_EXPORTS:
        raise AttributeError(f"module 'distkeras.saving' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module("distkeras.models.saving"), name)
