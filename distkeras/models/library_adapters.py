"""Adapters for the data of other libraries (torch, tf.data) and the dispatch of every stream.

`stream_adapter` picks the adapter of whatever `x` fit/evaluate/predict got,
recognising torch and TensorFlow objects by their types' modules (see
`data_sources`), without importing either library:

- torch `DataLoader`: its `DistributedSampler` when it has one (each rank
  reads its own samples; `set_epoch` is called every epoch), else every N-th
  batch, the batch order drawn under a seed shared by all ranks;
- torch map-style `Dataset`: batched like arrays (`SampleDatasetAdapter`);
- tf.data-like datasets: `shard(num_workers, index)`;
- Ray Data shards (`ray.train.get_dataset_shard`) and their batches: each
  rank's own rows, not sharded again (`ray_data`);
- PyDatasets, sequences, generators: `IterableDataAdapter`.

In deterministic mode every source is read identically on every rank (its
slices then do not depend on the world size); a `DistributedSampler`, which
gives each rank different samples, is refused there.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distkeras.models import data_sources as ds
from distkeras.models.data_adapter import Sampler, map_struct, rank_bounds
from distkeras.models.ray_data import is_ray_input, ray_data_adapter
from distkeras.models.stream_adapters import (
    IterableDataAdapter,
    RankLocalAdapter,
    is_stream,
    standardize_batch,
)
from distkeras.utils.py_dataset import PyDataset


class SampleDatasetAdapter:
    """A map-style dataset of samples (`ds[i]` is one sample), batched like arrays.

    The batches follow a `Sampler` (seeded permutation per epoch); each rank
    loads only its contiguous slice of every global batch, and samples are
    stacked leaf by leaf (a torch `Dataset` yielding `(x, y)` tuples of tensors).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        size: int = 1,
        steps: int | None = None,
        allow_strings: bool = True,
        class_weight: dict | None = None,
    ):
        self.dataset = dataset
        n = len(dataset)
        if n == 0:
            raise ValueError("Expected at least one sample in `x`, which is empty. Received: x=[]")
        self.sampler = Sampler(n, batch_size, shuffle, seed)
        self.rank, self.size = rank, size
        self.steps = steps
        self.micro_shards: int | None = None
        self.allow_strings = allow_strings
        self.class_weight = class_weight

    @property
    def steps_per_epoch(self) -> int:
        return self.steps if self.steps is not None else self.sampler.steps_per_epoch

    def _load(self, indices: np.ndarray) -> Any:
        if len(indices) == 0:
            return map_struct(lambda a: a[:0], collate([self.dataset[0]]))
        return collate([self.dataset[int(i)] for i in indices])

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[Any, Any, Any, int]]:
        """Yields (x, y, sample_weight, global_batch_size) for this rank's slice."""
        order = self.sampler.epoch_order(epoch)
        bs, total = self.sampler.batch_size, self.sampler.steps_per_epoch
        for step in range(start_step, self.steps_per_epoch):
            idx = order[(step % total) * bs : (step % total + 1) * bs]
            lo, hi = rank_bounds(len(idx), self.rank, self.size, self.micro_shards)
            item = self._load(idx[lo:hi])
            shard_gbs = len(idx) if self.size > 1 else None
            x, y, sw, _ = standardize_batch(item, self.allow_strings, self.class_weight, shard_gbs)
            yield x, y, sw, len(idx)


def collate(samples: list) -> Any:
    """Stacks a list of samples (arrays, tensors, numbers, or tuples/dicts of them)."""
    first = samples[0]
    if isinstance(first, dict):
        return {k: collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (list, tuple)):
        return tuple(collate([s[i] for s in samples]) for i in range(len(first)))
    return np.stack([np.asarray(ds.to_numpy(s)) for s in samples])


# ------------------------------------------------------------------ torch / tf.data
def _torch_data_module() -> Any:
    return sys.modules["torch.utils.data"]


def _is_distributed_sampler(sampler: Any) -> bool:
    return sampler is not None and any(
        c.__name__ == "DistributedSampler" for c in type(sampler).__mro__
    )


def torch_loader_sampler(loader: Any) -> Any:
    """The DistributedSampler driving a DataLoader (its sampler or its batch sampler's), or None."""
    for s in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if _is_distributed_sampler(s):
            return s
        inner = getattr(s, "sampler", None)
        if _is_distributed_sampler(inner):
            return inner
    return None


def _batched(samples: Any, batch_size: int) -> Iterator:
    """Batches of `batch_size` consecutive samples of an iterable (the last may be smaller)."""
    it = iter(samples)
    while True:
        chunk = list(itertools.islice(it, batch_size))
        if not chunk:
            return
        yield collate(chunk)


