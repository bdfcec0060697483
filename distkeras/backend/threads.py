"""Small GEMMs on one BLAS thread.

A recurrent loop runs one small matrix product per timestep. Splitting such a
product over several BLAS threads gains nothing (it is too small) and, on a
busy machine, costs a thread hand-off per product that can make it ten times
slower. `single_blas_thread()` pins the BLAS library to one thread for the
duration of such a loop, through `threadpoolctl` when it is installed (it is a
no-op otherwise, and on array modules other than NumPy).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from distkeras.backend import current_module

_STATE: dict[str, Any] = {"libs": None}
_LOCAL_SIZE_VARS = (
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "MPI_LOCALNRANKS",
    "SLURM_NTASKS_PER_NODE",
    "DISTKERAS_LOCAL_SIZE",
)


def auto_threads() -> int:
    """Threads a compute loop may use: this process's cores over the local ranks.

    Capped at 4, and at OMP_NUM_THREADS when that is set. Shared by the
    optimizer's flat update and the convolution/pooling loops.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    local = 1
    for var in _LOCAL_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            local = max(1, int(os.environ[var]))
            break
    n = max(1, min(4, cores // local))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(n, int(omp)) if omp.isdigit() and int(omp) > 0 else n


# Per-step products up to this many multiply-adds run on one thread (a 64x64 by
# 64x256 LSTM step, 1M, measured faster on two: 17.4 vs 19.0 ms a training step).
SMALL_GEMM = 1 << 18


def _blas_controllers() -> list:
    if _STATE["libs"] is None:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415

            libs = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except Exception:  # noqa: BLE001 - an optional speed-up, never an error
            libs = []
        _STATE["libs"] = libs
    return _STATE["libs"]


@contextlib.contextmanager
def single_blas_thread(enabled: bool = True) -> Iterator[None]:
    """Runs the block with NumPy's BLAS limited to one thread (restored afterwards).

    Args:
        enabled: False makes this a no-op (e.g. for products big enough to share).
    """
    if not enabled or current_module() is not np:
        yield
        return
    saved = []
    for lib in _blas_controllers():
        try:
            n = lib.get_num_threads()
            if n and n > 1:
                lib.set_num_threads(1)
                saved.append((lib, n))
        except Exception:  # noqa: BLE001, S112
            continue
    try:
        yield
    finally:
        for lib, n in saved:
            lib.set_num_threads(n)
