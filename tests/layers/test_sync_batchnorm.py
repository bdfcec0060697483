"""BatchNormalization(synchronized=True) under real `mpirun` equals the one-process run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")
MPIRUN = shutil.which("mpirun")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
SCRIPT = Path(__file__).parent / "scripts" / "sync_bn_train.py"
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )


def run(tmp_path: Path, n: int, mode: str) -> list[list[np.ndarray]]:
    """Weights (moving statistics included) saved by every rank."""
    prefix = str(tmp_path / f"n{n}_{mode}")
    cmd = [sys.executable, str(SCRIPT), prefix, mode]
    if n > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = []
    for r in range(n):
        with np.load(f"{prefix}.rank{r}.npz") as f:
            out.append([f[f"arr_{i}"] for i in range(len(f.files))])
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return run(tmp_path_factory.mktemp("sync_bn"), 1, "sync")[0]


@pytest.mark.parametrize("n", [2, 3], ids=["n2", "n3_uneven"])
def test_synchronized_batch_norm_matches_one_process(tmp_path, single, n):
    results = run(tmp_path, n, "sync")
    assert len(single) == 11  # 3 kernels, 1 bias, 2 x (gamma, [beta], moving mean, variance)
    for weights in results:
        for a, b in zip(weights, single):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for weights in results[1:]:
        for a, b in zip(weights, results[0]):
            np.testing.assert_array_equal(a, b)


def test_unsynchronized_batch_norm_differs_on_two_ranks(tmp_path, single):
    """Per-rank statistics over half batches: the check above is not vacuous."""
    rank0 = run(tmp_path, 2, "plain")[0]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(rank0, single))
    assert diff > 1e-3
