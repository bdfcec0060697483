"""Which device computes: the CPU, or one GPU per rank under the CuPy backend.

In a data-parallel run every rank pins the GPU of its local rank (the rank among
the processes on its node), wrapping around when there are more ranks than
GPUs. When the launcher gives each process its own `CUDA_VISIBLE_DEVICES`
(Ray, `distkeras-run --gpus-per-proc 1`, Slurm's `--gpus-per-task`), only one
GPU is visible and every rank uses device 0 of what it sees.
`DISTKERAS_DEVICE=cuda:N` (or just `N`) overrides the choice.

CuPy is imported only by the functions that need it, and only under the
'cupy' backend.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

DEVICE_ENV = "DISTKERAS_DEVICE"
_state: dict[str, Any] = {"selected": None}


def local_rank_from_env(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank on its node, as the launcher reports it (0 when none does).

    Reads `DISTKERAS_LOCAL_RANK`, then what `distkeras.distributed.env.detect_launch`
    recognizes (Open MPI, MPICH/Hydra, PMIx, Slurm), then `LOCAL_RANK`.
    """
    env = os.environ if environ is None else environ
    value = env.get("DISTKERAS_LOCAL_RANK")
    if value not in (None, ""):
        return int(value)
    from distkeras.distributed.env import detect_launch  # noqa: PLC0415

    launch = detect_launch(env)
    if launch is not None and launch.local_rank is not None:
        return int(launch.local_rank)
    value = env.get("LOCAL_RANK")
    return int(value) if value not in (None, "") else 0


def choose_device_index(
    local_rank: int, device_count: int, environ: Mapping[str, str] | None = None
) -> int:
    """The GPU index (among the visible ones) that a rank should use.

    Args:
        local_rank: The rank among the processes on this node.
        device_count: How many GPUs this process sees (after CUDA_VISIBLE_DEVICES).
        environ: The environment to read `DISTKERAS_DEVICE` from.

    Returns:
        `DISTKERAS_DEVICE` when set, else `local_rank % device_count`.
    """
    env = os.environ if environ is None else environ
    if device_count < 1:
        raise RuntimeError(
            "The 'cupy' backend found no visible CUDA device. "
            f"Received: device_count={device_count}, "
            f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r}"
        )
    override = env.get(DEVICE_ENV)
    if override not in (None, ""):
        text = override.strip().lower()
        index_text = text.split(":", 1)[1] if text.startswith(("cuda:", "gpu:")) else text
        try:
            index = int(index_text)
        except ValueError:
            raise ValueError(
                f"{DEVICE_ENV} must be 'cuda:N' or 'N'. Received: {DEVICE_ENV}={override!r}"
            ) from None
        if not 0 <= index < device_count:
            raise ValueError(
                f"{DEVICE_ENV} names a device this process cannot see ({device_count} "
                f"visible). Received: {DEVICE_ENV}={override!r}"
            )
        return index
    if local_rank < 0:
        raise ValueError(f"local_rank must be >= 0. Received: local_rank={local_rank}")
    if device_count == 1:
        return 0  # the launcher gave this process its own GPU (CUDA_VISIBLE_DEVICES)
    if local_rank >= device_count:
        warnings.warn(
            f"{local_rank + 1} or more ranks on this node share {device_count} visible GPU(s); "
            f"local rank {local_rank} uses GPU {local_rank % device_count}.",
            stacklevel=2,
        )
    return local_rank % device_count


def select_device(local_rank: int | None = None) -> str:
    """Makes this process's GPU current (CuPy backend); a no-op returning 'cpu' otherwise.

    Called when the 'cupy' backend is selected, before any array is allocated.

    Args:
        local_rank: Rank among the processes on this node; read from the launcher's
            environment when omitted.

    Returns:
        The device, e.g. 'cuda:1'.
    """
    from distkeras import backend as _backend  # noqa: PLC0415

    if _backend.backend() != "cupy":
        return "cpu"
    import cupy  # noqa: PLC0415

    if local_rank is None:
        local_rank = local_rank_from_env()
    index = choose_device_index(local_rank, cupy.cuda.runtime.getDeviceCount())
    cupy.cuda.Device(index).use()
    _state["selected"] = index
    return f"cuda:{index}"


def device() -> str:
    """The device computations run on: 'cpu', or 'cuda:N' under the CuPy backend.

    N is the index among the GPUs this process sees (CUDA_VISIBLE_DEVICES applies).
    """
    from distkeras import backend as _backend  # noqa: PLC0415

    if _backend.backend() != "cupy":
        return "cpu"
    import cupy  # noqa: PLC0415

    return f"cuda:{cupy.cuda.runtime.getDevice()}"


__all__ = ["choose_device_index", "device", "local_rank_from_env", "select_device"]
