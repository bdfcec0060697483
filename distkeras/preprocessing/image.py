"""Image preprocessing, as Keras 2.15's `keras.preprocessing.image` plus Keras 3's utilities.

Files: `load_img`, `img_to_array`, `array_to_img`, `save_img`, `smart_resize`
(image_utils.py); augmentation: `ImageDataGenerator` and its iterators
(image_data_generator.py, image_iterators.py); datasets:
`image_dataset_from_directory` (image_dataset.py).
"""

from distkeras.preprocessing.image_data_generator import (
    ImageDataGenerator,
    apply_affine_transform,
    apply_brightness_shift,
    apply_channel_shift,
    flip_axis,
    transform_matrix_offset_center,
)
from distkeras.preprocessing.image_dataset import ImageFolderDataset, image_dataset_from_directory
from distkeras.preprocessing.image_iterators import (
    DirectoryIterator,
    Iterator,
    NumpyArrayIterator,
)
from distkeras.preprocessing.image_utils import (
    array_to_img,
    img_to_array,
    load_img,
    save_img,
    smart_resize,
)

__all__ = [
    "DirectoryIterator",
    "ImageDataGenerator",
    "ImageFolderDataset",
    "Iterator",
    "NumpyArrayIterator",
    "apply_affine_transform",
    "apply_brightness_shift",
    "apply_channel_shift",
    "array_to_img",
    "flip_axis",
    "image_dataset_from_directory",
    "img_to_array",
    "load_img",
    "save_img",
    "smart_resize",
    "transform_matrix_offset_center",
]
