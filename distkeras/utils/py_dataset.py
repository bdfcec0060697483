"""`PyDataset`: Keras 3's base class for batch-indexed Python datasets."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from typing import Any


class PyDataset:
    """A dataset of batches: subclass it and define `__len__` and `__getitem__`.

    `__getitem__(index)` returns one batch: `x`, `(x,)`, `(x, y)` or
    `(x, y, sample_weight)` (a tuple or a list); `__len__` (or the
    `num_batches` property, None for an infinite dataset) the number of
    batches per epoch. `on_epoch_begin`/`on_epoch_end` run around each epoch.
    In a data-parallel run every rank reads the same batch index and keeps
    its slice of the batch.

    Args:
        workers: Number of threads reading batches ahead (1: read in the
            training thread).
        use_multiprocessing: Accepted for Keras compatibility; batches are
            read in threads of this process.
        max_queue_size: How many batches the workers read ahead at most.
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ):
        for name, value, low in (("workers", workers, 0), ("max_queue_size", max_queue_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"`{name}` must be an integer >= {low}. Received: {name}={value!r}"
                )
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        if not hasattr(self, "_workers"):
            self._workers, self._use_multiprocessing, self._max_queue_size = 1, False, 10
            warnings.warn(
                "Your `PyDataset` class should call `super().__init__(**kwargs)` in its "
                "constructor. `**kwargs` can include `workers`, `use_multiprocessing`, "
                "`max_queue_size`. Do not pass these arguments to `fit()`, as they will be "
                "ignored.",
                stacklevel=3,
            )

    @property
    def workers(self) -> int:
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """The batch at position `index`."""
        raise NotImplementedError

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch (`len(self)`); None marks an infinite dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            "You need to implement the `num_batches` property:\n\n"
            "@property\ndef num_batches(self):\n  return ..."
        )

    def __iter__(self) -> Iterator:
        try:
            n = self.num_batches
        except NotImplementedError:
            n = None
        indices = range(n) if n is not None else itertools.count()
        for i in indices:
            yield self[i]

    def on_epoch_begin(self) -> None:
        """Called before every epoch."""

    def on_epoch_end(self) -> None:
        """Called after every epoch (e.g. to reshuffle)."""


Sequence = PyDataset  # Keras 3 keeps `keras.utils.Sequence` as another name of PyDataset
