"""Data-parallel communication: one process or N MPI ranks, same script.

```python
import distkeras.distributed as dist

comm = dist.initialize()          # auto: MPI under mpirun/mpiexec/srun, else local
grads = comm.allreduce(grads, op="mean")
if dist.is_coordinator():
    print("only rank 0 prints")
```

Importing this package does not import mpi4py; the MPI communicator is
created on first use, so single-process users pay nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from distkeras.distributed import env
from distkeras.distributed.bucketing import (
    DEFAULT_BUCKET_BYTES,
    Bucket,
    GradientBucketer,
    fused_allreduce,
)
from distkeras.distributed.communicator import (
    REDUCE_OPS,
    CollectiveHandle,
    Communicator,
    LocalCommunicator,
    pack_object,
    uninstall_excepthook,
    unpack_object,
)
from distkeras.distributed.communicator import fail_fast as _fail_fast
from distkeras.distributed.communicator import install_excepthook as _install_excepthook
from distkeras.distributed.env import LaunchInfo, detect_launch
from distkeras.distributed.errors import (
    CollectiveMismatchError,
    CollectiveTimeoutError,
    CommunicatorClosedError,
    DistributedError,
)
from distkeras.distributed.scaling import scale_learning_rate

_BACKENDS = ("auto", "local", "mpi", "ray")
_state: dict[str, Any] = {"comm": None, "per_process_models": None}


def _mpi_communicator(**kwargs: Any) -> Communicator:
    try:
        from distkeras.distributed.mpi import MPICommunicator  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(
            "The 'mpi' distributed backend needs mpi4py and an MPI library: "
            "pip install 'distkeras[mpi]'."
        ) from e
    return MPICommunicator(**kwargs)


def _ray_communicator(**kwargs: Any) -> Communicator:
    try:
        from distkeras.distributed.ray.communicator import RayCommunicator  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(
            "The 'ray' distributed backend needs Ray: pip install 'distkeras[ray]'."
        ) from e
    return RayCommunicator.from_environment(**kwargs)


def initialize(
    backend: str = "auto",
    deterministic: bool = False,
    timeout: float | None = None,
    *,
    compression: str | None = None,
    check: bool = True,
    bucket_bytes: int | None = None,
    install_hook: bool = True,
    stall_warning: float | None = None,
) -> Communicator:
    """Creates the process-wide communicator (idempotent for the same backend).

    Args:
        backend: 'auto' (MPI when launched by mpirun, mpiexec or srun, Ray in a
            worker of `distkeras.distributed.ray`, else local), 'local', 'mpi' or 'ray'.
        deterministic: Reduce gradients in a fixed order (bitwise equal on all ranks).
        timeout: Seconds a collective may wait for the other ranks (None: the
            `DISTKERAS_COLLECTIVE_TIMEOUT` environment variable, else adaptive:
            max(120 s, 20x the slowest step seen); 0: never).
        compression: None or 'float16' for gradient all-reduces.
        check: Fingerprint every collective to catch ranks calling different ones.
        bucket_bytes: Staging bucket size for fused all-reduces.
        install_hook: In a multi-rank job, make an uncaught exception on any rank
            print its traceback and abort every rank.
        stall_warning: Seconds a collective waits before logging which ranks
            have not arrived, once per stall (None: `DISTKERAS_STALL_WARNING_S`,
            else 30; 0: never).

    Returns:
        The communicator, also available as `get_communicator()`.
    """
    if backend not in _BACKENDS:
        raise ValueError(
            f"Unknown distributed backend. Expected one of {_BACKENDS}. "
            f"Received: backend={backend!r}"
        )
    if backend == "auto":
        launch = detect_launch()
        backend = "mpi" if launch is not None and launch.is_distributed else "local"
        if backend == "local" and os.environ.get("DISTKERAS_RAY_GROUP"):
            backend = "ray"  # a worker started by distkeras.distributed.ray
    current = _state["comm"]
    if current is not None and not current.closed:
        if current.backend != backend:
            raise RuntimeError(
                f"distkeras.distributed is already initialized with backend "
                f"{current.backend!r}; call shutdown() first. Received: backend={backend!r}"
            )
        current.deterministic = bool(deterministic) or current.deterministic
        return current
    kwargs: dict[str, Any] = {
        "deterministic": deterministic,
        "compression": compression,
        "check": check,
    }
    if timeout is not None:
        kwargs["timeout"] = timeout
    if stall_warning is not None:
        kwargs["stall_warning"] = stall_warning
    if backend == "mpi":
        comm = _mpi_communicator(bucket_bytes=bucket_bytes, **kwargs)
    elif backend == "ray":
        comm = _ray_communicator(bucket_bytes=bucket_bytes, **kwargs)
    else:
        if bucket_bytes is not None:
            kwargs["bucket_bytes"] = bucket_bytes
        comm = LocalCommunicator(**kwargs)
    if comm.size > 1:  # CuPy backend: array collectives go GPU to GPU (NCCL)
        from distkeras.distributed.nccl import maybe_gpu_communicator  # noqa: PLC0415

        comm = maybe_gpu_communicator(comm)
    _state["comm"] = comm
    if install_hook and comm.size > 1:
        _install_excepthook(comm)
    return comm


def is_initialized() -> bool:
    """True once `initialize()` (or `get_communicator()`) has created a communicator."""
    return _state["comm"] is not None and not _state["comm"].closed


def get_communicator() -> Communicator:
    """Returns the process-wide communicator, initializing it (backend 'auto') if needed."""
    comm = _state["comm"]
    if comm is None or comm.closed:
        comm = initialize("auto")
    return comm


def set_per_process_models(enabled: bool) -> None:
    """Makes models train as independent processes (Horovod's model), or not.

    When enabled (`distkeras.horovod.init()` does it), `model_communicator()`
    is a single-process communicator: `fit` neither shards the data nor
    reduces metrics, saves write locally without a collective, and ranks
    meet only where the user asks (a Horovod `DistributedOptimizer`,
    callbacks, collectives), each on the process-wide communicator.
    """
    _state["per_process_models"] = LocalCommunicator(check=False) if enabled else None


def model_communicator() -> Communicator:
    """The communicator models train and save with: the process-wide one, or a local
    one when `set_per_process_models(True)` is in effect."""
    local = _state["per_process_models"]
    return local if local is not None else get_communicator()


def rank() -> int:
    """This process's rank (0 in one process)."""
    return get_communicator().rank


def size() -> int:
    """The number of ranks (1 in one process)."""
    return get_communicator().size


def local_rank() -> int:
    """This process's rank on its node."""
    return get_communicator().local_rank


def local_size() -> int:
    """The number of ranks on this node."""
    return get_communicator().local_size


def is_coordinator() -> bool:
    """True on rank 0, the rank that prints and writes files."""
    return get_communicator().rank == 0


def is_deterministic() -> bool:
    """True when the communicator reduces in a fixed, world-size independent order."""
    return get_communicator().deterministic


def shutdown() -> None:
    """Closes the process-wide communicator; the next call re-initializes."""
    comm = _state["comm"]
    _state["comm"] = None
    if comm is not None:
        uninstall_excepthook()
        comm.close()


def __getattr__(name: str) -> Any:
    # `dist.MPICommunicator` imports mpi4py only when asked for.
    if name == "MPICommunicator":
        from distkeras.distributed.mpi import MPICommunicator  # noqa: PLC0415

        return MPICommunicator
    raise AttributeError(f"module 'distkeras.distributed' has no attribute {name!r}")


def install_excepthook(comm: Communicator | None = None) -> None:
    """Makes an uncaught exception on any rank print its traceback and abort every rank."""
    _install_excepthook(comm if comm is not None else get_communicator())


@contextlib.contextmanager
def fail_fast(comm: Communicator | None = None) -> Iterator[Communicator]:
    """Context manager: an exception escaping the block aborts every rank of the job."""
    with _fail_fast(comm if comm is not None else get_communicator()) as c:
        yield c


__all__ = [
    "DEFAULT_BUCKET_BYTES",
    "REDUCE_OPS",
    "Bucket",
    "CollectiveHandle",
    "CollectiveMismatchError",
    "CollectiveTimeoutError",
    "Communicator",
    "CommunicatorClosedError",
    "DistributedError",
    "GradientBucketer",
    "LaunchInfo",
    "LocalCommunicator",
    "MPICommunicator",
    "detect_launch",
    "env",
    "fail_fast",
    "fused_allreduce",
    "get_communicator",
    "initialize",
    "install_excepthook",
    "is_coordinator",
    "is_deterministic",
    "is_initialized",
    "local_rank",
    "local_size",
    "model_communicator",
    "pack_object",
    "rank",
    "scale_learning_rate",
    "set_per_process_models",
    "shutdown",
    "size",
    "uninstall_excepthook",
    "unpack_object",
]
