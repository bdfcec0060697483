"""A killed mpirun's leftovers cannot break a later `distkeras-run` (`launcher.sessiondir`).

Open MPI 5's mpirun keeps its session directory in `$TMPDIR/ompi.<its pid>`; one
killed with SIGKILL leaves it behind, and a later mpirun that gets the same pid
exits with code 213 before any rank runs. The tests leave such directories for
the next pids in a private `$TMPDIR`, check that a plain mpirun really fails
there, and that `distkeras-run` does not.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.sessiondir import SESSION_BASE_ENV, wants_private_base
from tests.launcher.test_run import CTX, ROOT, SCRIPTS, launcher_env, needs_mpi

SESSION_SCRIPT = SCRIPTS / "session_dir.py"
MPI_TIMEOUT_S = 120


def leave_stale_session_dirs(tmpdir: Path, count: int = 1500) -> None:
    """Leaves what a SIGKILLed mpirun leaves behind, for each of the next `count` pids."""
    probe = subprocess.Popen(["true"])
    probe.wait()
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    host = socket.gethostname()
    hosts = {host, host.split(".")[0]}
    pids = set()
    for step in range(1, count + 1):
        pid = probe.pid + step
        # past pid_max the kernel starts again at 300 (1 in a fresh namespace)
        pids |= {pid} if pid <= pid_max else {pid - pid_max, pid - pid_max + 300}
    for pid in pids:
        folder = tmpdir / f"ompi.{pid}"
        folder.mkdir(exist_ok=True)
        for name in hosts:
            (folder / f"pmix.{name}.tool").touch()
            (folder / f"pmix.{name}.tool.{pid}").touch()


def _launch_two_ranks(env: dict) -> dict[int, str]:
    """Runs the session script on 2 ranks through `distkeras-run`; rank -> session dir."""
    proc = subprocess.run(
        [sys.executable, "-m", "launcher", "-np", "2", "python", str(SESSION_SCRIPT)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=MPI_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.findall(r"rank (\d+) session (\S+)", proc.stdout)
    sessions = {int(r): path for r, path in found}
    assert sorted(sessions) == [0, 1], proc.stdout
    return sessions


@pytest.mark.parametrize(
    ("mpi", "environ", "expected"),
    [
        ("openmpi", {}, True),
        ("mpich", {}, False),
        (None, {}, False),
        ("openmpi", {"PRTE_MCA_prte_tmpdir_base": "/scratch"}, False),
        ("openmpi", {"PRTE_MCA_prte_local_tmpdir_base": "/scratch"}, False),
        ("openmpi", {"OMPI_MCA_prte_tmpdir_base": "/scratch"}, False),
    ],
)
def test_only_an_open_mpi_job_without_a_base_of_its_own_gets_one(mpi, environ, expected):
    assert wants_private_base(mpi, environ) is expected


@needs_mpi
def test_stale_session_dirs_stop_plain_mpirun_but_not_the_launcher(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = launcher_env(TMPDIR=str(tmpdir))
    root = ["--allow-run-as-root"] if CTX.euid == 0 else []
    plain = [CTX.mpirun(), *root, "--oversubscribe", "-n", "2", sys.executable, SESSION_SCRIPT]
    leave_stale_session_dirs(tmpdir)
    proc = subprocess.run(
        plain, cwd=ROOT, env=env, capture_output=True, text=True, timeout=MPI_TIMEOUT_S
    )
    # what the test guards against: without a base of its own, mpirun fails at once
    assert proc.returncode == 213, proc.stdout + proc.stderr
    assert "listener thread failed to start" in proc.stdout + proc.stderr

    leave_stale_session_dirs(tmpdir)
    sessions = _launch_two_ranks(env)
    base = Path(sessions[0]).parent
    assert base.parent == tmpdir and base.name.startswith("distkeras-mpi-"), sessions
    assert not base.exists(), "the launcher leaves its session base behind"
    assert not list(tmpdir.glob("distkeras-mpi-*"))


@needs_mpi
def test_a_session_base_the_user_chose_is_kept(tmp_path):
    chosen = tmp_path / "sessions"
    chosen.mkdir()
    env = launcher_env(TMPDIR=str(tmp_path), **{SESSION_BASE_ENV: str(chosen)})
    sessions = _launch_two_ranks(env)
    assert {Path(p).parent for p in sessions.values()} == {chosen}
    assert chosen.is_dir() and not list(tmp_path.glob("distkeras-mpi-*"))
