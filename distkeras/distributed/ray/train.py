"""Ray Train for distkeras: `DistkerasTrainer`, a `DataParallelTrainer` with a distkeras backend.

```python
from ray.train import ScalingConfig, RunConfig
from distkeras.distributed.ray.train import DistkerasTrainer, ReportCallback

def train_loop(config):
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(config["lr"]), loss="mse")
    model.fit(x, y, batch_size=64, epochs=3, callbacks=[ReportCallback(checkpoint=True)])

trainer = DistkerasTrainer(
    train_loop, train_loop_config={"lr": 1e-3}, scaling_config=ScalingConfig(num_workers=2)
)
result = trainer.fit()          # result.metrics: the last epoch's logs; result.checkpoint
```

The backend gives Ray Train's worker group distkeras's Ray communicator
(no PyTorch): before the loop starts, every worker gets its rank, the world
size, its local rank and the name of a rendezvous actor unique to this
training run, so `fit` inside the loop is data-parallel as under
`distkeras.distributed.ray.run` (global batch, sharded by rank, gradients
all-reduced, logs reduced exactly). `ReportCallback` hands each epoch's logs
(and optionally a checkpoint, written once by rank 0) to `ray.train.report`,
which is what Ray Train's results, Tune and the dashboard see.

Which to use: `distributed.ray.run` is the light driver (restarts lost
workers from `BackupAndRestore` backups, resumes mid-epoch); `DistkerasTrainer`
plugs into Ray Train's machinery (`Result`, `RunConfig`, Tune, Ray Data).
A lost worker is recovered by `RunConfig(failure_config=FailureConfig(max_failures=k))`
from the last reported checkpoint (`load_checkpoint(ray.train.get_checkpoint())`,
at an epoch boundary). This first slice does not yet feed
`get_dataset_shard` iterators to `fit` or resume mid-epoch.
"""

from __future__ import annotations

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

from distkeras.callbacks.callback import Callback
from distkeras.distributed.ray.communicator import (
    GROUP_ENV,
    LOCAL_RANK_ENV,
    LOCAL_SIZE_ENV,
    NAMESPACE_ENV,
    RANK_ENV,
    SIZE_ENV,
)

_MODEL = "model.keras"
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
        datasets: Ray Data datasets, read in the loop with `ray.train.get_dataset_shard`.
        dataset_config: Ray Train's `DataConfig`.
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


class ReportCallback(Callback):
    """Reports each epoch's logs (and optionally a checkpoint) to `ray.train.report`.

    Every rank reports (Ray Train expects one report per worker per round);
    the logs are already reduced across ranks by `fit`. With
    `checkpoint=True` the model's weights are saved once (rank 0 writes, a
    collective save) with `model.save` (config, weights, optimizer state,
    random states) into a fresh folder that rank 0 reports as a
    `ray.train.Checkpoint`, with the epoch in `checkpoint_info.json`;
    `load_checkpoint` restores it.

    Args:
        metrics: Log keys to report (None: all), or a dict {reported name: log key}.
        checkpoint: Also report a checkpoint of the model each epoch.
    """

    def __init__(self, metrics: list | dict | None = None, checkpoint: bool = False):
        super().__init__()
        if metrics is not None and not isinstance(metrics, (list, tuple, dict, str)):
            raise ValueError(
                f"metrics must be None, a list of keys or a dict. Received: metrics={metrics!r}"
            )
        self.metrics = [metrics] if isinstance(metrics, str) else metrics
        self.checkpoint = bool(checkpoint)

    def decides_per_batch(self) -> bool:
        return False

    def _select(self, logs: dict) -> dict:
        if self.metrics is None:
            return {k: float(v) for k, v in logs.items() if _is_scalar(v)}
        if isinstance(self.metrics, dict):
            return {name: float(logs[key]) for name, key in self.metrics.items()}
        return {k: float(logs[k]) for k in self.metrics}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import ray.train  # noqa: PLC0415

        metrics = self._select(logs or {})
        metrics["epoch"] = epoch + 1
        if not self.checkpoint:
            ray.train.report(metrics)
            return
        comm = self.communicator
        rank = comm.rank if comm is not None else 0
        folder = tempfile.mkdtemp(prefix="distkeras-ckpt-") if rank == 0 else None
        if comm is not None and comm.size > 1:
            folder = comm.broadcast_object(folder, root=0)
        self.model.save(os.path.join(folder, _MODEL))  # collective: rank 0 writes
        if rank == 0:
            with open(os.path.join(folder, "checkpoint_info.json"), "w") as f:
                f.write(f'{{"epoch": {epoch + 1}}}')
            try:
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(folder))
            finally:  # Ray Train has copied the folder into the run's storage
                shutil.rmtree(folder, ignore_errors=True)
        else:
            ray.train.report(metrics)


def _is_scalar(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return getattr(v, "ndim", 0) == 0


def load_checkpoint(
    checkpoint: Checkpoint | None, custom_objects: dict | None = None
) -> tuple[Any, int]:
    """Restores a `ReportCallback` checkpoint (e.g. `ray.train.get_checkpoint()`).

    Returns:
        (model, epochs done): the compiled model with its optimizer state, and
        the `initial_epoch` to continue `fit` from; `(None, 0)` without a checkpoint.
    """
    import json  # noqa: PLC0415

    from distkeras.models import load_model  # noqa: PLC0415

    if checkpoint is None:
        return None, 0
    with checkpoint.as_directory() as folder:
        model = load_model(os.path.join(folder, _MODEL), custom_objects=custom_objects)
        with open(os.path.join(folder, "checkpoint_info.json")) as f:
            return model, int(json.load(f)["epoch"])
