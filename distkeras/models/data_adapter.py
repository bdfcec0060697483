"""Turns user data (arrays, generators, PyDataset) into per-rank batches.

Arrays go through a `Sampler`: a seeded permutation per epoch that does not
depend on the world size, cut into global batches; rank r takes its
contiguous slice of every global batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from distkeras.backend.autodiff import Tensor
from distkeras.models import input_checks
from distkeras.models.compile_utils import class_weight_to_sample_weight


def flatten_struct(x: Any) -> list:
    """Flattens arrays in lists/tuples/dicts (dicts in key order) into a list."""
    if x is None:
        return []
    if isinstance(x, dict):
        return [a for k in x for a in flatten_struct(x[k])]
    if isinstance(x, (list, tuple)):
        return [a for v in x for a in flatten_struct(v)]
    return [x]


def map_struct(fn, x: Any) -> Any:
    """Applies `fn` to every leaf array of a list/tuple/dict structure."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: map_struct(fn, v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(map_struct(fn, v) for v in x)
    return fn(x)


def _as_array(a: Any) -> Any:
    if isinstance(a, Tensor):  # e.g. `ops.one_hot(y)` passed to fit, as Keras allows
        return a.data
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return a
    return np.asarray(a)


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Contiguous slice [lo, hi) of n items for `rank` of `size` (first n % size get one more)."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def rank_bounds(n: int, rank: int, size: int, micro_shards: int | None = None) -> tuple[int, int]:
    """This rank's slice of a global batch of n samples.

    With `micro_shards` K (deterministic mode) the batch is first cut into K
    fixed pieces and the rank takes the pieces `shard_bounds(K, rank, size)`.
    """
    if not micro_shards:
        return shard_bounds(n, rank, size)
    k_lo, k_hi = shard_bounds(micro_shards, rank, size)
    lo = shard_bounds(n, k_lo, micro_shards)[0]
    if k_hi == k_lo:
        return lo, lo
    return lo, shard_bounds(n, k_hi - 1, micro_shards)[1]


class Sampler:
    """Global-batch order for one dataset: a seeded per-epoch permutation.

    Args:
        num_samples: Dataset size.
        batch_size: Global batch size.
        shuffle: Whether to permute each epoch.
        seed: Seed of the permutations (identical on every rank).
    """

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool, seed: int):
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.num_samples / self.batch_size))

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Sample order of `epoch` (same for any world size)."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        rng = np.random.Generator(np.random.PCG64([self.seed, int(epoch)]))
        return rng.permutation(self.num_samples)

    def get_state(self) -> dict:
        return {"seed": self.seed, "num_samples": self.num_samples, "batch_size": self.batch_size}


class ArrayDataAdapter:
    """Batches in-memory arrays (x, y, sample_weight) with a Sampler.

    Args:
        x, y, sample_weight: Arrays or structures of arrays with one first axis.
        batch_size: Global batch size.
        shuffle: Permute each epoch.
        seed: Permutation seed.
        rank, size: This process's shard of every global batch.
        check_finite: Refuse NaN/inf in float arrays (one pass over the data).
        allow_strings: Accept text arrays in `x` (`fit` passes True only for
            models holding a TextVectorization layer).
        class_weight: {class: weight}, multiplied into the sample weights
            once the data passed the checks.

    Raises:
        ValueError: for empty, non-numeric or (with `check_finite`) non-finite
            data, naming the argument (see `input_checks`).
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        size: int = 1,
        steps: int | None = None,
        micro_shards: int | None = None,
        check_finite: bool = True,
        allow_strings: bool = True,
        class_weight: dict | None = None,
    ):
        self.x = map_struct(_as_array, x)
        self.y = map_struct(_as_array, y)
        self.sample_weight = map_struct(_as_array, sample_weight)
        n = check_cardinality(self.x, self.y, self.sample_weight)
        input_checks.check_data(
            self.x,
            self.y,
            self.sample_weight,
            check_finite=check_finite,
            allow_strings=allow_strings,
        )
        if class_weight is not None and self.y is not None:
            self.sample_weight = class_weight_to_sample_weight(
                self.y, class_weight, self.sample_weight
            )
        self.num_samples = n
        self.sampler = Sampler(n, batch_size, shuffle, seed)
        self.rank, self.size = rank, size
        self.steps = steps
        self.micro_shards = micro_shards

    @property
    def steps_per_epoch(self) -> int:
        if self.steps is not None:
            return self.steps
        return self.sampler.steps_per_epoch

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Any, Any, Any, int]]:
        """Yields (x, y, sample_weight, global_batch_size) for this rank's shard."""
        order = self.sampler.epoch_order(epoch)
        bs = self.sampler.batch_size
        total = self.sampler.steps_per_epoch
        for step in range(start_step, self.steps_per_epoch):
            s = step % total
            idx = order[s * bs : (s + 1) * bs]
            gbs = len(idx)
            lo, hi = rank_bounds(gbs, self.rank, self.size, self.micro_shards)
            idx = idx[lo:hi]
            if self.sampler.shuffle:
                sl: Any = idx
            else:  # contiguous: a view, no copy
                sl = slice(int(idx[0]), int(idx[-1]) + 1) if len(idx) else slice(0, 0)
            yield (
                map_struct(lambda a, sl=sl: a[sl], self.x),
                map_struct(lambda a, sl=sl: a[sl], self.y),
                map_struct(lambda a, sl=sl: a[sl], self.sample_weight),
                gbs,
            )


