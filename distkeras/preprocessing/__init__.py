"""Data preprocessing: text, image and sequence utilities (Keras 2.15 and Keras 3).

`distkeras.preprocessing.text`, `.image` and `.sequence` mirror Keras 2.15's
modules; the Keras 3 dataset utilities (`image_dataset_from_directory`,
`text_dataset_from_directory`, `timeseries_dataset_from_array`,
`pad_sequences`) are also exported from `distkeras.utils`. Every dataset is a
lazily loaded `PyDataset`; in a data-parallel `fit` each rank reads only its
slice of every global batch.
"""

from distkeras.preprocessing import image, sequence, text
from distkeras.preprocessing.dataset_utils import IndexedBatchDataset
from distkeras.preprocessing.image import image_dataset_from_directory
from distkeras.preprocessing.sequence import pad_sequences
from distkeras.preprocessing.text_dataset import text_dataset_from_directory
from distkeras.preprocessing.timeseries import timeseries_dataset_from_array

__all__ = [
    "IndexedBatchDataset",
    "image",
    "image_dataset_from_directory",
    "pad_sequences",
    "sequence",
    "text",
    "text_dataset_from_directory",
    "timeseries_dataset_from_array",
]