def _map_style(loader: Any) -> bool:
    """A DataLoader drawing batches of indices from a sampler (not an IterableDataset)."""
    return getattr(loader, "batch_sampler", None) is not None and not (
        ds.is_torch_iterable_dataset(loader.dataset)
    )


class _EpochIterable:
    """Iterable whose n-th iteration is `open_epoch(n)`."""

    def __init__(self, open_epoch: Callable[[int], Iterator]):
        self.open_epoch = open_epoch
        self.epoch = 0

    def __iter__(self) -> Iterator:
        it = self.open_epoch(self.epoch)
        self.epoch += 1
        return it


def _every_nth_loader(loader: Any, rank: int, size: int, seed: int) -> Callable:
    """`open_epoch` reading batches rank, rank + size, ... of a map-style DataLoader.

    The batch order is drawn under a seed shared by all ranks (so they cut the
    same list of batches); only this rank's batches are then loaded, through
    a DataLoader with the original's collate function and workers.
    """
    torch = sys.modules["torch"]
    data = _torch_data_module()

    def open_epoch(epoch: int) -> Iterator:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63))
            order = [list(b) for b in loader.batch_sampler]
        kwargs: dict[str, Any] = {
            "batch_sampler": order[rank::size],
            "num_workers": loader.num_workers,
            "collate_fn": loader.collate_fn,
            "pin_memory": loader.pin_memory,
            "timeout": loader.timeout,
            "worker_init_fn": loader.worker_init_fn,
        }
        if loader.num_workers > 0:
            kwargs["prefetch_factor"] = loader.prefetch_factor
            kwargs["multiprocessing_context"] = loader.multiprocessing_context
        return iter(data.DataLoader(loader.dataset, **kwargs))

    return open_epoch


def torch_loader_adapter(
    loader: Any, comm: Any, steps: int | None, seed: int, allow_strings: bool, deterministic: bool
) -> Any:
    """The adapter of a torch DataLoader for this rank (see the module docstring)."""
    try:
        length: int | None = len(loader)
    except TypeError:  # an IterableDataset without a length
        length = None
    rank, size = comm.rank, comm.size
    sampler = torch_loader_sampler(loader)
    if sampler is not None:
        if deterministic:
            raise ValueError(
                "Deterministic mode needs data every rank can read in the same order; a "
                "DistributedSampler gives each rank its own samples. Pass the DataLoader "
                "without it. Received: a DataLoader with a DistributedSampler"
            )
        if (int(sampler.num_replicas), int(sampler.rank)) != (size, rank):
            raise ValueError(
                "The DataLoader's DistributedSampler must match the job: "
                f"num_replicas={size}, rank={rank}. Received: "
                f"num_replicas={sampler.num_replicas}, rank={sampler.rank}"
            )

        def open_epoch(epoch: int) -> Iterator:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            return iter(loader)

        return RankLocalAdapter(open_epoch, comm, steps, length, allow_strings)
    if size == 1 or deterministic:
        source: Any = loader
        if size > 1 and _map_style(loader):  # every rank reads every batch, in one order
            source = _EpochIterable(_every_nth_loader(loader, 0, 1, seed))
        adapter = IterableDataAdapter(
            source, steps, rank, size, allow_strings=allow_strings, reiterable=True
        )
        if steps is None:
            adapter.steps = length
        return adapter
    num = None if length is None else math.ceil(length / size)
    if _map_style(loader):
        open_epoch = _every_nth_loader(loader, rank, size, seed)
    else:

        def open_epoch(epoch: int) -> Iterator:
            return itertools.islice(iter(loader), rank, None, size)

    return RankLocalAdapter(open_epoch, comm, steps, num, allow_strings)


