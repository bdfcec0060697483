"""`distkeras-run --backend ray --address` against a cluster started with `ray start`
and Ray 2.x token authentication, and against a wrong address.

The cluster runs on loopback with its own HOME (its token in HOME/.ray/auth_token,
where `ray get-auth-token --generate` writes it) and its own temp folder; the test
ends exactly the processes that name that folder, never other Ray clusters.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tests.launcher.test_run import SCRIPTS, launch, processes_with, wait_for

pytest.importorskip("ray")
RAY = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
SCRIPT = str(SCRIPTS / "print_ranks.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(home, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "HOME": str(home), **env}
    full.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [RAY, *args], env=full, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    """A one-node cluster with token authentication: (address, home with the token)."""
    base = tmp_path_factory.mktemp("raytoken")
    home, temp = base / "home", base / "t"
    home.mkdir()
    assert _ray(home, "get-auth-token", "--generate").returncode == 0
    port = free_port()
    started = _ray(
        home, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats",
        "--ray-client-server-port", str(free_port()), "--temp-dir", str(temp),
        RAY_AUTH_MODE="token",
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"127.0.0.1:{port}", home
    finally:
        for pid in cluster_processes(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if not wait_for(lambda: not cluster_processes(temp), 20):
            for pid in cluster_processes(temp):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def cluster_processes(temp) -> set[int]:
    """Processes of the test's cluster: named with its folder, or holding files in it
    (Ray's agents rename themselves `ray::DashboardAgent`)."""
    found = set(processes_with(str(temp)))
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(str(temp) in os.readlink(f"/proc/{entry}/fd/{fd}") for fd in fds):
                found.add(int(entry))
        except OSError:
            continue
    found.discard(os.getpid())
    return {pid for pid in found if pid in processes_with("")}


def test_connects_with_the_token_ray_start_wrote(token_cluster):
    address, home = token_cluster
    proc = launch(
        "-q", "--backend", "ray", "-np", "2", "--address", address, "--output", "all",
        SCRIPT, timeout=240, HOME=str(home),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "[rank 0] out from rank 0",
        "[rank 1] out from rank 1",
    ]
    assert "[rank 1] err from rank 1" in proc.stderr
    assert "_Worker pid=" not in proc.stdout + proc.stderr


def test_token_in_a_variable_and_rank0_output(token_cluster, tmp_path):
    address, home = token_cluster
    token = (home / ".ray" / "auth_token").read_text().strip()
    proc = launch(
        "-q", "--backend", "ray", "-np", "2", "--address", address, SCRIPT,
        timeout=240, HOME=str(tmp_path), RAY_AUTH_TOKEN=token,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["out from rank 0"]


def test_failure_shows_one_traceback(token_cluster):
    address, home = token_cluster
    proc = launch(
        "-q", "--backend", "ray", "-np", "2", "--address", address, SCRIPT, "--fail",
        timeout=240, HOME=str(home),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert err.count("Traceback (most recent call last)") == 1
    assert err.count("ValueError: boom on rank 1") == 1
    assert "runpy" not in err and "Unhandled error" not in err  # the script's frames only
    assert err.splitlines()[-1].startswith("distkeras-run: rank 1 of 2 failed")


def test_missing_token_fails_with_a_message_naming_it(token_cluster, tmp_path):
    address, _ = token_cluster
    proc = launch(
        "--backend", "ray", "-np", "2", "--address", address, SCRIPT,
        timeout=120, HOME=str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("distkeras-run: error: Cannot connect to the Ray cluster")
    assert "RAY_AUTH_TOKEN" in last and "~/.ray/auth_token" in last
    # Ray tried 3 times (RAY_NUM_REDIS_GET_RETRIES), not its default 20.
    assert proc.stderr.count("InvalidAuthToken") <= 3


def test_wrong_address_fails_before_ray_starts(tmp_path):
    port = free_port()  # nothing listens there
    proc = launch(
        "--backend", "ray", "-np", "2", "--address", f"127.0.0.1:{port}", SCRIPT,
        timeout=60, HOME=str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"Cannot reach the Ray cluster at '127.0.0.1:{port}'" in proc.stderr
    assert "Connecting to existing Ray cluster" not in proc.stderr  # Ray never tried


def test_ray_driver_under_the_mpi_launcher_says_so(monkeypatch):
    from distkeras.distributed.ray.connect import check_not_nested

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    with pytest.raises(RuntimeError, match="one of 2 ranks started by openmpi"):
        check_not_nested()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    check_not_nested()  # `distkeras-run -np 1`: a single process may drive Ray
