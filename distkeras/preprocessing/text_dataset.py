"""`text_dataset_from_directory`: batches of strings from `.txt` files, read lazily."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.preprocessing import dataset_utils as du


class TextFileDataset(du.IndexedBatchDataset):
    """Batches `(texts, labels)` (or `texts`) read from text files on demand.

    `texts` is a NumPy array of Python strings (dtype object).

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
        max_length: int | None = None,
        encoding: str = "utf-8",
    ):
        super().__init__(len(file_paths), batch_size)
        self.file_paths = list(file_paths)
        self.labels = labels
        self.class_names = class_names
        self.max_length = max_length
        self.encoding = encoding

    def load_text(self, path: str) -> str:
        """Reads one file (truncated to `max_length` characters)."""
        with open(path, encoding=self.encoding, errors="replace") as f:
            text = f.read()
        return text if self.max_length is None else text[: self.max_length]

    def load(self, indices: np.ndarray) -> Any:
        texts = np.empty(len(indices), dtype=object)
        for j, i in enumerate(indices):
            texts[j] = self.load_text(self.file_paths[i])
        if self.labels is None:
            return texts
        return texts, self.labels[indices]


def text_dataset_from_directory(
    directory: str,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: Sequence[str] | None = None,
    batch_size: int | None = 32,
    max_length: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    verbose: bool = True,
) -> Any:
    """Makes a lazily read dataset of texts from a directory (one subdirectory per class).

    Args:
        directory: Folder with one subdirectory of `.txt` files per class.
        labels: 'inferred', None, or a list of integer labels in file order.
        label_mode: 'int', 'categorical', 'binary' or None.
        class_names: Explicit order of the subdirectories to use.
        batch_size: Samples per batch.
        max_length: Keep at most this many characters of each text.
        shuffle: Shuffle the files (with `seed`) once, before splitting.
        seed: Seed of the shuffle (needed with `validation_split`).
        validation_split: Fraction of the files held out for validation.
        subset: 'training', 'validation' or 'both'.
        follow_links: Follow symbolic links to subdirectories.
        verbose: Print how many files were found.

    Returns:
        A `TextFileDataset`, or `[training, validation]` with `subset='both'`.
    """
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(
            "`labels` argument should be a list/tuple of integer labels, 'inferred' or None. "
            f"Received: labels={labels!r}"
        )
    if batch_size is None:
        raise ValueError(
            "Unbatched datasets are not supported; pass a positive `batch_size`. "
            "Received: batch_size=None"
        )
    if max_length is not None and (not isinstance(max_length, int) or max_length <= 0):
        raise ValueError(
            f"`max_length` must be a positive integer or None. Received: max_length={max_length!r}"
        )
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    du.check_label_mode(label_mode, labels, 2)
    du.check_validation_split(validation_split, subset, shuffle, seed)
    paths, int_labels, names = du.index_directory(
        directory, labels, (".txt",), class_names, shuffle, seed, follow_links
    )
    if not paths:
        raise ValueError(
            f"No text files found in directory {directory}. Allowed format: .txt. "
            f"Received: directory={directory!r}"
        )

    def build(files: list[str], file_labels: np.ndarray | None) -> TextFileDataset:
        return TextFileDataset(
            files,
            file_labels,
            names,
            batch_size=batch_size,
            max_length=max_length,
        )

    datasets = du.folder_datasets(
        paths, int_labels, names, label_mode, validation_split, subset, verbose, build
    )
    return du.like_tf_data(datasets, shuffle)