def tf_dataset_adapter(
    dataset: Any,
    comm: Any,
    steps: int | None,
    allow_strings: bool,
    class_weight: dict | None,
    deterministic: bool,
) -> Any:
    """The adapter of a tf.data-like dataset: `shard(size, rank)` in a data-parallel run.

    Each rank keeps elements (batches) rank, rank + size, ... of the dataset,
    as `tf.distribute`'s DATA auto-sharding does; a dataset whose options set
    `AutoShardPolicy.OFF` is taken as this rank's share already. An unseeded
    `shuffle()` before the batches shuffles differently on each rank, so seed
    it (`shuffle(n, seed=...)`), as `tf.distribute` asks too.
    """
    if steps is None and ds.raw_cardinality(dataset) == ds.INFINITE_CARDINALITY:
        raise ValueError(
            "An infinite tf.data.Dataset (e.g. after `.repeat()`) needs `steps_per_epoch` "
            "(or `steps`). Received: steps=None"
        )
    presharded = comm.size > 1 and ds.auto_shard_off(dataset)
    if presharded and deterministic:
        raise ValueError(
            "Deterministic mode needs data every rank can read in the same order; a dataset "
            "with AutoShardPolicy.OFF is each rank's own share. Leave auto-sharding on. "
            "Received: a tf.data.Dataset with auto_shard_policy=OFF"
        )
    if comm.size == 1 or deterministic:

        class _Batches:
            def __iter__(self) -> Iterator:
                return ds.numpy_batches(dataset)

        adapter = IterableDataAdapter(
            _Batches(),
            steps,
            comm.rank,
            comm.size,
            allow_strings=allow_strings,
            class_weight=class_weight,
            reiterable=True,
        )
        if steps is None:
            adapter.steps = ds.cardinality(dataset)
        return adapter
    shard = dataset if presharded else dataset.shard(comm.size, comm.rank)
    return RankLocalAdapter(
        lambda epoch: ds.numpy_batches(shard),
        comm,
        steps,
        ds.cardinality(shard),
        allow_strings,
        class_weight,
    )


def _refuse_y(x_kind: str, y: Any, sample_weight: Any) -> None:
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(
                f"When providing `x` as a {x_kind}, `{name}` should not be passed: the "
                f"{x_kind} yields `(x, y[, sample_weight])` batches. "
                f"Received: {name} of type {type(value).__name__}"
            )


def stream_adapter(
    x: Any,
    y: Any,
    sample_weight: Any,
    *,
    batch_size: int | None,
    shuffle: bool,
    steps: int | None,
    class_weight: dict | None,
    seed: int,
    comm: Any,
    allow_strings: bool,
    micro_shards: int | None,
) -> Any:
    """The adapter of a batch stream or sample dataset `x`, or None for arrays.

    Recognises (without importing their libraries) Ray Data shards, torch
    DataLoaders and Datasets and tf.data datasets, then PyDatasets, sequences
    and generators.
    """
    deterministic = micro_shards is not None
    rank, size = comm.rank, comm.size
    if is_ray_input(x):
        _refuse_y("Ray Data shard", y, sample_weight)
        return ray_data_adapter(
            x, comm, batch_size, steps, allow_strings, class_weight, deterministic
        )
    if ds.is_torch_dataloader(x):
        _refuse_y("torch DataLoader", y, sample_weight)
        if class_weight is not None:
            raise ValueError(
                "Argument `class_weight` is not supported for torch DataLoader inputs: make "
                "the dataset return (x, y, sample_weight). "
                f"Received: class_weight={class_weight}"
            )
        adapter = torch_loader_adapter(x, comm, steps, seed, allow_strings, deterministic)
    elif ds.is_torch_dataset(x):
        _refuse_y("torch Dataset", y, sample_weight)
        adapter = SampleDatasetAdapter(
            x, batch_size or 32, shuffle, seed, rank, size, steps, allow_strings, class_weight
        )
    elif ds.is_tf_dataset(x):
        _refuse_y("tf.data.Dataset", y, sample_weight)
        adapter = tf_dataset_adapter(x, comm, steps, allow_strings, class_weight, deterministic)
    elif ds.is_torch_iterable_dataset(x):  # a stream of samples: batched here
        _refuse_y("torch IterableDataset", y, sample_weight)
        adapter = IterableDataAdapter(
            _EpochIterable(lambda epoch: _batched(x, batch_size or 32)),
            steps,
            rank,
            size,
            allow_strings=allow_strings,
            class_weight=class_weight,
            reiterable=True,
        )
    elif is_stream(x):
        sequence = hasattr(x, "__getitem__") and hasattr(x, "__len__")
        kind = "PyDataset" if isinstance(x, PyDataset) else "generator"
        _refuse_y(kind, y, sample_weight)
        if class_weight is not None and not sequence:
            raise ValueError(
                "Argument `class_weight` is not supported for Python generator inputs. "
                f"Received: class_weight={class_weight}"
            )
        reshuffle = getattr(x, "shuffle_each_epoch", None)
        if reshuffle is not None:  # a loader's stand-in for tf.data: fit's `shuffle` is ignored
            shuffle = reshuffle
        adapter = IterableDataAdapter(
            x, steps, rank, size, shuffle, seed, allow_strings, class_weight
        )
    else:
        return None
    if hasattr(adapter, "micro_shards"):
        adapter.micro_shards = micro_shards
    return adapter
