"""Utilities, as `keras.utils`: labels, normalization, progress bar, seeding."""

from distkeras.saving.object_registration import (
    custom_object_scope,
    get_registered_object,
    register_keras_serializable,
)
from distkeras.utils.numerical_utils import normalize, to_categorical
from distkeras.utils.progbar import Progbar
from distkeras.utils.py_dataset import PyDataset
from distkeras.utils.rng_utils import set_random_seed
