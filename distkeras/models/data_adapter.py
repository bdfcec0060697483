"""Turns in-memory arrays into per-rank batches (streams: see `stream_adapters`).

Arrays go through a `Sampler`: a seeded permutation per epoch that does not
depend on the world size, cut into global batches; rank r takes its
contiguous slice of every global batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from distkeras.models import data_sources, input_checks
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
    return data_sources.to_numpy(a)


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
    """Splits a generator item, a tuple or a list, into (x, y, sample_weight) as Keras does."""
    if isinstance(batch, list):
        batch = tuple(batch)
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


def is_iterable_data(x: Any) -> bool:
    """True for batch streams and sample datasets: generators, iterators, PyDatasets,
    torch DataLoaders/Datasets, tf.data datasets, Ray Data shards (not arrays, not pandas)."""
    from distkeras.models import ray_data, stream_adapters  # noqa: PLC0415 - built on this one

    return (
        stream_adapters.is_stream(x)
        or ray_data.is_ray_input(x)
        or data_sources.is_torch_dataloader(x)
        or data_sources.is_torch_dataset(x)
        or data_sources.is_tf_dataset(x)
    )


def train_validation_split(arrays: tuple, validation_split: float) -> tuple[tuple, tuple]:
    """Takes the last `validation_split` fraction of the samples, before shuffling (Keras)."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            "`validation_split` must be a float in (0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    arrays = tuple(map_struct(_as_array, t) for t in arrays)
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
