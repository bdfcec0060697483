"""Shared pieces of the file and array datasets: lazy batches, directory indexing, splits.

`IndexedBatchDataset` is a `PyDataset` whose batches are lists of sample
indices, loaded only when asked for. It implements the trainer's sharded-read
hook (`batch_length(index)`, `get_shard(index, lo, hi)`), so in a
data-parallel run each rank loads only its slice of every global batch, in
the same global order as one process. It has the tf.data-style methods of
`dataset_ops.DatasetOps` (`take`, `map`, `cache`, `unbatch().batch(n)`, ...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.preprocessing.dataset_ops import DatasetOps
from distkeras.utils.py_dataset import PyDataset


class IndexedBatchDataset(DatasetOps, PyDataset):
    """Batches of samples loaded lazily by index.

    Subclasses implement `load(indices)`, returning the batch structure
    (`x`, `(x, y)` or `(x, y, sample_weight)`) for a 1-D array of sample
    indices (possibly empty).

    Args:
        num_samples: Number of samples.
        batch_size: Samples per batch (the last batch may be smaller).
        order: Optional sample order (a permutation or selection of indices).
    """

    def __init__(self, num_samples: int, batch_size: int, order: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(
                f"`batch_size` must be an integer. Received: batch_size={batch_size!r}"
            )
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}")
        self.batch_size = int(batch_size)
        # None: `fit(shuffle=...)` reorders the batches as for any PyDataset. The loaders
        # standing in for Keras's tf.data datasets set it (`like_tf_data`).
        self.shuffle_each_epoch: bool | None = None
        self.order = np.arange(num_samples) if order is None else np.asarray(order, np.int64)
        self.num_samples = int(len(self.order))

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def batch_indices(self, index: int) -> np.ndarray:
        """Sample indices of batch `index` (negative indices count from the end)."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(
                f"Batch index out of range: this dataset has {n} batches. Received: index={index}"
            )
        return self.order[index * self.batch_size : (index + 1) * self.batch_size]

    def batch_length(self, index: int) -> int:
        """Number of samples in batch `index` (the sharded-read hook)."""
        return int(len(self.batch_indices(index)))

    def get_shard(self, index: int, lo: int, hi: int) -> Any:
        """Samples `[lo, hi)` of batch `index`, loading nothing else (the sharded-read hook)."""
        return self.load(self.batch_indices(index)[lo:hi])

    def __getitem__(self, index: int) -> Any:
        return self.load(self.batch_indices(index))

    def load(self, indices: np.ndarray) -> Any:
        """Loads the samples `indices`; subclasses implement it."""
        raise NotImplementedError


def like_tf_data(datasets: Any, shuffle: bool) -> Any:
    """Marks a loader's dataset(s) to be read by `fit` as Keras reads the tf.data it returns.

    `fit` ignores its `shuffle` argument for a tf.data.Dataset: the batches
    come in the dataset's order, reshuffled every epoch only when the loader
    was asked to shuffle. Returns `datasets` (one or a list).
    """
    for ds in datasets if isinstance(datasets, list) else [datasets]:
        ds.shuffle_each_epoch = bool(shuffle)
    return datasets


def stack(items: list[np.ndarray], sample_shape: tuple, dtype: Any) -> np.ndarray:
    """Stacks samples, or returns an empty (0, *sample_shape) array when there are none."""
    if not items:
        return np.zeros((0, *sample_shape), dtype=dtype)
    return np.stack(items).astype(dtype, copy=False)


# ---------------------------------------------------------------- directories
def index_directory(
    directory: str,
    labels: Any,
    formats: tuple[str, ...],
    class_names: Sequence[str] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    follow_links: bool = False,
) -> tuple[list[str], np.ndarray | None, list[str]]:
    """Lists the files of `directory` (one subdirectory per class) as Keras does.

    Returns:
        (file_paths, labels, class_names): files sorted by class then name (and
        shuffled with `seed` when `shuffle`), integer labels (None when
        `labels=None`), and the class names.
    """
    if not os.path.isdir(directory):
        raise ValueError(
            f"`directory` must be an existing directory. Received: directory={directory!r}"
        )
    if labels == "inferred":
        subdirs = sorted(
            d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))
        )
        if class_names is not None:
            missing = sorted(set(class_names) - set(subdirs))
            if missing or not class_names:
                raise ValueError(
                    "The `class_names` passed did not match the names of the subdirectories of "
                    f"the target directory. Expected: {subdirs} (or a subset of it), but "
                    f"received: class_names={list(class_names)}"
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]
    paths: list[str] = []
    label_list: list[int] = []
    for label, sub in enumerate(subdirs):
        found = _list_files(os.path.join(directory, sub), formats, follow_links)
        paths.extend(found)
        label_list.extend([label] * len(found))
    names = list(subdirs) if labels == "inferred" else []
    if labels is None:
        out_labels = None
    elif labels == "inferred":
        out_labels = np.asarray(label_list, dtype=np.int64)
    else:
        if not isinstance(labels, (list, tuple, np.ndarray)):
            raise ValueError(
                "`labels` argument should be a list/tuple of integer labels, of the same size as "
                f"the number of files in the target directory, 'inferred' or None. "
                f"Received: labels={labels!r}"
            )
        if len(labels) != len(paths):
            raise ValueError(
                "Expected the lengths of `labels` to match the number of files in the target "
                f"directory. len(labels) is {len(labels)} while we found {len(paths)} files "
                f"in directory {directory}."
            )
        out_labels = np.asarray(labels)
        if class_names is not None:
            names = list(class_names)
    if shuffle and paths:
        if seed is None:
            seed = int(np.random.randint(1_000_000))
        perm = np.random.RandomState(seed).permutation(len(paths))
        paths = [paths[i] for i in perm]
        if out_labels is not None:
            out_labels = out_labels[perm]
    return paths, out_labels, names


