"""`PyDataset`: Keras 3's base class for batch-indexed Python datasets."""

from __future__ import annotations

from typing import Any


class PyDataset:
    """A dataset of batches: subclass it and define `__len__` and `__getitem__`.

    `__getitem__(index)` returns one batch `(x, y)` or `(x, y, sample_weight)`;
    `__len__` the number of batches per epoch; `on_epoch_end` runs after each
    epoch. In a data-parallel run every rank reads the same batch and keeps its
    slice of it.

    Args:
        workers: Accepted for Keras compatibility; batches are read in-process.
        use_multiprocessing: Accepted for Keras compatibility.
        max_queue_size: Accepted for Keras compatibility.
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ):
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        """Called after every epoch (e.g. to reshuffle)."""

    @property
    def num_batches(self) -> int:
        return len(self)
