"""The tf.data-style methods users call on the datasets our loaders return.

`image_dataset_from_directory`, `text_dataset_from_directory` and
`timeseries_dataset_from_array` return lazily read batch datasets; the Keras
guides then call `take`, `map`, `cache`, `prefetch`, `shuffle`,
`unbatch().batch(n)`, `cardinality()`, `len`, iteration, `class_names` and
`file_paths` on them. `DatasetOps` gives them those methods; each returns a
view that still reads lazily and keeps the trainer's sharded-read hook
(`batch_length`, `get_shard`), so a data-parallel `fit` on
`ds.map(f).cache()` still loads only each rank's slice of every batch.

`prefetch` is a no-op (batches are read on demand; `PyDataset(workers=...)`
reads ahead); `cache` keeps the batches read in memory; `map(fn)` applies
`fn` to whole batches (or to a rank's slice of one), so `fn` must treat the
samples of a batch independently, as a per-sample map does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distkeras.utils.py_dataset import PyDataset


class EagerArray(np.ndarray):
    """A NumPy array that also answers `.numpy()`, as the eager tensors of a tf.data loop do.

    Batches met by iterating a loader dataset (`for x, y in ds.take(1)`) are
    views of this type, so guide code calling `images[0].numpy()` runs;
    `fit` reads batches by index and gets plain arrays.
    """

    def numpy(self) -> np.ndarray:
        return np.asarray(self)

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        if isinstance(out, np.generic):  # a number: a 0-d array, as a scalar tensor
            return np.asarray(out).view(EagerArray)
        return out


def eager(x: Any) -> Any:
    """`x` with every NumPy leaf viewed (no copy) as an `EagerArray`."""
    if isinstance(x, dict):
        return {k: eager(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(eager(v) for v in x)
    return x.view(EagerArray) if isinstance(x, np.ndarray) else x


class Cardinality(int):
    """An int that also answers `.numpy()`, as a tf.data cardinality tensor does."""

    def numpy(self) -> int:
        return int(self)


def _concat(parts: list) -> Any:
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_concat([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate([np.asarray(p) for p in parts])


def _apply(fn: Callable, batch: Any) -> Any:
    """`fn(*batch)` for tuple batches (tf.data's convention), else `fn(batch)`."""
    return fn(*batch) if isinstance(batch, tuple) else fn(batch)


def _to_numpy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_numpy(v) for v in x)
    data = getattr(x, "data", None)  # a Tensor returned by a layer inside `map`
    if data is not None and hasattr(data, "dtype") and not isinstance(x, np.ndarray):
        from distkeras.backend import to_numpy  # noqa: PLC0415

        return to_numpy(x)
    return x


