"""Adapters for data that arrives batch by batch: generators, PyDataset, torch, tf.data.

A data-parallel run shares a stream between ranks in one of two ways:

- **replicated reads** (`IterableDataAdapter`: generators, `PyDataset`,
  sequences; every source in deterministic mode): every rank reads the same
  global batch and keeps its contiguous slice (`rank_bounds`); a dataset with
  the sharded-read hook (`batch_length`, `get_shard`) reads only that slice.
  The global batches are those of one process.
- **rank-local reads** (`RankLocalAdapter`: tf.data through
  `shard(num_workers, index)`, a torch `DataLoader` with a
  `DistributedSampler`, every N-th batch of any other `DataLoader`): each rank
  reads only its own batches and a global step is one batch per rank. Each
  step the ranks all-gather (samples, has-data) — two integers — to agree on
  the global batch size and on the end of the epoch; a rank whose share ran
  out meanwhile contributes an empty batch, so no sample is dropped and none
  is read twice in one global step.

Every batch may be a tuple or a list `(x, y[, sample_weight])`; torch and
TensorFlow tensors are converted to NumPy (see `data_sources`). Which source
gets which adapter: `library_adapters.stream_adapter`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from distkeras.models import data_sources as ds
from distkeras.models import input_checks
from distkeras.models.compile_utils import class_weight_to_sample_weight
from distkeras.models.data_adapter import (
    check_cardinality,
    map_struct,
    rank_bounds,
    unpack_batch,
)
from distkeras.utils.py_dataset import PyDataset

_END = object()


def standardize_batch(
    item: Any, allow_strings: bool, class_weight: dict | None, shard_gbs: int | None = None
) -> tuple[Any, Any, Any, int]:
    """(x, y, sample_weight, samples) of one batch: unpacked, converted and checked."""
    x, y, sw = unpack_batch(item)
    x, y, sw = ds.convert_struct(x), ds.convert_struct(y), ds.convert_struct(sw)
    n = check_cardinality(x, y, sw)
    input_checks.check_batch(x, y, sw, allow_strings, shard_gbs)
    if class_weight is not None and y is not None:
        if sw is not None:
            raise ValueError(
                "You cannot specify `class_weight` and `sample_weight` at the same time. "
                f"Received: class_weight={class_weight} and batches with sample weights"
            )
        sw = class_weight_to_sample_weight(y, class_weight, None)
    return x, y, sw, n


def _slice(data: tuple, lo: int, hi: int) -> tuple:
    return tuple(map_struct(lambda a: a[lo:hi], d) for d in data)


def prefetched(read: Callable, indices: Any, workers: int, depth: int) -> Iterator:
    """`read(i)` for each index in order, up to `depth` reads ahead on `workers` threads."""
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: deque = deque()
    it = iter(indices)
    try:
        for i in itertools.islice(it, max(depth, 1)):
            pending.append(pool.submit(read, i))
        while pending:
            fut = pending.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(pool.submit(read, nxt))
            yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def num_batches_of(data: Any) -> int | None:
    """Batches per epoch of a PyDataset (None: infinite) or of a sequence."""
    if isinstance(data, PyDataset):
        return data.num_batches
    return len(data)


class IterableDataAdapter:
    """Batches of a generator/iterator or a PyDataset, read identically on every rank.

    Each rank keeps its contiguous slice of every global batch. A sequence
    that implements the sharded-read hook reads only that slice instead:

    - `batch_length(index) -> int`: number of samples in global batch `index`;
    - `get_shard(index, lo, hi)`: samples `[lo, hi)` of that batch, in the
      same structure as `__getitem__(index)` (see
      `distkeras.preprocessing.dataset_utils.IndexedBatchDataset`).

    A PyDataset is read by index, with `workers > 1` threads reading up to
    `max_queue_size` batches ahead; `num_batches=None` marks an infinite
    one (then `steps` is required). `on_epoch_begin`/`on_epoch_end` are
    called around each epoch. A re-iterable source (`reiterable=True`: a
    DataLoader, a tf.data dataset) is iterated afresh every epoch, unless
    `steps` is given: then, as in Keras, one pass is carried on across epochs
    and reopened once it runs out (an epoch ends early there); a generator is
    consumed across epochs.

    Each batch's dtypes and size are checked (`input_checks.check_batch`);
    NaN/inf in generated batches are not looked for.
    """

    def __init__(
        self,
        data: Any,
        steps: int | None = None,
        rank: int = 0,
        size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        allow_strings: bool = True,
        class_weight: dict | None = None,
        reiterable: bool = False,
    ):
        self.data = data
        self.allow_strings = allow_strings
        self.class_weight = class_weight
        self.reiterable = reiterable
        self.is_sequence = not reiterable and (
            isinstance(data, PyDataset)
            or (hasattr(data, "__getitem__") and hasattr(data, "__len__"))
        )
        self.num_batches = num_batches_of(data) if self.is_sequence else None
        if self.is_sequence and self.num_batches is None and steps is None:
            raise ValueError(
                "An infinite PyDataset (num_batches=None) needs `steps_per_epoch` (or `steps`). "
                "Received: steps=None"
            )
        self.steps = steps if steps is not None else self.num_batches
        self.user_steps = steps
        self.rank, self.size = rank, size
        self.shuffle = shuffle
        self.seed = seed
        self.micro_shards: int | None = None
        self._iterator: Iterator | None = None

    @property
    def steps_per_epoch(self) -> int | None:
        return self.steps

    def on_epoch_end(self) -> None:
        if hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()

    def _sharded_reads(self) -> bool:
        data = self.data
        return self.size > 1 and hasattr(data, "get_shard") and hasattr(data, "batch_length")

    def _read_shard(self, index: int) -> _Shard:
        gbs = int(self.data.batch_length(index))
        lo, hi = rank_bounds(gbs, self.rank, self.size, self.micro_shards)
        return _Shard(self.data.get_shard(index, lo, hi), gbs)

    def _sequence_source(self, epoch: int, start_step: int) -> Iterator:
        n = self.num_batches
        read = self._read_shard if self._sharded_reads() else self.data.__getitem__
        if n is None:  # infinite: indices keep counting across epochs
            indices: Any = range(epoch * self.steps + start_step, (epoch + 1) * self.steps)
        else:
            order = np.arange(n)
            if self.shuffle:
                order = np.random.Generator(np.random.PCG64([self.seed, epoch])).permutation(n)
            indices = (int(order[i % n]) for i in range(start_step, self.steps))
        workers = int(getattr(self.data, "workers", 1) or 1)
        if workers > 1:
            depth = int(getattr(self.data, "max_queue_size", 10) or 10)
            return prefetched(read, indices, workers, depth)
        return (read(i) for i in indices)

    def _stream_source(self, start_step: int) -> Iterator:
        if self.reiterable and self.user_steps is None:  # a fresh pass every epoch
            it = iter(self.data)
            for _ in range(start_step):
                next(it, None)
        else:  # carried on across epochs (reopened once a re-iterable source ran out)
            if self._iterator is None:
                self._iterator = iter(self.data)
            it = self._iterator
        steps = self.steps
        i = start_step
        while steps is None or i < steps:
            item = next(it, _END)
            if item is _END:
                if self.reiterable:
                    self._iterator = None
                return
            yield item
            i += 1

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Any, Any, Any, int]]:
        """Yields (x, y, sample_weight, global_batch_size) for this rank's slice."""
        if start_step == 0 and hasattr(self.data, "on_epoch_begin"):
            self.data.on_epoch_begin()
        if self.is_sequence:
            source = self._sequence_source(epoch, start_step)
        else:
            source = self._stream_source(start_step)
        for item in source:
            shard_gbs = None
            if isinstance(item, _Shard):
                item, shard_gbs = item.batch, item.global_batch_size
            x, y, sw, gbs = standardize_batch(
                item, self.allow_strings, self.class_weight, shard_gbs
            )
            if shard_gbs is not None:  # already this rank's slice
                gbs = shard_gbs
            elif self.size > 1:
                lo, hi = rank_bounds(gbs, self.rank, self.size, self.micro_shards)
                x, y, sw = _slice((x, y, sw), lo, hi)
            yield x, y, sw, gbs


