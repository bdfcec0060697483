"""`image_dataset_from_directory`: batches of images from class subdirectories, loaded lazily.

The result is a `PyDataset` (`ImageFolderDataset`) that reads only the files of
the batch asked for; in a data-parallel `fit` each rank reads only its slice
of every global batch (through `get_shard`), in the same global order as one
process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.layers.preprocessing import image_ops
from distkeras.preprocessing import dataset_utils as du
from distkeras.preprocessing.image_utils import ALLOWED_FORMATS, open_image

_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}


class ImageFolderDataset(du.IndexedBatchDataset):
    """Batches `(images, labels)` (or `images`) read from files on demand.

    Images are float32 arrays in [0, 255] of shape (batch, height, width,
    channels) (channels-first with `data_format='channels_first'`).

    Attributes:
        file_paths: Paths of the files, in sample order.
        class_names: Class names (label i is `class_names[i]`).
    """

    def __init__(
        self,
        file_paths: Sequence[str],
        labels: np.ndarray | None,
        class_names: list[str],
        batch_size: int = 32,
        image_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        data_format: str = "channels_last",
    ):
        super().__init__(len(file_paths), batch_size)
        self.file_paths = list(file_paths)
        self.labels = labels
        self.class_names = class_names
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.color_mode = color_mode
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.pad_to_aspect_ratio = pad_to_aspect_ratio
        self.data_format = data_format

    @property
    def num_channels(self) -> int:
        return _MODES[self.color_mode][1]

    def load_image(self, path: str) -> np.ndarray:
        """Decodes and resizes one file to a float32 (height, width, channels) array."""
        img = open_image(path)
        mode = _MODES[self.color_mode][0]
        if img.mode != mode:
            img = img.convert(mode)
        x = np.asarray(img, dtype=np.float32)
        if x.ndim == 2:
            x = x[..., None]
        h, w = x.shape[:2]
        th, tw = self.image_size
        if self.crop_to_aspect_ratio:
            return image_ops.smart_resize(x, (th, tw), self.interpolation)
        if self.pad_to_aspect_ratio:
            top, left, ph, pw = image_ops.pad_box(h, w, th, tw)
            padded = np.zeros((ph, pw, x.shape[2]), dtype=np.float32)
            padded[top : top + h, left : left + w] = x
            x = padded
        if x.shape[:2] == (th, tw):
            return x
        return image_ops.resize(x, (th, tw), self.interpolation)

    def load(self, indices: np.ndarray) -> Any:
        th, tw = self.image_size
        images = du.stack(
            [self.load_image(self.file_paths[i]) for i in indices],
            (th, tw, self.num_channels),
            np.float32,
        )
        if self.data_format == "channels_first":
            images = images.transpose(0, 3, 1, 2)
        if self.labels is None:
            return images
        return images, self.labels[indices]


def image_dataset_from_directory(
    directory: str,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    verbose: bool = True,
) -> Any:
    """Makes a lazily loaded dataset of images from a directory (one subdirectory per class).

    Args:
        directory: Folder with one subdirectory per class (with
            `labels='inferred'`), or image files directly.
        labels: 'inferred' (from subdirectory names, sorted), None, or a list of
            integer labels in the sorted order of the files.
        label_mode: 'int' (int32), 'categorical' (one-hot float32), 'binary'
            (float32 (n, 1), two classes) or None (images only).
        class_names: Explicit order of the subdirectories to use.
        color_mode: 'grayscale', 'rgb' or 'rgba' (1, 3 or 4 channels).
        batch_size: Samples per batch.
        image_size: (height, width) every image is resized to.
        shuffle: Shuffle the files (with `seed`) once, before splitting.
        seed: Seed of the shuffle (needed with `validation_split`).
        validation_split: Fraction of the files held out for validation.
        subset: 'training', 'validation' or 'both' (returns both datasets).
        interpolation: 'bilinear' or 'nearest' (TensorFlow's resize semantics).
        follow_links: Follow symbolic links to subdirectories.
        crop_to_aspect_ratio: Crop the central box of the target aspect ratio first.
        pad_to_aspect_ratio: Pad (with 0) to the target aspect ratio first.
        data_format: 'channels_last' (default) or 'channels_first'.
        verbose: Print how many files were found.

    Returns:
        An `ImageFolderDataset` (a PyDataset for `fit`), or a list
        `[training, validation]` when `subset='both'`.
    """
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(
            "`labels` argument should be a list/tuple of integer labels, of the same size as the "
            "number of image files in the target directory. If you wish to infer the labels from "
            'the subdirectory names in the target directory, pass `labels="inferred"`. If you '
            f"wish to get a dataset that only contains images (no labels), pass `labels=None`. "
            f"Received: labels={labels!r}"
        )
    if color_mode not in _MODES:
        raise ValueError(
            '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
            f"Received: color_mode={color_mode!r}"
        )
    if batch_size is None:
        raise ValueError(
            "Unbatched datasets are not supported; pass a positive `batch_size`. "
            "Received: batch_size=None"
        )
    if len(tuple(image_size)) != 2 or any(int(s) <= 0 for s in image_size):
        raise ValueError(
            "`image_size` must be a tuple of 2 positive integers (height, width). "
            f"Received: image_size={image_size!r}"
        )
    image_ops.check_interpolation(interpolation)
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(
            "Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be set to `True`. "
            "Received: crop_to_aspect_ratio=True, pad_to_aspect_ratio=True"
        )
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    du.check_label_mode(label_mode, labels, 2)  # mode check; class count checked below
    du.check_validation_split(validation_split, subset, shuffle, seed)
    if seed is None and shuffle:
        seed = int(np.random.randint(1_000_000))
    paths, int_labels, names = du.index_directory(
        directory,
        labels,
        ALLOWED_FORMATS,
        class_names=class_names,
        shuffle=shuffle,
        seed=seed,
        follow_links=follow_links,
    )
    if not paths:
        raise ValueError(
            f"No images found in directory {directory}. Allowed formats: {ALLOWED_FORMATS}. "
            f"Received: directory={directory!r}"
        )

    def build(files: list[str], file_labels: np.ndarray | None) -> ImageFolderDataset:
        return ImageFolderDataset(
            files,
            file_labels,
            names,
            batch_size=batch_size,
            image_size=image_size,
            color_mode=color_mode,
            interpolation=interpolation,
            crop_to_aspect_ratio=crop_to_aspect_ratio,
            pad_to_aspect_ratio=pad_to_aspect_ratio,
            data_format=data_format or "channels_last",
        )

    datasets = du.folder_datasets(
        paths, int_labels, names, label_mode, validation_split, subset, verbose, build
    )
    return du.like_tf_data(datasets, shuffle)
