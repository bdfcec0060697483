"""The Ray job driver: runs `train_fn` on N actors and restarts them when one dies.

```python
import distkeras.distributed.ray as dray

def train_fn(config):
    model = build_model()
    cbs = [callbacks.BackupAndRestore(config["checkpoint_dir"])]
    history = model.fit(x, y, batch_size=256, epochs=10, callbacks=cbs)
    return history.history, model.get_weights()

history, weights = dray.run(train_fn, num_workers=4, max_failures=2, checkpoint_dir="/shared/ckpt")
```

Each worker is an actor in a placement group; before `train_fn` runs it calls
`distkeras.distributed.initialize(backend="ray")`, so `model.fit` inside is
data-parallel exactly as under mpirun. `run` returns rank 0's return value.

Failures:

- an exception in `train_fn` on one rank marks the group failed, which ends
  every other rank at its next (or current) collective; the driver kills the
  actors and raises `WorkerError` naming the rank, with its traceback. User
  errors are not retried.
- an actor that dies (its process killed, its node lost) makes the driver kill
  the group, start new actors and call `train_fn` again, up to `max_failures`
  times. `train_fn` resumes by itself: `config["checkpoint_dir"]` is the
  folder to give `callbacks.BackupAndRestore`, and `get_context().attempt`
  says which attempt this is.

This module is the top floor of `distkeras.distributed` (it drives training
from outside); the communicator below knows nothing of it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from distkeras._blas import BLAS_ENV
from distkeras.distributed.errors import DistributedError
from distkeras.distributed.ray.communicator import (
    GROUP_ENV,
    LOCAL_RANK_ENV,
    LOCAL_SIZE_ENV,
    NAMESPACE_ENV,
    RANK_ENV,
    SIZE_ENV,
)
from distkeras.distributed.ray.connect import check_not_nested, ensure_ray
from distkeras.distributed.ray.rendezvous import PeerFailedError, get_rendezvous

PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
ATTEMPT_ENV = "DISTKERAS_RAY_ATTEMPT"
CHECKPOINT_DIR_ENV = "DISTKERAS_RAY_CHECKPOINT_DIR"
_KILL_GRACE_S = 2.0


class WorkerError(DistributedError):
    """`train_fn` (or a script) failed on a worker; raised on the driver.

    Attributes:
        rank: The rank that failed first.
        traceback_text: Its formatted traceback (or reason).
        exit_code: The script's exit status (1 for an exception).
    """

    def __init__(self, message: str, rank: int, traceback_text: str = "", exit_code: int = 1):
        super().__init__(message)
        self.rank = rank
        self.traceback_text = traceback_text
        self.exit_code = exit_code


class WorkersLostError(DistributedError):
    """Actors died more often than `max_failures` allows.

    Attributes:
        failures: How many times the group lost an actor.
    """

    def __init__(self, message: str, failures: int):
        super().__init__(message)
        self.failures = failures


@dataclasses.dataclass(frozen=True)
class WorkerContext:
    """What a worker knows about its place in the job (see `get_context`).

    Attributes:
        rank: This worker's rank.
        size: The number of workers.
        local_rank: Rank among the workers on this node.
        local_size: Workers on this node.
        attempt: 0 for the first run, k after the k-th restart.
        checkpoint_dir: The `checkpoint_dir` given to `run`, or None.
    """

    rank: int
    size: int
    local_rank: int
    local_size: int
    attempt: int
    checkpoint_dir: str | None


def get_context() -> WorkerContext:
    """The calling worker's `WorkerContext`.

    Raises:
        RuntimeError: Outside a worker started by `run` or `run_script`.
    """
    env = os.environ
    if not env.get(GROUP_ENV):
        raise RuntimeError(
            "get_context() works only inside a worker started by "
            "distkeras.distributed.ray.run() or run_script()."
        )
    return WorkerContext(
        rank=int(env[RANK_ENV]),
        size=int(env[SIZE_ENV]),
        local_rank=int(env.get(LOCAL_RANK_ENV, env[RANK_ENV])),
        local_size=int(env.get(LOCAL_SIZE_ENV, env[SIZE_ENV])),
        attempt=int(env.get(ATTEMPT_ENV, "0")),
        checkpoint_dir=env.get(CHECKPOINT_DIR_ENV) or None,
    )


# ----------------------------------------------------------------------------- the actor


class _Worker:
    """One rank: an actor that runs a function with the Ray communicator initialized."""

    def __init__(self, env: dict[str, str], use_gpu: bool, rank: int | None = None):
        self.rank = rank
        os.environ.update(env)
        if use_gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ray.get_gpu_ids())

    def __repr__(self) -> str:  # Ray prefixes the actor's log lines with it: (rank 0 pid=...)
        return f"rank {self.rank}" if self.rank is not None else "distkeras worker"

    def info(self) -> dict:
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def execute(
        self,
        fn: Callable,
        args: tuple,
        setup: dict[str, str],
        init_kwargs: dict,
        keep_result: bool,
    ) -> Any:
        os.environ.update(setup)
        rank, size = int(setup[RANK_ENV]), int(setup[SIZE_ENV])
        import distkeras.distributed as dist  # noqa: PLC0415

        dist.shutdown()
        try:
            dist.initialize(backend="ray", install_hook=False, **init_kwargs)
            result = fn(*args)
        except BaseException as e:
            if not isinstance(e, PeerFailedError):
                report_failure(setup, rank, size, user_traceback(e), 1)
            raise
        finally:
            dist.shutdown()
        return result if keep_result or rank == 0 else None


_WorkerActor = ray.remote(_Worker)


def user_traceback(error: BaseException) -> str:
    """`error`'s traceback without the leading frames of the worker machinery (this module)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def report_failure(setup: dict[str, str], rank: int, size: int, reason: str, code: int) -> None:
    """Marks the worker's group failed (the first report wins) so every rank stops."""
    try:
        actor = get_rendezvous(setup[GROUP_ENV], size, setup.get(NAMESPACE_ENV) or None)
        ray.get(actor.abort.remote(rank, reason, code), timeout=10)
    except Exception:  # noqa: BLE001 - the driver notices the failure anyway
        pass


