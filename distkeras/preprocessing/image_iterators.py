"""Iterators of `ImageDataGenerator`: `NumpyArrayIterator` and `DirectoryIterator`.

Both are `PyDataset`s (lazy, sharded reads in data-parallel `fit`) and also
infinite Python iterators (`next(it)`), as in Keras 2. The sample order of
epoch `e` is a permutation drawn from `(seed, e)`; the augmentation of sample
`j` from `(seed, e, j)`. Pass the same `seed` on every rank of a
data-parallel job (or call `set_random_seed` with the same value).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from distkeras.preprocessing import dataset_utils as du
from distkeras.preprocessing.image_utils import array_to_img, img_to_array, load_img

WHITE_LIST_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
CLASS_MODES = ("categorical", "binary", "sparse", "input", None)


class Iterator(du.IndexedBatchDataset):
    """Base of the image iterators: seeded per-epoch order, lazy batches, `next()`.

    Args:
        n: Number of samples.
        batch_size: Samples per batch.
        shuffle: Permute the samples every epoch.
        seed: Seed of the permutations and the augmentation.
    """

    white_list_formats = WHITE_LIST_FORMATS

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int | None):
        super().__init__(n, batch_size)
        self.n = n
        self.shuffle = shuffle
        self.seed = int(np.random.randint(2**31 - 1)) if seed is None else int(seed)
        self.epoch = 0
        self.total_batches_seen = 0
        self._cursor = 0
        self._set_index_array()

    def _set_index_array(self) -> None:
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            self.order = rng.permutation(self.n)
        else:
            self.order = np.arange(self.n)
        self.index_array = self.order

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._set_index_array()

    def reset(self) -> None:
        """Restarts `next()` at the first batch of the current epoch."""
        self._cursor = 0

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        batch = self[self._cursor]
        self.total_batches_seen += 1
        self._cursor += 1
        if self._cursor >= len(self):
            self._cursor = 0
            self.on_epoch_end()
        return batch

    def next(self) -> Any:
        """The next batch (Keras 2 spelling)."""
        return self.__next__()

    def sample_rng(self, j: int) -> np.random.Generator:
        """The random stream of sample `j` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(j)])

    def load(self, indices: np.ndarray) -> Any:
        return self._get_batches_of_transformed_samples(indices)

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray) -> Any:
        raise NotImplementedError

    def _augment(self, x: np.ndarray, j: int) -> np.ndarray:
        gen = self.image_data_generator
        params = gen.get_random_transform(x.shape, self.sample_rng(j))
        x = gen.apply_transform(x.astype(self.dtype), params)
        return gen.standardize(x)

    def _save(self, batch_x: np.ndarray, index_array: np.ndarray) -> None:
        if not self.save_to_dir:
            return
        for i, j in enumerate(index_array):
            img = array_to_img(batch_x[i], self.data_format, scale=True)
            name = f"{self.save_prefix}_{int(j)}_{self.epoch}.{self.save_format}"
            img.save(os.path.join(self.save_to_dir, name))