def _list_files(path: str, formats: tuple[str, ...], follow_links: bool) -> list[str]:
    out = []
    for root, dirs, files in os.walk(path, followlinks=follow_links):
        dirs.sort()
        for f in sorted(files):
            if f.lower().endswith(formats):
                out.append(os.path.join(root, f))
    return sorted(out)


def check_validation_split(
    validation_split: float | None, subset: str | None, shuffle: bool, seed: int | None
) -> None:
    """Keras's checks of `validation_split`, `subset`, `shuffle` and `seed`."""
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(
            f"`validation_split` must be between 0 and 1. Received: {validation_split}"
        )
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(
            '`subset` must be either "training", "validation" or "both". '
            f"Received: subset={subset!r}"
        )
    if (validation_split is None) != (subset is None):
        raise ValueError(
            "If `subset` is set, `validation_split` must be set, and inversely. "
            f"Received: validation_split={validation_split}, subset={subset!r}"
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must provide a `seed` "
            "argument, to make sure that there is no overlap between the training and "
            "validation subset. Received: seed=None"
        )


def split_indices(n: int, validation_split: float | None, subset: str | None) -> np.ndarray:
    """The sample indices of `subset`: the last `int(split * n)` samples are validation."""
    if not validation_split:
        return np.arange(n)
    num_val = int(validation_split * n)
    if subset == "training":
        return np.arange(n - num_val)
    return np.arange(n - num_val, n)


def encode_labels(labels: np.ndarray, label_mode: str | None, num_classes: int) -> np.ndarray:
    """Integer labels -> 'int' (int32), 'categorical' (one-hot float32) or 'binary' (n, 1)."""
    if label_mode == "int":
        return labels.astype(np.int32)
    if label_mode == "categorical":
        out = np.zeros((len(labels), num_classes), dtype=np.float32)
        out[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
        return out
    if label_mode == "binary":
        return labels.astype(np.float32).reshape(-1, 1)
    raise ValueError(
        '`label_mode` argument must be one of "int", "categorical", "binary", or None. '
        f"Received: label_mode={label_mode!r}"
    )


def count_classes(class_names: list[str], labels: np.ndarray | None) -> int:
    """Number of classes: of the class names, else of the largest label + 1."""
    if class_names:
        return len(class_names)
    if labels is None or not len(labels):
        return 0
    return int(np.max(labels)) + 1


def check_label_mode(label_mode: Any, labels: Any, num_classes: int) -> None:
    """Validates `labels`/`label_mode` as Keras does."""
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(
            '`label_mode` argument must be one of "int", "categorical", "binary", or None. '
            f"Received: label_mode={label_mode!r}"
        )
    if label_mode == "binary" and num_classes != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names with {num_classes} classes"
        )


def log(message: str, verbose: bool) -> None:
    """Prints `message` when `verbose`, on the coordinator only in a launched job."""
    if not verbose:
        return
    from distkeras.distributed.env import detect_launch  # noqa: PLC0415

    launch = detect_launch()
    if launch is None or launch.rank in (None, 0):
        print(message)


def folder_datasets(
    paths: list[str],
    int_labels: np.ndarray | None,
    class_names: list[str],
    label_mode: str | None,
    validation_split: float | None,
    subset: str | None,
    verbose: bool,
    build: Any,
) -> Any:
    """The dataset(s) of a labelled folder: `build(paths, labels)` per subset.

    Logs what was found, checks that 'binary' labels have two classes, encodes
    the labels for `label_mode`, and splits off `subset` ('training',
    'validation', 'both' for a [training, validation] list, or None).
    """
    log(f"Found {len(paths)} files belonging to {len(class_names)} classes.", verbose)
    num_classes = count_classes(class_names, int_labels)
    if label_mode == "binary" and num_classes != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names={class_names}"
        )
    encoded = None if int_labels is None else encode_labels(int_labels, label_mode, num_classes)

    def make(which: str | None) -> Any:
        idx = split_indices(len(paths), validation_split, which)
        if which is not None:
            log(f"Using {len(idx)} files for {which}.", verbose)
        return build([paths[i] for i in idx], None if encoded is None else encoded[idx])

    if subset == "both":
        return [make("training"), make("validation")]
    return make(subset)