# ----------------------------------------------------------------------------- the group


class _WorkerLost(Exception):
    def __init__(self, rank: int, cause: BaseException):
        super().__init__(f"worker rank {rank} died: {cause}")
        self.rank = rank


def _resources(resources_per_worker: dict | None, use_gpu: bool) -> dict[str, float]:
    res = {"CPU": 1.0} if resources_per_worker is None else dict(resources_per_worker)
    for k, v in res.items():
        bad_amount = isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
        if not isinstance(k, str) or bad_amount:
            raise ValueError(
                "`resources_per_worker` maps resource names to non-negative amounts. "
                f"Received: resources_per_worker={resources_per_worker!r}"
            )
    if use_gpu and not res.get("GPU"):
        res["GPU"] = 1.0
    return {k: float(v) for k, v in res.items() if v}


class WorkerGroup:
    """N actors in a placement group plus their rendezvous actor (one attempt).

    Args:
        num_workers: The number of ranks.
        resources: Resources of each worker's bundle (e.g. {'CPU': 1, 'GPU': 1}).
        strategy: The placement group strategy.
        use_gpu: Set CUDA_VISIBLE_DEVICES to each actor's GPUs.
        env: Environment variables for the workers.
        attempt: The attempt number (0 first).
        placement_timeout: Seconds to wait for the cluster to fit the group.
    """

    def __init__(
        self,
        num_workers: int,
        resources: dict[str, float],
        strategy: str,
        use_gpu: bool,
        env: dict[str, str],
        attempt: int,
        placement_timeout: float,
    ):
        self.size = num_workers
        self.attempt = attempt
        self.name = f"distkeras-{uuid.uuid4().hex[:12]}-a{attempt}"
        self.namespace = ray.get_runtime_context().namespace
        self.actors: list[Any] = []
        self.rendezvous = None
        self.pg = placement_group([dict(resources)] * num_workers, strategy=strategy)
        try:
            ray.get(self.pg.ready(), timeout=placement_timeout)
        except ray.exceptions.GetTimeoutError:
            remove_placement_group(self.pg)
            raise RuntimeError(
                f"The Ray cluster could not place {num_workers} workers with {resources} each "
                f"(strategy {strategy}) within {placement_timeout:.0f} s. Cluster resources: "
                f"{ray.cluster_resources()}. Received: num_workers={num_workers}"
            ) from None
        self.rendezvous = get_rendezvous(self.name, num_workers, self.namespace)
        cpus = resources.get("CPU", 0.0)
        gpus = resources.get("GPU", 0.0)
        custom = {k: v for k, v in resources.items() if k not in ("CPU", "GPU")}
        for i in range(num_workers):
            options: dict[str, Any] = dict(
                num_cpus=cpus,
                num_gpus=gpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    self.pg, placement_group_bundle_index=i
                ),
                max_restarts=0,
                # Set when the worker process starts, before it loads NumPy.
                runtime_env={"env_vars": {k: os.environ.get(k, v) for k, v in BLAS_ENV.items()}},
            )
            if custom:
                options["resources"] = custom
            self.actors.append(_WorkerActor.options(**options).remote(env, use_gpu, i))
        infos = ray.get([a.info.remote() for a in self.actors])
        self.pids = [info["pid"] for info in infos]
        self.nodes = [info["node"] for info in infos]

    def setup(self, rank: int, checkpoint_dir: str | None) -> dict[str, str]:
        same = [r for r in range(self.size) if self.nodes[r] == self.nodes[rank]]
        return {
            GROUP_ENV: self.name,
            NAMESPACE_ENV: self.namespace or "",
            RANK_ENV: str(rank),
            SIZE_ENV: str(self.size),
            LOCAL_RANK_ENV: str(same.index(rank)),
            LOCAL_SIZE_ENV: str(len(same)),
            ATTEMPT_ENV: str(self.attempt),
            CHECKPOINT_DIR_ENV: checkpoint_dir or "",
        }

    def execute(
        self,
        fn: Callable,
        args: tuple,
        init_kwargs: dict,
        checkpoint_dir: str | None,
        keep_all: bool = False,
    ) -> list[Any]:
        """Runs `fn(*args)` on every rank; returns the ranks' results (None where not kept)."""
        refs = {
            a.execute.remote(fn, args, self.setup(r, checkpoint_dir), init_kwargs, keep_all): r
            for r, a in enumerate(self.actors)
        }
        results: list[Any] = [None] * self.size
        pending = dict(refs)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                rank = pending.pop(ref)
                try:
                    results[rank] = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    self._fail(rank, e, refs, died=True)
                except ray.exceptions.RayTaskError as e:
                    self._fail(rank, e, refs, died=False)
        return results

    def _fail(self, rank: int, error: BaseException, refs: dict, died: bool) -> None:
        try:
            failure = ray.get(self.rendezvous.failure.remote(), timeout=5)
        except Exception:  # noqa: BLE001
            failure = None
        if failure is None:
            self.kill()
            if died:
                raise _WorkerLost(rank, error)
            text = str(error)
            raise WorkerError(
                f"A worker failed on rank {rank} of {self.size}:\n{text}", rank, text
            ) from _cause(error)
        first = int(failure["rank"])
        cause: BaseException | None = error if first == rank else None
        if cause is None:  # the failing rank is about to raise: take its exception
            ref = next(ref for ref, r in refs.items() if r == first)
            try:
                ray.get(ref, timeout=_KILL_GRACE_S)
            except Exception as e:  # noqa: BLE001
                cause = e
        self.kill()
        raise WorkerError(
            f"train_fn failed on rank {first} of {self.size}:\n{failure['reason']}",
            first,
            failure["reason"],
            int(failure.get("exit_code", 1)),
        ) from _cause(cause)

    def kill(self) -> None:
        """Ends every actor of the group now."""
        for a in self.actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001
                pass

    def shutdown(self) -> None:
        """Kills the actors and the rendezvous actor and frees the placement group."""
        self.kill()
        if self.rendezvous is not None:
            try:
                ray.kill(self.rendezvous, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        try:
            remove_placement_group(self.pg)
        except Exception:  # noqa: BLE001
            pass


def _cause(error: BaseException | None) -> BaseException | None:
    """The user's exception inside a RayTaskError, when Ray could rebuild it."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return error


# ----------------------------------------------------------------------------- run


def _check_args(num_workers: Any, placement_strategy: Any, max_failures: Any) -> str:
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(
            f"`num_workers` must be a positive integer. Received: num_workers={num_workers!r}"
        )
    strategy = str(placement_strategy).upper()
    if strategy not in PLACEMENT_STRATEGIES:
        raise ValueError(
            f"Unknown placement strategy. Expected one of {PLACEMENT_STRATEGIES}. "
            f"Received: placement_strategy={placement_strategy!r}"
        )
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < -1:
        raise ValueError(
            "`max_failures` must be an integer >= 0 (or -1: retry forever). "
            f"Received: max_failures={max_failures!r}"
        )
    return strategy


def execute(
    fn: Callable,
    args: tuple,
    num_workers: int,
    *,
    resources_per_worker: dict | None = None,
    use_gpu: bool = False,
    placement_strategy: str = "PACK",
    max_failures: int = 0,
    checkpoint_dir: str | None = None,
    env: dict[str, str] | None = None,
    init_kwargs: dict | None = None,
    keep_all: bool = False,
    placement_timeout: float = 120.0,
) -> list[Any]:
    """Runs `fn(*args)` on `num_workers` ranks with retries; returns every rank's result.

    The engine of `run` and `run_script` (see `run` for the arguments).
    """
    strategy = _check_args(num_workers, placement_strategy, max_failures)
    resources = _resources(resources_per_worker, use_gpu)
    check_not_nested()
    ensure_ray()
    failures = 0
    while True:
        group = WorkerGroup(
            num_workers,
            resources,
            strategy,
            use_gpu,
            {str(k): str(v) for k, v in (env or {}).items()},
            failures,
            placement_timeout,
        )
        try:
            return group.execute(fn, args, dict(init_kwargs or {}), checkpoint_dir, keep_all)
        except _WorkerLost as lost:
            failures += 1
            if 0 <= max_failures < failures:
                raise WorkersLostError(
                    f"Worker rank {lost.rank} died and max_failures={max_failures} restarts "
                    f"are used up ({failures} failure(s)): {lost}",
                    failures,
                ) from lost
            sys.stderr.write(
                f"[distkeras] {lost}; restarting the {num_workers} workers "
                f"(restart {failures} of {'unlimited' if max_failures < 0 else max_failures})\n"
            )
            sys.stderr.flush()
        finally:
            group.shutdown()
        time.sleep(0.1)


def _call_train_fn(train_fn: Callable, config: dict) -> Any:
    config = {k: ray.get(v) if isinstance(v, ray.ObjectRef) else v for k, v in config.items()}
    return train_fn(config)


def run(
    train_fn: Callable[[dict], Any],
    num_workers: int = 2,
    resources_per_worker: dict | None = None,
    use_gpu: bool = False,
    placement_strategy: str = "PACK",
    config: dict | None = None,
    max_failures: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    *,
    deterministic: bool = False,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    """Runs `train_fn(config)` on `num_workers` Ray actors; returns rank 0's result.

    Each actor has the Ray communicator initialized, so `model.fit` inside is
    data-parallel. Connects to Ray first if needed (`RAY_ADDRESS`, else a local
    cluster).

    Args:
        train_fn: Called as `train_fn(config)` on every rank. Return plain data
            (e.g. `history.history` and `model.get_weights()`), not the model.
        num_workers: The number of ranks.
        resources_per_worker: Each worker's resources, e.g. {'CPU': 2}
            (default {'CPU': 1}).
        use_gpu: Give each worker one GPU (CUDA_VISIBLE_DEVICES set per actor).
        placement_strategy: 'PACK', 'SPREAD', 'STRICT_PACK' or 'STRICT_SPREAD'.
        config: A dict passed to `train_fn`. Values that are Ray object refs
            (`ray.put(x)`) arrive resolved (zero-copy, read-only on one node).
        max_failures: Restarts allowed when an actor dies (-1: no limit). User
            exceptions are never retried.
        checkpoint_dir: A folder shared by the workers, created if needed and
            passed as `config['checkpoint_dir']` (give it to
            `callbacks.BackupAndRestore`, which resumes after a restart).
        deterministic: Initialize the communicator in deterministic mode.
        timeout: Collective timeout in seconds (default: the communicator's).
        env: Extra environment variables for the workers.

    Returns:
        What `train_fn` returned on rank 0.

    Raises:
        WorkerError: `train_fn` raised on some rank (names the rank, with its traceback).
        WorkersLostError: Actors died more than `max_failures` times.
    """
    if not callable(train_fn):
        raise TypeError(f"`train_fn` must be callable. Received: train_fn={train_fn!r}")
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict or None. Received: config={config!r}")
    config = dict(config or {})
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = os.path.abspath(os.fspath(checkpoint_dir))
        os.makedirs(ckpt, exist_ok=True)
        config["checkpoint_dir"] = ckpt
    init_kwargs: dict[str, Any] = {"deterministic": deterministic}
    if timeout is not None:
        init_kwargs["timeout"] = timeout
    results = execute(
        _call_train_fn,
        (train_fn, config),
        num_workers,
        resources_per_worker=resources_per_worker,
        use_gpu=use_gpu,
        placement_strategy=placement_strategy,
        max_failures=max_failures,
        checkpoint_dir=ckpt,
        env=env,
        init_kwargs=init_kwargs,
    )
    return results[0]