class _Shard:
    """One rank's slice of a global batch, read through the sharded-read hook."""

    __slots__ = ("batch", "global_batch_size")

    def __init__(self, batch: Any, global_batch_size: int):
        self.batch = batch
        self.global_batch_size = global_batch_size


class RankLocalAdapter:
    """Batches each rank reads on its own (its share of the data), kept in lockstep.

    Args:
        open_epoch: `open_epoch(epoch)` returns an iterator over this rank's
            batches of that epoch.
        comm: The communicator (ranks agree on every step through it).
        steps: Steps per epoch given by the user; the iterator then carries
            on across epochs (reopened when it runs out), as in Keras.
        num_batches: Expected steps per epoch (for the progress bar), or None.
        allow_strings: Accept text in `x`.
        class_weight: {class: weight} turned into per-batch sample weights.
    """

    def __init__(
        self,
        open_epoch: Callable[[int], Iterator],
        comm: Any,
        steps: int | None = None,
        num_batches: int | None = None,
        allow_strings: bool = True,
        class_weight: dict | None = None,
    ):
        self.open_epoch = open_epoch
        self.comm = comm
        self.steps = steps
        self.num_batches = num_batches
        self.allow_strings = allow_strings
        self.class_weight = class_weight
        self._iterator: Iterator | None = None

    @property
    def steps_per_epoch(self) -> int | None:
        return self.steps if self.steps is not None else self.num_batches

    def _agree(self, n: int, has: bool, needy: bool) -> tuple[int, bool, bool]:
        """(global batch size, any rank has data, any rank needs a template) of this step."""
        if self.comm.size == 1:
            return n, has, needy
        parts = self.comm.allgather(np.asarray([n, int(has), int(needy)], dtype=np.int64))
        total = np.sum(np.stack([np.asarray(p).reshape(3) for p in parts]), axis=0)
        return int(total[0]), bool(total[1]), bool(total[2])

    def _shared_template(self, template: Any) -> Any:
        """An empty batch of the right structure, dtypes and shapes, from a rank that has one."""
        mine = None if template is None else _describe(template)
        for desc in self.comm.allgather_object(mine):
            if desc is not None:
                return _build(desc)
        raise ValueError("No rank received any data. Received: an empty dataset")

    def _source(self, epoch: int, start_step: int) -> Iterator:
        if self.steps is None:
            it = self.open_epoch(epoch)
            for _ in range(start_step):
                next(it, None)
            return it
        if self._iterator is None:
            self._iterator = self.open_epoch(epoch)
        return self._iterator

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Any, Any, Any, int]]:
        """Yields (x, y, sample_weight, global_batch_size) of this rank's own batches."""
        it = self._source(epoch, start_step)
        template = None
        step = start_step
        while self.steps is None or step < self.steps:
            item = next(it, _END)
            has = item is not _END
            n = 0
            if has:
                x, y, sw, n = standardize_batch(item, self.allow_strings, self.class_weight)
                template = _slice((x, y, sw), 0, 0)
            total, alive, needy = self._agree(n, has, not has and template is None)
            if not alive:
                self._iterator = None  # ran out: the next epoch starts afresh
                return
            if needy:  # a rank whose share is empty from the start borrows the structure
                shared = self._shared_template(template)
                template = template if template is not None else shared
            if not has:
                x, y, sw = template
            if total == 0:
                raise ValueError(
                    "Expected at least one sample in `x`, which is empty. "
                    "Received: a batch of 0 samples"
                )
            yield x, y, sw, total
            step += 1


def _describe(x: Any) -> Any:
    """Plain-data description of an empty batch structure (for `_build` on another rank)."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {"dict": [[k, _describe(v)] for k, v in x.items()]}
    if isinstance(x, (list, tuple)):
        return {"list" if isinstance(x, list) else "tuple": [_describe(v) for v in x]}
    return {"leaf": [np.dtype(x.dtype).str, list(x.shape[1:])]}


def _build(desc: Any) -> Any:
    if desc is None:
        return None
    if "dict" in desc:
        return {k: _build(v) for k, v in desc["dict"]}
    if "list" in desc:
        return [_build(v) for v in desc["list"]]
    if "tuple" in desc:
        return tuple(_build(v) for v in desc["tuple"])
    dtype, shape = desc["leaf"]
    return np.zeros((0, *shape), dtype=np.dtype(dtype))


def is_stream(x: Any) -> bool:
    """Generators, iterators and PyDataset-like sequences (not arrays, not pandas)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    if hasattr(x, "__array__") or ds.is_pandas(x) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or hasattr(x, "__getitem__")
