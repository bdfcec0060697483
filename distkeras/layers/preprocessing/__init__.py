"""Preprocessing layers: text vectorization, image preprocessing and augmentation, normalization,
category encoding, vocabulary lookups, discretization, hashing.

`image_ops` holds the array-level image transforms (resize, smart_resize,
affine resampling) that `distkeras.preprocessing.image` reuses.
"""

from distkeras.layers.preprocessing.category_encoding import CategoryEncoding
from distkeras.layers.preprocessing.discretization import Discretization
from distkeras.layers.preprocessing.hashing import Hashing
from distkeras.layers.preprocessing.image_augmentation import (
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from distkeras.layers.preprocessing.image_preprocessing import CenterCrop, Rescaling, Resizing
from distkeras.layers.preprocessing.lookup import IntegerLookup, StringLookup
from distkeras.layers.preprocessing.normalization import Normalization
from distkeras.layers.preprocessing.text_vectorization import TextVectorization

__all__ = [
    "CategoryEncoding",
    "CenterCrop",
    "Discretization",
    "Hashing",
    "IntegerLookup",
    "Normalization",
    "RandomContrast",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "Rescaling",
    "Resizing",
    "StringLookup",
    "TextVectorization",
]