class NumpyArrayIterator(Iterator):
    """Augmented batches from in-memory arrays.

    Args:
        x: Rank-4 image array.
        y: Labels (or None).
        image_data_generator: The `ImageDataGenerator` applying the transforms.
        batch_size, shuffle, seed: As `Iterator`.
        sample_weight: Optional per-sample weights.
        subset: 'training' or 'validation' with the generator's `validation_split`
            (the first `int(n * validation_split)` samples are validation).
        ignore_class_split: Skip the check that both subsets hold every class.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        image_data_generator: Any,
        batch_size: int = 32,
        shuffle: bool = False,
        sample_weight: Any = None,
        seed: int | None = None,
        data_format: str | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: str | None = None,
        ignore_class_split: bool = False,
        dtype: Any = None,
    ):
        self.dtype = dtype or image_data_generator.dtype
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(
                "Input data in `NumpyArrayIterator` should have rank 4. You passed an array with "
                f"shape {x.shape}. Received: x.shape={x.shape}"
            )
        if y is not None and len(x) != len(y):
            raise ValueError(
                "`x` (images tensor) and `y` (labels) should have the same length. "
                f"Found: x.shape = {x.shape}, y.shape = {np.asarray(y).shape}"
            )
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError(
                "`x` (images tensor) and `sample_weight` should have the same length. "
                f"Found: x.shape = {x.shape}, sample_weight.shape = "
                f"{np.asarray(sample_weight).shape}"
            )
        y = None if y is None else np.asarray(y)
        sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(
                    f"Invalid subset name: {subset}; expected 'training' or 'validation'. "
                    f"Received: subset={subset!r}"
                )
            split_idx = int(len(x) * image_data_generator._validation_split)
            if (
                y is not None
                and not ignore_class_split
                and not np.array_equal(np.unique(y[:split_idx]), np.unique(y[split_idx:]))
            ):
                raise ValueError(
                    "Training and validation subsets have different number of classes after the "
                    "split. If your numpy arrays are sorted by the label, you might want to "
                    "shuffle them. Received: subset with unbalanced classes"
                )
            part = slice(None, split_idx) if subset == "validation" else slice(split_idx, None)
            x = x[part]
            y = None if y is None else y[part]
            sample_weight = None if sample_weight is None else sample_weight[part]
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.image_data_generator = image_data_generator
        self.data_format = data_format or "channels_last"
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        super().__init__(len(x), batch_size, shuffle, seed)

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray) -> Any:
        batch_x = np.zeros((len(index_array), *self.x.shape[1:]), dtype=self.dtype)
        for i, j in enumerate(index_array):
            batch_x[i] = self._augment(self.x[j], j)
        self._save(batch_x, index_array)
        if self.y is None:
            return batch_x
        out: tuple = (batch_x, self.y[index_array])
        if self.sample_weight is not None:
            out += (self.sample_weight[index_array],)
        return out


class DirectoryIterator(Iterator):
    """Augmented batches read lazily from class subdirectories (`flow_from_directory`).

    Args:
        directory: Folder with one subdirectory per class.
        image_data_generator: The `ImageDataGenerator` applying the transforms.
        target_size: (height, width) of the loaded images.
        color_mode: 'grayscale', 'rgb' or 'rgba'.
        classes: Subdirectory names in label order (sorted subdirectories when None).
        class_mode: 'categorical', 'binary', 'sparse', 'input' or None.
        batch_size, shuffle, seed: As `Iterator`.
        subset: 'training' or 'validation' with the generator's
            `validation_split` (per class, the first files are validation).
        interpolation: PIL resampling method used by `load_img`.
        keep_aspect_ratio: Crop to the target aspect ratio before resizing.
    """

    def __init__(
        self,
        directory: str,
        image_data_generator: Any,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: list[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        data_format: str | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        follow_links: bool = False,
        subset: str | None = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
        dtype: Any = None,
    ):
        if color_mode not in ("rgb", "rgba", "grayscale"):
            raise ValueError(
                f'Invalid color mode: {color_mode}; expected "rgb", "rgba", or "grayscale". '
                f"Received: color_mode={color_mode!r}"
            )
        if class_mode not in CLASS_MODES:
            raise ValueError(
                f"Invalid class_mode: {class_mode}; expected one of: {CLASS_MODES}. "
                f"Received: class_mode={class_mode!r}"
            )
        if not os.path.isdir(directory):
            raise ValueError(
                f"`directory` must be an existing directory. Received: directory={directory!r}"
            )
        self.dtype = dtype or image_data_generator.dtype
        self.directory = directory
        self.image_data_generator = image_data_generator
        self.target_size = tuple(int(s) for s in target_size)
        self.color_mode = color_mode
        self.data_format = data_format or "channels_last"
        channels = {"rgb": 3, "rgba": 4, "grayscale": 1}[color_mode]
        if self.data_format == "channels_last":
            self.image_shape = (*self.target_size, channels)
        else:
            self.image_shape = (channels, *self.target_size)
        self.class_mode = class_mode
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        self.interpolation = interpolation
        self.keep_aspect_ratio = keep_aspect_ratio
        split = image_data_generator._validation_split
        if subset is not None and subset not in ("training", "validation"):
            raise ValueError(
                f"Invalid subset name: {subset}; expected 'training' or 'validation'. "
                f"Received: subset={subset!r}"
            )
        if not classes:
            classes = sorted(
                d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))
            )
        self.class_indices = dict(zip(classes, range(len(classes))))
        self.num_classes = len(classes)
        formats = tuple("." + f for f in self.white_list_formats)
        filepaths: list[str] = []
        labels: list[int] = []
        for name in classes:
            files = du._list_files(os.path.join(directory, name), formats, follow_links)
            if subset is not None and split:
                cut = int(split * len(files))
                files = files[:cut] if subset == "validation" else files[cut:]
            filepaths.extend(files)
            labels.extend([self.class_indices[name]] * len(files))
        if not filepaths:
            raise ValueError(
                f"No images found in directory {directory}. Allowed formats: "
                f"{self.white_list_formats}. Received: directory={directory!r}"
            )
        self._filepaths = filepaths
        self.filenames = [os.path.relpath(p, directory) for p in filepaths]
        self.classes = np.asarray(labels, dtype=np.int32)
        self.samples = len(filepaths)
        du.log(f"Found {self.samples} images belonging to {self.num_classes} classes.", True)
        super().__init__(self.samples, batch_size, shuffle, seed)

    @property
    def filepaths(self) -> list[str]:
        """Absolute paths of the files, in sample order."""
        return self._filepaths

    @property
    def labels(self) -> np.ndarray:
        """Integer class of every file."""
        return self.classes

    def load_image(self, path: str) -> np.ndarray:
        """Loads one file as an array of `image_shape` (before augmentation)."""
        img = load_img(
            path,
            color_mode=self.color_mode,
            target_size=self.target_size,
            interpolation=self.interpolation,
            keep_aspect_ratio=self.keep_aspect_ratio,
        )
        return img_to_array(img, data_format=self.data_format, dtype=self.dtype)

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray) -> Any:
        batch_x = np.zeros((len(index_array), *self.image_shape), dtype=self.dtype)
        for i, j in enumerate(index_array):
            batch_x[i] = self._augment(self.load_image(self._filepaths[j]), j)
        self._save(batch_x, index_array)
        mode = self.class_mode
        if mode is None:
            return batch_x
        if mode == "input":
            return batch_x, batch_x.copy()
        if mode == "sparse":
            return batch_x, self.classes[index_array].astype(self.dtype)
        if mode == "binary":
            return batch_x, self.classes[index_array].astype(self.dtype)
        batch_y = np.zeros((len(index_array), self.num_classes), dtype=self.dtype)
        batch_y[np.arange(len(index_array)), self.classes[index_array]] = 1.0
        return batch_x, batch_y
