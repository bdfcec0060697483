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


def run_mpi(
    n: int, script: str, *args: str, timeout: float = 60, **extra_env: str
) -> tuple[int, str, float]:
    """Runs `mpirun -n n python scripts/<script> args`; returns (rc, output, seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        DISTKERAS_COLLECTIVE_TIMEOUT="50",  # a hang inside a test becomes an error
    )
    env.update(extra_env)
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
    # A short stall window: a normal run (hundreds of collectives) raises no false alarm.
    rc, out, _ = run_mpi(n, "collectives.py", DISTKERAS_STALL_WARNING_S="5")
    assert rc == 0, out
    for r in range(n):
        assert f"ALL OK rank {r}" in out, out
    assert "stall" not in out, out


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


def _stall_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[distkeras] stall:")]


def test_rank_sleeping_in_user_code_is_named_by_a_stall_warning_then_the_error():
    """Stall window 2 s, timeout 8 s: rank 1 sleeps a minute outside any collective."""
    rc, out, elapsed = run_mpi(2, "failures.py", "stall")
    assert rc != 0, out
    assert elapsed < 100, (elapsed, out)  # the old default timeout alone was 300 s
    warnings = _stall_lines(out)
    assert len(warnings) == 1, out  # once per stall, on the rank that waits
    warning = warnings[0]
    assert "rank 0 has waited" in warning and "collective #2 allreduce(" in warning, warning
    assert "rank(s) [1] have not arrived" in warning, warning
    waited = float(warning.split("has waited ")[1].split(" s")[0])
    assert 2.0 <= waited < 8.0, warning  # not before the window, before the timeout
    assert "CollectiveTimeoutError: Collective #2 allreduce(" in out, out
    assert "rank(s) [1] never arrived" in out, out
    assert out.index(warning) < out.index("CollectiveTimeoutError"), out
    assert "finished without error" not in out


def test_a_late_rank_is_warned_about_but_the_job_goes_on():
    """Stall window 1 s: rank 1 comes 3 s late; the two waiting ranks warn once each."""
    rc, out, _ = run_mpi(3, "failures.py", "slow")
    assert rc == 0, out
    warnings = _stall_lines(out)
    assert len(warnings) == 2, out
    assert sorted(w.split(" has waited")[0] for w in warnings) == [
        "[distkeras] stall: rank 0",
        "[distkeras] stall: rank 2",
    ], out
    for w in warnings:
        assert "rank(s) [1] have not arrived" in w and "#2 allreduce(" in w, w
    for r in range(3):
        assert f"rank {r} finished without error" in out, out