class DatasetOps:
    """Mixin of batch datasets with `__len__`, `__getitem__`, `batch_length`, `get_shard`."""

    def cardinality(self) -> Cardinality:
        """Number of batches (tf.data's `cardinality()`)."""
        return Cardinality(len(self))

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield eager(self[i])

    def as_numpy_iterator(self) -> Iterator:
        """Iterates over the batches as plain NumPy arrays."""
        return (self[i] for i in range(len(self)))

    def take(self, count: int) -> SelectedBatches:
        """The first `count` batches (all of them for -1)."""
        n = len(self)
        count = n if count is None or count < 0 else min(int(count), n)
        return SelectedBatches(self, np.arange(count))

    def skip(self, count: int) -> SelectedBatches:
        """All batches after the first `count`."""
        return SelectedBatches(self, np.arange(min(max(int(count), 0), len(self)), len(self)))

    def repeat(self, count: int | None = None) -> SelectedBatches:
        """The batches `count` times over (an infinite repeat is not supported)."""
        if count is None or count < 0:
            raise ValueError(
                "Only finite repeats are supported: use `fit(epochs=...)` to pass over the "
                f"data several times. Received: count={count}"
            )
        return SelectedBatches(self, np.tile(np.arange(len(self)), int(count)))

    def shuffle(
        self, buffer_size: int, seed: int | None = None, reshuffle_each_iteration: bool = True
    ) -> SelectedBatches:
        """The batches in a seeded random order, redrawn each epoch unless told otherwise.

        The order depends only on `seed` (0 when None) and the epoch, so every
        rank of a data-parallel run sees the same order.
        """
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, np.integer)):
            raise ValueError(f"`buffer_size` must be an integer. Received: {buffer_size!r}")
        view = SelectedBatches(self, np.arange(len(self)))
        view._shuffle = (0 if seed is None else int(seed), bool(reshuffle_each_iteration))
        view._reorder(0)
        return view

    def map(
        self, map_func: Callable, num_parallel_calls: Any = None, deterministic: Any = None
    ) -> MappedBatches:
        """Applies `map_func` to every batch (`map_func(*batch)` for tuple batches)."""
        return MappedBatches(self, map_func)

    def cache(self, filename: str = "") -> CachedBatches:
        """Keeps the batches in memory once read (`filename` is not used)."""
        return CachedBatches(self)

    def prefetch(self, buffer_size: Any = None) -> DatasetOps:
        """A no-op: batches are read on demand (see `PyDataset(workers=...)`)."""
        return self

    def unbatch(self) -> Unbatched:
        """The samples one by one (`.batch(n)` on the result re-batches them)."""
        return Unbatched(self)

    def rebatch(self, batch_size: int, drop_remainder: bool = False) -> Rebatched:
        """The same samples in batches of `batch_size`."""
        return Rebatched(self, batch_size, drop_remainder)

    def batch(self, batch_size: int, drop_remainder: bool = False, **kwargs: Any) -> Any:
        """Batches of batches are not supported: use `unbatch().batch(n)` or `rebatch(n)`."""
        raise ValueError(
            "This dataset is already batched; call `.unbatch().batch(n)` (or `.rebatch(n)`) to "
            f"change the batch size. Received: batch_size={batch_size}"
        )


class _View(DatasetOps, PyDataset):
    """A dataset defined on top of another; attributes it lacks come from the parent."""

    def __init__(self, parent: Any):
        super().__init__()
        self.parent = parent

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "parent":
            raise AttributeError(name)
        return getattr(self.parent, name)

    def on_epoch_end(self) -> None:
        self.parent.on_epoch_end()


