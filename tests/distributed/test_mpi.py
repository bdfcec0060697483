"""Real multi-process tests: each launches `mpirun -n N` on a small script.

The scripts under scripts/ do the checking on every rank; these tests assert
that every rank reported success, or, for the failure scenarios, that the job
ended quickly with the expected diagnosis. Skipped without mpi4py or mpirun.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")

SCRIPTS = Path(__file__).parent / "scripts"
REPO = Path(__file__).resolve().parents[2]
LIVENESS_S = 15.0  # the fail-fast bound: a failing job must end within this


def run_mpi(n: int, script: str, *args: str, timeout: float = 60) -> tuple[int, str, float]:
    """Runs `mpirun -n n python scripts/<script> args`; returns (rc, output, seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        DISTKERAS_COLLECTIVE_TIMEOUT="50",  # a hang inside a test becomes an error
    )
    cmd = [MPIRUN, "-n", str(n), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [sys.executable, str(SCRIPTS / script), *args]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    return proc.returncode, proc.stdout, time.monotonic() - start


@pytest.mark.parametrize("n", [2, 3, 4])
def test_collectives(n):
    rc, out, _ = run_mpi(n, "collectives.py")
    assert rc == 0, out
    for r in range(n):
        assert f"ALL OK rank {r}" in out, out


def test_exception_on_one_rank_ends_job_with_its_traceback():
    rc, out, elapsed = run_mpi(3, "failures.py", "exception")
    assert rc != 0, out
    assert elapsed < LIVENESS_S, (elapsed, out)
    assert "[distkeras] rank 1 failed:" in out, out
    assert "Traceback (most recent call last)" in out and "ValueError: boom from rank 1" in out
    assert "finished without error" not in out


def test_killed_rank_ends_job():
    rc, out, elapsed = run_mpi(2, "failures.py", "kill")
    assert rc != 0, out
    assert elapsed < LIVENESS_S, (elapsed, out)
    assert "finished without error" not in out


def test_timeout_names_ranks_that_never_arrived():
    rc, out, elapsed = run_mpi(3, "failures.py", "timeout")
    assert rc != 0, out
    assert elapsed < LIVENESS_S, (elapsed, out)
    assert "CollectiveTimeoutError" in out and "timed out after" in out, out
    assert "rank(s) [1] never arrived" in out, out


def test_uncaught_mismatch_is_an_error_not_a_hang():
    rc, out, elapsed = run_mpi(2, "failures.py", "mismatch")
    assert rc != 0, out
    assert elapsed < LIVENESS_S, (elapsed, out)
    assert "CollectiveMismatchError" in out, out
    assert "rank 1: #2 allreduce(op='sum', 1 array(s): float64[11]" in out, out
    assert "Disagreeing ranks (compared with rank 0): [1]" in out, out