def check_cardinality(x: Any, y: Any, sample_weight: Any) -> int:
    """Returns the common first-axis length, or raises naming each argument's sizes."""
    sizes: dict[str, set[int]] = {}
    for name, data in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        for a in flatten_struct(data):
            if getattr(a, "ndim", 1) == 0:
                raise ValueError(
                    f"Expected arrays with a batch axis. Received: {name} scalar {a!r}"
                )
            sizes.setdefault(name, set()).add(int(a.shape[0]))
    allsizes = {s for v in sizes.values() for s in v}
    if len(allsizes) > 1:
        detail = ", ".join(f"{k} sizes={sorted(v)}" for k, v in sizes.items())
        raise ValueError(
            "Data cardinality is ambiguous. Make sure all arrays contain the same number of "
            f"samples. Received: {detail}"
        )
    if not allsizes:
        raise ValueError("Expected data to fit/evaluate/predict on. Received: x=None")
    return allsizes.pop()


def unpack_batch(batch: Any) -> tuple[Any, Any, Any]:
    """Splits a generator item into (x, y, sample_weight) as Keras does."""
    if isinstance(batch, tuple):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch
        raise ValueError(
            "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`. "
            f"Received: tuple of length {len(batch)}"
        )
    return batch, None, None


class IterableDataAdapter:
    """Batches from a Python generator/iterator or a PyDataset (already batched).

    In a data-parallel run every rank reads the same batches and keeps its
    contiguous slice of each one. A sequence that implements the sharded-read
    hook reads only that slice instead:

    - `batch_length(index) -> int`: number of samples in global batch `index`;
    - `get_shard(index, lo, hi)`: samples `[lo, hi)` of that batch, in the
      same structure as `__getitem__(index)` (see
      `distkeras.preprocessing.dataset_utils.IndexedBatchDataset`).

    Each batch's dtypes and size are checked (`input_checks.check_batch`;
    text in `x` only with `allow_strings`); NaN/inf in generated batches are
    not looked for (that would be a scan of every batch).
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
    ):
        self.data = data
        self.allow_strings = allow_strings
        self.is_sequence = hasattr(data, "__getitem__") and hasattr(data, "__len__")
        self.steps = steps
        self.rank, self.size = rank, size
        self.shuffle = shuffle
        self.seed = seed
        self.micro_shards: int | None = None
        self._iterator: Iterator | None = None
        if self.is_sequence and steps is None:
            self.steps = len(data)

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

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Any, Any, Any, int]]:
        if self.is_sequence:
            n = len(self.data)
            order = np.arange(n)
            if self.shuffle:
                order = np.random.Generator(np.random.PCG64([self.seed, epoch])).permutation(n)
            steps = self.steps if self.steps is not None else n
            read = self._read_shard if self._sharded_reads() else self.data.__getitem__
            source: Any = (read(int(order[i % n])) for i in range(start_step, steps))
        else:
            if self._iterator is None:
                self._iterator = iter(self.data)
            it = self._iterator
            steps = self.steps

            def gen() -> Iterator:
                i = start_step
                while steps is None or i < steps:
                    try:
                        yield next(it)
                    except StopIteration:
                        return
                    i += 1

            source = gen()
        for item in source:
            shard_gbs = None
            if isinstance(item, _Shard):
                item, shard_gbs = item.batch, item.global_batch_size
            x, y, sw = unpack_batch(item)
            x, y, sw = map_struct(_as_array, x), map_struct(_as_array, y), map_struct(_as_array, sw)
            gbs = check_cardinality(x, y, sw)
            input_checks.check_batch(x, y, sw, self.allow_strings, shard_gbs)
            if shard_gbs is not None:  # already this rank's slice
                gbs = shard_gbs
            elif self.size > 1:
                x, y, sw = (
                    map_struct(
                        lambda a, b=rank_bounds(gbs, self.rank, self.size, self.micro_shards): a[
                            b[0] : b[1]
                        ],
                        d,
                    )
                    for d in (x, y, sw)
                )
            yield x, y, sw, gbs


class _Shard:
    """One rank's slice of a global batch, read through the sharded-read hook."""

    __slots__ = ("batch", "global_batch_size")

    def __init__(self, batch: Any, global_batch_size: int):
        self.batch = batch
        self.global_batch_size = global_batch_size


def is_iterable_data(x: Any) -> bool:
    """True for generators, iterators and PyDataset-like sequences (not arrays)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict)) or hasattr(x, "__array__"):
        return False
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or hasattr(x, "__getitem__")


def train_validation_split(arrays: tuple, validation_split: float) -> tuple[tuple, tuple]:
    """Takes the last `validation_split` fraction of the samples, before shuffling (Keras)."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            "`validation_split` must be a float in (0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    n = check_cardinality(*arrays)
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"Training data contains {n} samples, which is not sufficient to split it into a "
            f"validation and training set as specified by `validation_split={validation_split}`."
        )
    first = tuple(map_struct(lambda a: a[:split_at], t) for t in arrays)
    second = tuple(map_struct(lambda a: a[split_at:], t) for t in arrays)
    return first, second
