"""Ray Train for distkeras: `DistkerasTrainer`, a `DataParallelTrainer` with a distkeras backend.

```python
import ray
from ray.train import FailureConfig, RunConfig, ScalingConfig
from distkeras.distributed.ray.train import (
    DistkerasTrainer, ReportCallback, dataset_batches, load_checkpoint,
)

def train_loop(config):
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(config["lr"]), loss="mse")
    shard = ray.train.get_dataset_shard("train")      # this worker's rows
    model.fit(
        dataset_batches(shard, "x", "y", batch_size=64),  # or fit(x, y, batch_size=128)
        epochs=3,
        callbacks=[ReportCallback(checkpoint=True, save_freq=100)],
    )

trainer = DistkerasTrainer(
    train_loop,
    train_loop_config={"lr": 1e-3},
    scaling_config=ScalingConfig(num_workers=2),
    run_config=RunConfig(storage_path="/shared/runs", failure_config=FailureConfig(max_failures=2)),
    datasets={"train": ray.data.read_parquet("/shared/train.parquet")},
)
result = trainer.fit()   # result.metrics: the last report; result.checkpoint: the last checkpoint
model, epochs = load_checkpoint(result.checkpoint)
```

The backend gives Ray Train's worker group distkeras's Ray communicator
(no PyTorch): before the loop starts, every worker gets its rank, the world
size, its local rank and the name of a rendezvous actor unique to this
training run, so `fit` inside the loop is data-parallel as under
`distkeras.distributed.ray.run` (gradients all-reduced, logs reduced exactly).

Data: arrays (and every other input `fit` takes) are one global batch per
step, sharded by rank. A Ray Data shard (`ray.train.get_dataset_shard`, its
`iter_batches(...)`, or `dataset_batches`) is already this worker's share:
`fit` reads it as it is, one batch per worker per global step
(see `distkeras.models.ray_data`). Ray Train's default `DataConfig` splits a
dataset into equal shares (`streaming_split(n, equal=True)`: up to n - 1
leftover rows are dropped), so the workers' epochs are equally long; with
unequal shares, a worker that ran out contributes empty batches until all
have, so no step waits forever and no row is read twice.

`ReportCallback` hands each epoch's logs (and with `checkpoint=True` a
checkpoint of the whole training state, written once by rank 0, every epoch
and every `save_freq` steps) to `ray.train.report`, which is what Ray Train's
results, Tune and the dashboard see. `fit` restores from
`ray.train.get_checkpoint()` through it, mid-epoch included, so a worker lost
under `FailureConfig(max_failures=k)` costs a restart, not a different result.

Which to use:

- `distkeras.distributed.ray.run(train_fn, num_workers)`: the light driver.
  Actors in a placement group, `BackupAndRestore` in a shared folder for
  restarts, `train_fn`'s return value back. No Ray Train, Tune or Ray Data
  machinery; the least overhead per run.
- `DistkerasTrainer`: the same training inside Ray Train. Use it to get Ray
  Train's `Result` (metrics, checkpoints in `RunConfig.storage_path`,
  `Result.from_path`), Ray Data ingest, Tune sweeps, and the dashboard.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import ray
from ray.train import Checkpoint
from ray.train.backend import Backend, BackendConfig
from ray.train.v2._internal.constants import is_v2_enabled

if is_v2_enabled():  # Ray Train V2 (the default since Ray 2.5x): ray.train.* are V2 classes
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
else:
    from ray.train.data_parallel_trainer import DataParallelTrainer

from distkeras.callbacks.backup_and_restore import BackupAndRestore
from distkeras.callbacks.callback import Callback
from distkeras.distributed.ray.communicator import (
    GROUP_ENV,
    LOCAL_RANK_ENV,
    LOCAL_SIZE_ENV,
    NAMESPACE_ENV,
    RANK_ENV,
    SIZE_ENV,
)
from distkeras.models.ray_data import RayBatches
from distkeras.saving.checkpoint_manager import CheckpointManager

_MODEL = "model.keras"  # the model, as `model.save` writes it
_STATE = "state"  # the training state, as `BackupAndRestore` writes it
_INFO = "checkpoint_info.json"  # {"epoch", "step", "global_step", "fit"}: the cursor
# Per worker process: the checkpoint its run (re)started from, and how many checkpointing
# fits the loop has begun. Ray Train updates `get_checkpoint()` on rank 0 after each of
# its reports, so every rank restores from the one the attempt started with.
_ATTEMPT: dict = {}
_ENV_KEYS = (GROUP_ENV, NAMESPACE_ENV, RANK_ENV, SIZE_ENV, LOCAL_RANK_ENV, LOCAL_SIZE_ENV)


@dataclass
class DistkerasConfig(BackendConfig):
    """How the workers' communicator is set up.

    Args:
        deterministic: Reduce gradients in a fixed order (bitwise equal to one process).
        timeout: Seconds a collective may wait (None: distkeras's default).
    """

    deterministic: bool = False
    timeout: float | None = None

    @property
    def backend_cls(self) -> type:
        return _DistkerasBackend


def _set_up_worker(env: dict[str, str], deterministic: bool, timeout: float | None) -> None:
    from distkeras import distributed  # noqa: PLC0415

    distributed.shutdown()
    os.environ.update(env)
    distributed.initialize("ray", deterministic=deterministic, timeout=timeout, install_hook=False)


def _tear_down_worker() -> None:
    from distkeras import distributed  # noqa: PLC0415

    distributed.shutdown()
    for key in _ENV_KEYS:
        os.environ.pop(key, None)


class _DistkerasBackend(Backend):
    """Sets up distkeras's Ray communicator in Ray Train's worker group."""

    share_cuda_visible_devices = False

    def on_start(self, worker_group: Any, backend_config: DistkerasConfig) -> None:
        size = len(worker_group)
        workers = (
            worker_group.get_workers()
            if hasattr(worker_group, "get_workers")
            else worker_group.workers
        )
        nodes = [w.metadata.node_id for w in workers]
        group = f"distkeras-train-{uuid.uuid4().hex[:12]}"
        namespace = ray.get_runtime_context().namespace or ""
        refs = []
        for rank in range(size):
            same = [r for r in range(size) if nodes[r] == nodes[rank]]
            env = {
                GROUP_ENV: group,
                NAMESPACE_ENV: namespace,
                RANK_ENV: str(rank),
                SIZE_ENV: str(size),
                LOCAL_RANK_ENV: str(same.index(rank)),
                LOCAL_SIZE_ENV: str(len(same)),
            }
            refs.append(
                worker_group.execute_single_async(
                    rank,
                    _set_up_worker,
                    env,
                    backend_config.deterministic,
                    backend_config.timeout,
                )
            )
        ray.get(refs)  # every rank joins the rendezvous together

    def on_shutdown(self, worker_group: Any, backend_config: DistkerasConfig) -> None:
        worker_group.execute(_tear_down_worker)


class DistkerasTrainer(DataParallelTrainer):
    """A Ray Train trainer whose workers train distkeras models data-parallel.

    Args:
        train_loop_per_worker: The training function, `fn()` or `fn(config)`.
        train_loop_config: The `config` passed to it (Tune's `param_space` fills it).
        distkeras_config: A `DistkerasConfig` (default: `DistkerasConfig()`).
        scaling_config: Ray Train's `ScalingConfig` (number of workers, resources).
        run_config: Ray Train's `RunConfig` (name, storage, `FailureConfig`, ...).
        datasets: Ray Data datasets, {name: Dataset}. In the loop,
            `ray.train.get_dataset_shard(name)` is this worker's share: pass it
            to `fit` as it is, or through `dataset_batches` (see there).
        dataset_config: Ray Train's `DataConfig` (default: every dataset split
            into equal shares between the workers).
        metadata: Stored with every checkpoint.
        resume_from_checkpoint: A checkpoint `ray.train.get_checkpoint()` returns first.
    """

    def __init__(
        self,
        train_loop_per_worker: Any,
        *,
        train_loop_config: dict | None = None,
        distkeras_config: DistkerasConfig | None = None,
        scaling_config: Any = None,
        run_config: Any = None,
        datasets: dict | None = None,
        dataset_config: Any = None,
        metadata: dict | None = None,
        resume_from_checkpoint: Checkpoint | None = None,
    ):
        if distkeras_config is not None and not isinstance(distkeras_config, DistkerasConfig):
            raise ValueError(
                "distkeras_config must be a DistkerasConfig. "
                f"Received: distkeras_config={distkeras_config!r}"
            )
        super().__init__(
            train_loop_per_worker,
            train_loop_config=train_loop_config,
            backend_config=distkeras_config or DistkerasConfig(),
            scaling_config=scaling_config,
            dataset_config=dataset_config,
            run_config=run_config,
            datasets=datasets,
            metadata=metadata,
            resume_from_checkpoint=resume_from_checkpoint,
        )


class ReportCallback(BackupAndRestore):
    """Reports training to `ray.train.report`: each epoch's logs, and checkpoints.

    Every rank reports (Ray Train expects one report per worker per round);
    the epoch logs are already reduced across ranks by `fit`. Each report
    carries `epoch` (1-based) and `step` (batches done in that epoch).

    With `checkpoint=True` it is `BackupAndRestore` on Ray Train's storage:

    - each epoch's report (and, with an integer `save_freq`, a report every
      `save_freq` global steps in between) carries a `ray.train.Checkpoint`
      written once, by rank 0, holding the whole training state as
      `BackupAndRestore` captures it (weights, optimizer slots and
      iterations, epoch and step, the data position, running metrics, every
      random stream, the other callbacks' states) and the model as
      `model.save` writes it (`load_checkpoint` reads it back);
    - when `fit` starts in a run that has a checkpoint
      (`ray.train.get_checkpoint()`: a restart after a lost worker under
      `FailureConfig(max_failures=k)`, or `resume_from_checkpoint`), it
      restores that state and continues from the same step of the same
      epoch, so the run ends bitwise where an uninterrupted one would.
      The loop needs no resume code of its own: build, compile, `fit`.

    Give `fit` either this or a `BackupAndRestore`, not both (the first of
    them restores). Arrays, PyDatasets and sequences resume at the exact
    sample; a Ray Data shard resumes by skipping the batches already trained
    on in that epoch (the same rows where Ray's split of the dataset is
    reproducible; on one node it was, in a check with `from_items`).

    Args:
        metrics: Log keys to report (None: all), or a dict {reported name: log key}.
        checkpoint: Report checkpoints and resume from `ray.train.get_checkpoint()`.
        save_freq: 'epoch', or an integer: also checkpoint every `save_freq`
            global steps (mid-epoch); needs `checkpoint=True`.
    """

    def __init__(
        self,
        metrics: list | dict | str | None = None,
        checkpoint: bool = False,
        save_freq: Any = "epoch",
    ):
        Callback.__init__(self)
        if metrics is not None and not isinstance(metrics, (list, tuple, dict, str)):
            raise ValueError(
                f"metrics must be None, a list of keys or a dict. Received: metrics={metrics!r}"
            )
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument `save_freq`: expected 'epoch' or a positive "
                f"integer. Received: save_freq={save_freq!r}"
            )
        if save_freq != "epoch" and not checkpoint:
            raise ValueError(
                "An integer `save_freq` saves checkpoints: pass checkpoint=True too. "
                f"Received: save_freq={save_freq!r}, checkpoint={checkpoint!r}"
            )
        self.metrics = [metrics] if isinstance(metrics, str) else metrics
        self.checkpoint = bool(checkpoint)
        self.save_freq = save_freq
        self.asynchronous = False  # Ray Train copies the folder during `report`
        self.delete_checkpoint = False  # Ray Train keeps (and prunes) its checkpoints
        self._writer = None
        self._pending = None
        self._lock = None
        self.restored_from: dict | None = None  # the cursor `fit` resumed from, if any
        self._fit_index = 0

    @property
    def manager(self) -> None:
        # `fit` treats a callback with `manager` and `load` as its backup (restores
        # through it, runs it last). Without checkpoints this one is not a backup:
        # hasattr() is then False, and a BackupAndRestore next to it keeps that role.
        # Its checkpoints live in Ray Train's storage: there is no folder to manage.
        if not self.checkpoint:
            raise AttributeError("manager")

    def decides_per_batch(self) -> bool:
        return False

    def _select(self, logs: dict, partial: bool = False) -> dict:
        """The metrics to report; `partial`: skip keys the logs lack (mid-epoch: no val_*)."""
        if self.metrics is None:
            return {k: float(v) for k, v in logs.items() if _is_scalar(v)}
        pairs = (
            self.metrics.items()
            if isinstance(self.metrics, dict)
            else ((k, k) for k in self.metrics)
        )
        return {name: float(logs[key]) for name, key in pairs if not partial or key in logs}

    # BackupAndRestore's hooks, on Ray Train's checkpoints.
    def load(self) -> tuple[str, dict, dict] | None:
        """The training state to resume this `fit` from, as (path, header, arrays), or None.

        It comes from the checkpoint this attempt of the run started with
        (`ray.train.get_checkpoint()` when the loop began) and only if that
        checkpoint was written by the same checkpointing `fit` of the loop (the
        first, the second, ...): a loop of several fits restarts the earlier
        ones afresh (they run again to the same result) and resumes the one
        that was running.
        """
        import ray.train  # noqa: PLC0415

        self.restored_from = None
        if not self.checkpoint:
            return None
        context = _attempt_key()
        old = _ATTEMPT.get("context")
        if old is None or old[0] != context[0] or old[1] is not context[1]:
            _ATTEMPT.clear()
            _ATTEMPT.update(context=context, checkpoint=ray.train.get_checkpoint(), fits=0)
        self._fit_index = _ATTEMPT["fits"]
        _ATTEMPT["fits"] += 1
        ckpt = _ATTEMPT["checkpoint"]
        if ckpt is None:
            return None
        with ckpt.as_directory() as folder:
            info = _read_info(folder)
            if info is None or info.get("fit", 0) != self._fit_index:
                return None
            found = CheckpointManager(os.path.join(folder, _STATE)).restore()
        if found is not None:
            self.restored_from = info
        return found

    def _take_lock(self) -> None:  # Ray Train owns its storage: no folder lock
        return

    def _report(self, metrics: dict, epoch: int, next_step: int) -> None:
        """One report; with checkpoints, rank 0's carries the state at cursor (epoch, next_step)."""
        import ray.train  # noqa: PLC0415

        if not self.checkpoint:
            ray.train.report(metrics)
            return
        arrays, meta = self.model._capture_training_state(epoch, next_step)  # collective
        comm = self.communicator
        rank = comm.rank if comm is not None else 0
        folder = tempfile.mkdtemp(prefix="distkeras-ckpt-") if rank == 0 else None
        if comm is not None and comm.size > 1:
            folder = comm.broadcast_object(folder, root=0)
        try:
            if rank == 0:
                number = int(meta["global_step"])
                CheckpointManager(os.path.join(folder, _STATE), keep=1).save(number, arrays, meta)
                info = {
                    "epoch": epoch,
                    "step": next_step,
                    "global_step": number,
                    "fit": self._fit_index,
                }
                with open(os.path.join(folder, _INFO), "w") as f:
                    json.dump(info, f)
            self.model.save(os.path.join(folder, _MODEL))  # collective: rank 0 writes
            if rank == 0:
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(folder))
            else:
                ray.train.report(metrics)
        finally:  # Ray Train has copied the folder into the run's storage
            if rank == 0:
                shutil.rmtree(folder, ignore_errors=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch" or self.model._global_step % self.save_freq:
            return
        steps = (self.params or {}).get("steps")
        if steps is not None and batch + 1 >= steps:
            return  # the epoch's own report (with a checkpoint) follows at once
        epoch, _ = self.model._fit_cursor
        metrics = self._select(logs or {}, partial=True)
        metrics.update(epoch=epoch + 1, step=batch + 1)
        self._report(metrics, epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = self._select(logs or {})
        _, last = getattr(self.model, "_fit_cursor", (epoch, -1))
        metrics.update(epoch=epoch + 1, step=last + 1)
        self._report(metrics, epoch + 1, 0)

    def on_train_end(self, logs: dict | None = None) -> None:
        return  # nothing in flight, no folder of its own


def _attempt_key() -> Any:
    """What tells this attempt of the run from another in the same process (if ever)."""
    import ray.train  # noqa: PLC0415

    try:  # the worker's train context, set anew for every attempt (Ray Train V2)
        from ray.train.v2._internal.execution.context import get_train_context  # noqa: PLC0415

        inner = get_train_context()
    except (ImportError, RuntimeError, AssertionError):
        inner = None
    return (ray.train.get_context().get_experiment_name(), inner)


def _read_info(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, _INFO)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _is_scalar(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return getattr(v, "ndim", 0) == 0


def load_checkpoint(
    checkpoint: Checkpoint | None, custom_objects: dict | None = None
) -> tuple[Any, int]:
    """The model of a `ReportCallback` checkpoint (`result.checkpoint`, ...).

    For a model to use after training (predict, evaluate, save elsewhere). A
    loop that resumes needs none of this: `ReportCallback(checkpoint=True)`
    restores the full training state inside `fit`.

    Returns:
        (model, epochs done): the compiled model with its optimizer state as
        of that report, and the number of epochs completed before it (the
        `initial_epoch` of a plain `fit` that goes on from there);
        `(None, 0)` without a checkpoint.
    """
    from distkeras.models import load_model  # noqa: PLC0415

    if checkpoint is None:
        return None, 0
    with checkpoint.as_directory() as folder:
        model = load_model(os.path.join(folder, _MODEL), custom_objects=custom_objects)
        info = _read_info(folder)
    if info is None or not isinstance(info.get("epoch"), int):
        raise ValueError(
            f"The checkpoint has no readable {_INFO}: it was not written by ReportCallback. "
            f"Received: checkpoint={checkpoint!r}"
        )
    return model, int(info["epoch"])


def dataset_batches(
    shard: Any,
    feature_columns: str | list[str] = "x",
    label_columns: str | list[str] | None = "y",
    *,
    sample_weight_column: str | None = None,
    batch_size: int = 32,
    drop_last: bool = False,
    local_shuffle_buffer_size: int | None = None,
    local_shuffle_seed: int | None = None,
    prefetch_batches: int = 1,
) -> RayBatches:
    """A worker's Ray Data shard as `fit` input, with named feature and label columns.

    The shape of Ray's own `DataIterator.to_tf(feature_columns, label_columns,
    batch_size)`: `batch_size` is the rows per batch **on this worker** (a
    global step trains on one batch of every worker). `fit` reads the shard as
    it is (Ray Data already split the dataset between the workers).

    ```python
    def train_loop(config):
        shard = ray.train.get_dataset_shard("train")
        batches = dataset_batches(shard, ["image", "meta"], "label", batch_size=64)
        model.fit(batches, epochs=3, callbacks=[ReportCallback(checkpoint=True)])
    ```

    Args:
        shard: `ray.train.get_dataset_shard(name)` (a Ray `DataIterator`).
        feature_columns: The column of `x`, or a list of columns: `x` is then
            a dict {column: array} (a model with inputs of those names).
        label_columns: The column(s) of `y` the same way, or None (no `y`).
        sample_weight_column: A column of per-sample weights, or None.
        batch_size: Rows per batch on this worker.
        drop_last: Drop this worker's last, smaller batch of each epoch.
        local_shuffle_buffer_size: Rows in Ray's local shuffle buffer (None: no shuffle).
        local_shuffle_seed: Seed of that shuffle.
        prefetch_batches: Batches Ray fetches ahead.

    Returns:
        The batches; pass them to `fit`/`evaluate` as `x` (no `y`).
    """
    return RayBatches(
        shard,
        feature_columns,
        label_columns,
        sample_weight_column=sample_weight_column,
        batch_size=batch_size,
        drop_last=drop_last,
        local_shuffle_buffer_size=local_shuffle_buffer_size,
        local_shuffle_seed=local_shuffle_seed,
        prefetch_batches=prefetch_batches,
    )
