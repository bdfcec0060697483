"""GPU collectives (NCCL, CUDA-aware MPI, pinned staging); skipped without CuPy and a GPU."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")

from tests.gpu.harness import ROOT, gpu_count, subprocess_env  # noqa: E402

GPUS = gpu_count()
if GPUS < 1:
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
MPIRUN = shutil.which("mpirun")
SCRIPT = ROOT / "tests" / "gpu" / "scripts" / "gpu_collectives.py"


def _nccl_available() -> bool:
    try:
        from cupy.cuda import nccl  # noqa: PLC0415

        return bool(getattr(nccl, "available", True))
    except ImportError:
        return False


@pytest.mark.skipif(not _nccl_available(), reason="CuPy without NCCL")
def test_nccl_calls_on_one_rank():
    """One rank on one GPU exercises every NCCL call (the results are the inputs)."""
    from distkeras import backend  # noqa: PLC0415
    from distkeras.distributed import LocalCommunicator  # noqa: PLC0415
    from distkeras.distributed.nccl import NCCLCommunicator  # noqa: PLC0415

    previous = backend.backend()
    backend.set_backend("cupy")
    try:
        comm = NCCLCommunicator(LocalCommunicator(), transport="nccl")
        flat = cupy.arange(10, dtype=cupy.float32)
        a, b = flat[:4], flat[4:]
        c = cupy.ones((3, 4), dtype=cupy.float64)[:, ::2]
        comm.allreduce([a, b, c], op="mean", bucket_bytes=16)
        np.testing.assert_array_equal(cupy.asnumpy(flat), np.arange(10))
        np.testing.assert_array_equal(cupy.asnumpy(c), np.ones((3, 2)))
        comm.allreduce(cupy.asarray([True, False]), op="max")
        comm.allreduce_async(flat, op="sum").wait()
        comm.allreduce(flat, op="sum", deterministic=True, compression="float16")
        comm.broadcast([flat], root=0)
        (part,) = comm.allgather(cupy.ones((2, 3), dtype=cupy.int32))
        assert part.shape == (2, 3)
        comm.barrier()
        comm.close()
    finally:
        backend.set_backend(previous)


TRANSPORTS = [
    pytest.param(
        "nccl",
        marks=pytest.mark.skipif(
            GPUS < 2 or not _nccl_available(), reason="NCCL needs one GPU per rank (2 GPUs)"
        ),
    ),
    "staged",  # two ranks may share one GPU
    pytest.param(
        "cuda_aware_mpi",
        marks=pytest.mark.skipif(
            "DISTKERAS_CUDA_AWARE_MPI" not in __import__("os").environ,
            reason="set DISTKERAS_CUDA_AWARE_MPI=1 where MPI is CUDA-aware",
        ),
    ),
]


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_collectives_on_two_ranks(transport):
    pytest.importorskip("mpi4py")
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2",
           sys.executable, str(SCRIPT), transport]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=subprocess_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.count(" ok on cuda:") == 2
