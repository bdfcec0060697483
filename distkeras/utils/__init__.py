"""Utilities, as `keras.utils`: labels, normalization, progress bar, seeding."""

from distkeras.saving.object_registration import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from distkeras.saving.serialization_lib import deserialize_keras_object, serialize_keras_object
from distkeras.utils.naming import clear_session
from distkeras.utils.numerical_utils import normalize, to_categorical
from distkeras.utils.progbar import Progbar
from distkeras.utils.py_dataset import PyDataset, Sequence
from distkeras.utils.rng_utils import set_random_seed

# Keras 3's data utilities live in `distkeras.preprocessing` (a higher floor):
# they load on first access so that importing `distkeras.utils` stays cheap and
# acyclic.
_PREPROCESSING_EXPORTS = {
    "pad_sequences": "distkeras.preprocessing.sequence",
    "image_dataset_from_directory": "distkeras.preprocessing.image_dataset",
    "text_dataset_from_directory": "distkeras.preprocessing.text_dataset",
    "timeseries_dataset_from_array": "distkeras.preprocessing.timeseries",
    "load_img": "distkeras.preprocessing.image_utils",
    "img_to_array": "distkeras.preprocessing.image_utils",
    "array_to_img": "distkeras.preprocessing.image_utils",
    "save_img": "distkeras.preprocessing.image_utils",
    "smart_resize": "distkeras.preprocessing.image_utils",
    # model diagrams draw models (a higher floor) and need the optional pydot
    "plot_model": "distkeras.utils.model_visualization",
    "model_to_dot": "distkeras.utils.model_visualization",
}


def __getattr__(name: str):
    module = _PREPROCESSING_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distkeras.utils' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(module), name)
