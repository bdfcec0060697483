"""Ray Data as `fit` input: a worker's shard, read as that worker's own batches.

Under Ray Train, `ray.train.get_dataset_shard("train")` gives each worker a
`DataIterator` over its share of the rows (Ray Data's `streaming_split`), so
`fit` must not shard again: each rank reads its own batches and a global step
is one batch per rank, kept in lockstep by `RankLocalAdapter` (a rank whose
share ran out contributes an empty batch: no sample is dropped, none is read
twice in one global step, no rank waits forever).

Three inputs are recognised (by the module their type comes from; Ray is never
imported here):

- a `DataIterator` (a shard): read with `iter_batches`, each worker taking
  its share of `fit`'s global `batch_size` (32 by default), as with arrays;
- `shard.iter_batches(batch_size=b)`: the user's iterable, `b` rows per
  worker and step, read afresh each epoch;
- `RayBatches` (what `distkeras.distributed.ray.train.dataset_batches`
  returns): the shard with named feature/label columns and a per-worker batch
  size, as Ray's own `DataIterator.to_tf`.

A batch is a dict of columns. Unless `RayBatches` names them, the columns
`"x"`, `"y"` and (optional) `"sample_weight"` are `fit`'s `x`, `y` and
`sample_weight`; other columns (ids, metadata) are ignored. A whole Ray
`Dataset` is read in full by each worker, so it is refused in a run of more
than one rank. Deterministic mode, which reads every source identically on
every rank, refuses a shard (each rank holds other rows). `fit`'s `shuffle`
does not apply: shuffle with Ray (`Dataset.random_shuffle()`, or
`local_shuffle_buffer_size` in `iter_batches`/`dataset_batches`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from distkeras.models import data_sources as ds
from distkeras.models.data_adapter import shard_bounds
from distkeras.models.stream_adapters import RankLocalAdapter

_CONVENTION = ("x", "y", "sample_weight")


def is_ray_data(x: Any) -> bool:
    """A Ray Data `DataIterator` (a worker's shard) or `Dataset`."""
    return ds._from(x, "ray.data") and hasattr(x, "iter_batches")


def is_ray_dataset(x: Any) -> bool:
    """A whole Ray `Dataset` (not a worker's `DataIterator`)."""
    return is_ray_data(x) and any(
        cls in ("Dataset", "MaterializedDataset") for _, cls in ds._type_modules(x)
    )


def is_ray_batches(x: Any) -> bool:
    """An iterable of batches from Ray Data (`iter_batches(...)`'s result), or `RayBatches`."""
    if isinstance(x, RayBatches):
        return True
    return ds._from(x, "ray.data") and hasattr(x, "__iter__") and not hasattr(x, "iter_batches")


def is_ray_input(x: Any) -> bool:
    """Any Ray Data input `fit` reads rank-locally (see the module docstring)."""
    return is_ray_data(x) or is_ray_batches(x)


def _as_columns(batch: Any) -> dict:
    """A Ray batch (dict of arrays, pandas DataFrame or pyarrow Table) as {column: array}."""
    if isinstance(batch, dict):
        return batch
    if ds.is_pandas(batch):
        return {c: batch[c].to_numpy() for c in batch.columns}
    if hasattr(batch, "column_names") and hasattr(batch, "column"):  # a pyarrow Table
        return {c: batch.column(c).to_numpy() for c in batch.column_names}
    raise ValueError(
        "A Ray Data batch must be a dict of columns, a pandas DataFrame or a pyarrow "
        f"Table. Received: a batch of type {type(batch).__name__}"
    )


def _pick(columns: dict, spec: Any, what: str) -> Any:
    """The column `spec` names (a str), or {name: column} for a list of names."""
    names = [spec] if isinstance(spec, str) else list(spec)
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(
            f"The Ray Data batch has no column {missing[0]!r} (asked for by `{what}`); its "
            f"columns are {sorted(columns)}. Received: {what}={spec!r}"
        )
    if isinstance(spec, str):
        return columns[spec]
    return {n: columns[n] for n in names}


def convention_batch(batch: Any) -> tuple:
    """`(x, y, sample_weight)` of a batch by the column names 'x', 'y', 'sample_weight'.

    A batch that already is a tuple `(x, y[, sample_weight])` (from a user's
    `map_batches` or Ray's torch/tf iterators) is passed on as it is.
    """
    if isinstance(batch, (tuple, list)):
        return tuple(batch)
    columns = _as_columns(batch)
    if "x" not in columns:
        raise ValueError(
            "A Ray Data batch given to fit is read by its column names: 'x', 'y' and "
            "optionally 'sample_weight'. Name the columns so, or name yours with "
            "`distkeras.distributed.ray.train.dataset_batches(shard, feature_columns=..., "
            f"label_columns=...)`. Received: columns={sorted(columns)}"
        )
    return tuple(columns.get(k) for k in _CONVENTION)


class RayBatches:
    """A Ray Data shard read as `(x, y[, sample_weight])` batches of named columns.

    Built by `distkeras.distributed.ray.train.dataset_batches`; `fit` reads it
    as this worker's own batches (no further sharding). Iterating it directly
    gives one pass over the shard.

    Args:
        shard: A Ray `DataIterator` (`ray.train.get_dataset_shard(name)`).
        feature_columns: The column giving `x` (a str), or a list of columns
            giving `x` as a dict {column: array} (a model with named inputs).
        label_columns: The column(s) giving `y` the same way, or None.
        sample_weight_column: The column of per-sample weights, or None.
        batch_size: Rows per batch on this worker (Ray's `iter_batches`).
        drop_last: Drop this worker's last, smaller batch of each epoch.
        local_shuffle_buffer_size: Rows of Ray's local shuffle buffer, or None.
        local_shuffle_seed: Seed of Ray's local shuffle.
        prefetch_batches: Batches Ray prefetches.
    """

    def __init__(
        self,
        shard: Any,
        feature_columns: str | list[str] = "x",
        label_columns: str | list[str] | None = "y",
        sample_weight_column: str | None = None,
        batch_size: int = 32,
        drop_last: bool = False,
        local_shuffle_buffer_size: int | None = None,
        local_shuffle_seed: int | None = None,
        prefetch_batches: int = 1,
    ):
        if not is_ray_data(shard):
            raise ValueError(
                "shard must be a Ray Data DataIterator (ray.train.get_dataset_shard(name)). "
                f"Received: shard of type {type(shard).__name__}"
            )
        for name, value in (("feature_columns", feature_columns), ("label_columns", label_columns)):
            if value is None and name == "label_columns":
                continue
            ok = isinstance(value, str) or (
                isinstance(value, (list, tuple))
                and value
                and all(isinstance(c, str) for c in value)
            )
            if not ok:
                raise ValueError(
                    f"{name} must be a column name or a non-empty list of them. "
                    f"Received: {name}={value!r}"
                )
        if sample_weight_column is not None and not isinstance(sample_weight_column, str):
            raise ValueError(
                "sample_weight_column must be a column name or None. "
                f"Received: sample_weight_column={sample_weight_column!r}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
            )
        self.shard = shard
        self.feature_columns = feature_columns
        self.label_columns = label_columns
        self.sample_weight_column = sample_weight_column
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.local_shuffle_buffer_size = local_shuffle_buffer_size
        self.local_shuffle_seed = local_shuffle_seed
        self.prefetch_batches = prefetch_batches

    def convert(self, batch: Any) -> tuple:
        """`(x, y, sample_weight)` of one Ray batch."""
        columns = _as_columns(batch)
        x = _pick(columns, self.feature_columns, "feature_columns")
        y = (
            None
            if self.label_columns is None
            else _pick(columns, self.label_columns, "label_columns")
        )
        sw = None
        if self.sample_weight_column is not None:
            sw = _pick(columns, self.sample_weight_column, "sample_weight_column")
        return x, y, sw

    def epoch(self, epoch: int = 0) -> Iterator[tuple]:
        """One pass over the shard (Ray starts a new epoch of its split)."""
        batches = self.shard.iter_batches(
            batch_size=self.batch_size,
            batch_format="numpy",
            drop_last=self.drop_last,
            local_shuffle_buffer_size=self.local_shuffle_buffer_size,
            local_shuffle_seed=self.local_shuffle_seed,
            prefetch_batches=self.prefetch_batches,
        )
        return (self.convert(b) for b in batches)

    def __iter__(self) -> Iterator[tuple]:
        return self.epoch(0)


def ray_data_adapter(
    x: Any,
    comm: Any,
    batch_size: int | None,
    steps: int | None,
    allow_strings: bool,
    class_weight: dict | None,
    deterministic: bool,
) -> RankLocalAdapter:
    """The adapter of a Ray Data input: this rank's own batches, in lockstep with the others."""
    rank, size = comm.rank, comm.size
    if size > 1 and deterministic:
        raise ValueError(
            "Deterministic mode needs data every rank can read in the same order; a Ray "
            "Data shard gives each rank its own rows. Train with deterministic=False, or "
            f"pass arrays. Received: x of type {type(x).__name__}"
        )
    if size > 1 and is_ray_dataset(x):
        raise ValueError(
            "A whole Ray Dataset would be read in full by every worker. Pass each worker's "
            'shard: ray.train.get_dataset_shard("train") under DistkerasTrainer, or one '
            f"split of dataset.streaming_split({size}, equal=True). "
            f"Received: x of type {type(x).__name__}"
        )
    if isinstance(x, RayBatches):
        open_epoch = x.epoch
    elif is_ray_data(x):
        global_bs = batch_size or 32
        lo, hi = shard_bounds(global_bs, rank, size)
        if global_bs < size:  # the same answer on every rank: all raise together
            raise ValueError(
                f"batch_size must give every one of the {size} workers at least one row of a "
                f"Ray Data shard. Received: batch_size={global_bs}"
            )

        def open_epoch(epoch: int) -> Iterator:
            batches = x.iter_batches(batch_size=hi - lo, batch_format="numpy")
            return (convention_batch(b) for b in batches)

    else:

        def open_epoch(epoch: int) -> Iterator:
            return (convention_batch(b) for b in x)

    return RankLocalAdapter(open_epoch, comm, steps, None, allow_strings, class_weight)