class SelectedBatches(_View):
    """Batches `indices` of the parent, in that order (take, skip, repeat, shuffle)."""

    def __init__(self, parent: Any, indices: np.ndarray):
        super().__init__(parent)
        self.indices = np.asarray(indices, dtype=np.int64)
        self._base = self.indices
        self._shuffle: tuple[int, bool] | None = None
        self._epoch = 0

    def _reorder(self, epoch: int) -> None:
        seed, each = self._shuffle
        rng = np.random.Generator(np.random.PCG64([seed, epoch if each else 0]))
        self.indices = self._base[rng.permutation(len(self._base))]

    def on_epoch_end(self) -> None:
        super().on_epoch_end()
        self._epoch += 1
        if self._shuffle is not None:
            self._reorder(self._epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def _index(self, index: int) -> int:
        return int(self.indices[index])

    def __getitem__(self, index: int) -> Any:
        return self.parent[self._index(index)]

    def batch_length(self, index: int) -> int:
        return int(self.parent.batch_length(self._index(index)))

    def get_shard(self, index: int, lo: int, hi: int) -> Any:
        return self.parent.get_shard(self._index(index), lo, hi)


class MappedBatches(_View):
    """The parent's batches passed through `fn`."""

    def __init__(self, parent: Any, fn: Callable):
        super().__init__(parent)
        self.fn = fn

    def __len__(self) -> int:
        return len(self.parent)

    def __getitem__(self, index: int) -> Any:
        return _to_numpy(_apply(self.fn, self.parent[index]))

    def batch_length(self, index: int) -> int:
        return int(self.parent.batch_length(index))

    def get_shard(self, index: int, lo: int, hi: int) -> Any:
        return _to_numpy(_apply(self.fn, self.parent.get_shard(index, lo, hi)))


class CachedBatches(_View):
    """The parent's batches, each kept in memory after its first read."""

    def __init__(self, parent: Any):
        super().__init__(parent)
        self._store: dict = {}

    def __len__(self) -> int:
        return len(self.parent)

    def __getitem__(self, index: int) -> Any:
        key = (int(index) % len(self), None, None)
        if key not in self._store:
            self._store[key] = self.parent[index]
        return self._store[key]

    def batch_length(self, index: int) -> int:
        return int(self.parent.batch_length(index))

    def get_shard(self, index: int, lo: int, hi: int) -> Any:
        key = (int(index) % len(self), int(lo), int(hi))
        if key not in self._store:
            self._store[key] = self.parent.get_shard(index, lo, hi)
        return self._store[key]


class Rebatched(_View):
    """The parent's samples, in order, cut into batches of `batch_size`."""

    def __init__(self, parent: Any, batch_size: int, drop_remainder: bool = False):
        super().__init__(parent)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(f"`batch_size` must be an integer. Received: {batch_size!r}")
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}")
        self.batch_size = int(batch_size)
        lengths = [int(parent.batch_length(i)) for i in range(len(parent))]
        self._starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        total = int(self._starts[-1])
        self.num_samples = total
        full, rest = divmod(total, self.batch_size)
        self._len = full + (1 if rest and not drop_remainder else 0)

    def __len__(self) -> int:
        return self._len

    def batch_length(self, index: int) -> int:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index out of range. Received: index={index}")
        lo = index * self.batch_size
        return min(lo + self.batch_size, self.num_samples) - lo

    def get_shard(self, index: int, lo: int, hi: int) -> Any:
        start = index * self.batch_size
        return self._samples(start + lo, start + hi)

    def __getitem__(self, index: int) -> Any:
        return self.get_shard(index, 0, self.batch_length(index))

    def _samples(self, lo: int, hi: int) -> Any:
        """Samples [lo, hi) of the whole stream, read from the parent batches holding them."""
        starts = self._starts
        first = max(int(np.searchsorted(starts, lo, side="right")) - 1, 0)
        parts = []
        j = first
        while j < len(starts) - 1 and (starts[j] < hi or not parts):
            a, b = max(lo, starts[j]) - starts[j], min(hi, starts[j + 1]) - starts[j]
            parts.append(self.parent.get_shard(j, int(a), int(max(a, b))))
            j += 1
        return parts[0] if len(parts) == 1 else _concat(parts)


class Unbatched:
    """The samples of a batch dataset one by one (tf.data's `unbatch()`)."""

    def __init__(self, parent: Any):
        self.parent = parent

    def __len__(self) -> int:
        return sum(int(self.parent.batch_length(i)) for i in range(len(self.parent)))

    def cardinality(self) -> Cardinality:
        return Cardinality(len(self))

    def __iter__(self) -> Iterator:
        for batch in self.parent:
            n = len(_first_leaf(batch))
            for i in range(n):
                yield eager(_index_struct(batch, i))

    def take(self, count: int) -> list:
        """The first `count` samples, as a list."""
        out = []
        for i, sample in enumerate(self):
            if i >= count:
                break
            out.append(sample)
        return out

    def batch(self, batch_size: int, drop_remainder: bool = False, **kwargs: Any) -> Rebatched:
        """The samples in batches of `batch_size` (lazily read, shardable)."""
        return Rebatched(self.parent, batch_size, drop_remainder)

    def prefetch(self, buffer_size: Any = None) -> Unbatched:
        return self


def _first_leaf(x: Any) -> Any:
    while isinstance(x, (list, tuple, dict)):
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return x


def _index_struct(x: Any, i: int) -> Any:
    if isinstance(x, dict):
        return {k: _index_struct(v, i) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_index_struct(v, i) for v in x)
    return x[i]
