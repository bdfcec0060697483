"""`distkeras-run` running real jobs: 2-rank training, exit codes, GPUs per rank,
signals and timeouts that leave no process behind, and Slurm submission
through stand-in `sbatch`/`srun` commands.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from launcher import slurm
from launcher.plan import Context

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).parent / "scripts"
CTX = Context.from_system()
needs_mpi = pytest.mark.skipif(
    CTX.mpirun() is None or not CTX.has_module("mpi4py"), reason="needs mpirun and mpi4py"
)


def launcher_env(**extra: str) -> dict:
    drop = ("OMPI_", "PMIX_", "PRTE_", "SLURM_", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["DISTKERAS_COLLECTIVE_TIMEOUT"] = "60"
    env.update(extra)
    return env


def launch(*args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        cwd=ROOT,
        env=launcher_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker`."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != b"Z":
            found.append(int(entry))
    return found


def wait_for(predicate, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@needs_mpi
def test_two_rank_mnist_through_the_launcher():
    proc = launch("-np", "2", "python", "examples/mnist_mlp.py", "--epochs", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Test accuracy")]
    assert len(lines) == 1, proc.stdout  # only rank 0 prints
    assert float(lines[0].split()[-1]) > 0.5


@needs_mpi
@pytest.mark.parametrize("np_,code,rank", [(2, 3, 1), (2, 0, 1), (1, 5, 0)])
def test_exit_code_is_the_jobs(tmp_path, np_, code, rank):
    proc = launch(
        "-np", str(np_), str(SCRIPTS / "rank_env.py"), str(tmp_path), str(code), str(rank)
    )
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"rank{r}.json" for r in range(np_)]


@needs_mpi
def test_environment_and_gpus_per_rank(tmp_path):
    proc = launch(
        "-np", "2", "--gpus-per-proc", "2", "--env", "FROM_ENV_FLAG=yes",
        "python", str(SCRIPTS / "rank_env.py"), str(tmp_path),
        CUDA_VISIBLE_DEVICES="7,6,5,4", DISTKERAS_TEST_VALUE="42",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in seen] == ["7,6", "5,4"]
    assert all(s["FROM_ENV_FLAG"] == "yes" and s["DISTKERAS_TEST_VALUE"] == "42" for s in seen)
    assert all(s["OMP_NUM_THREADS"] == str(max(1, CTX.cores // 2)) for s in seen)


def _start_sleepers(tmp_path: Path, *extra: str, ignore: bool = False, ranks: int = 2, **env):
    """Starts `distkeras-run *extra sleeper.py` and waits until every rank is up."""
    marker = f"dkmarker-{uuid.uuid4().hex}"
    script = [str(SCRIPTS / "sleeper.py"), str(tmp_path), marker] + (["ignore"] if ignore else [])
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher", *extra, *script],
        cwd=ROOT,
        env=launcher_env(DISTKERAS_RUN_GRACE="1", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = wait_for(
        lambda: len(list(tmp_path.glob("ready.*"))) == ranks or launcher.poll() is not None
    )
    if not ready or launcher.poll() is not None:
        launcher.kill()
        pytest.fail("the ranks did not start: " + (launcher.communicate()[0] or ""))
    ranks = [int(p.read_text()) for p in tmp_path.glob("ready.*")]
    assert all(pid in processes_with(marker) for pid in ranks)
    return launcher, marker


def _assert_gone(launcher: subprocess.Popen, marker: str, expected_rc: int) -> None:
    try:
        out, _ = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == expected_rc, out
    left = processes_with(marker) if not wait_for(lambda: not processes_with(marker), 20) else []
    for pid in left:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"processes left behind: {left}"


@needs_mpi
@pytest.mark.parametrize(
    "sig,ignore",
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigint", "sigterm", "sigint-rank-ignores-it"],
)
def test_signal_leaves_no_process_behind(tmp_path, sig, ignore):
    launcher, marker = _start_sleepers(tmp_path, "-np", "2", ignore=ignore)
    launcher.send_signal(sig)
    _assert_gone(launcher, marker, 128 + sig)


@needs_mpi
def test_timeout_ends_the_job(tmp_path):
    launcher, marker = _start_sleepers(tmp_path, "-np", "2", "--timeout", "3")
    _assert_gone(launcher, marker, 124)


@needs_mpi
def test_killed_mpirun_leaves_no_orphan_rank(tmp_path):
    launcher, marker = _start_sleepers(tmp_path, "-np", "2", ignore=True)
    ranks = {int(p.read_text()) for p in tmp_path.glob("ready.*")}
    mpirun = [pid for pid in processes_with(marker) if pid != launcher.pid and pid not in ranks]
    assert mpirun, "mpirun not found"
    for pid in mpirun:
        os.kill(pid, signal.SIGKILL)
    _assert_gone(launcher, marker, 128 + signal.SIGKILL)


def test_single_process_signal(tmp_path):
    launcher, marker = _start_sleepers(tmp_path, "-np", "1", ranks=1)
    launcher.send_signal(signal.SIGTERM)
    _assert_gone(launcher, marker, 128 + signal.SIGTERM)


def test_slurm_submits_the_filled_script(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "sbatch"
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{record}.args"\n'
        f'cat > "{record}.stdin"\n'
        'echo "Submitted batch job 42"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    proc = launch(
        "--backend", "slurm", "-np", "3", "--wait", "--env", "A=1",
        "python", "examples/mnist_mlp.py", "--epochs", "2", PATH=path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Submitted batch job 42" in proc.stdout
    assert (tmp_path / "sbatch.args").read_text().split() == ["--wait"]
    expected = slurm.render_sbatch(
        3, ["python", "examples/mnist_mlp.py", "--epochs", "2"], env={"A": "1"}
    )
    assert (tmp_path / "sbatch.stdin").read_text() == expected


@pytest.mark.skipif(not CTX.has_module("mpi4py"), reason="needs mpi4py")
def test_slurm_inside_an_allocation_runs_srun(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "srun"
    (bin_dir / "srun").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}.args"\nexit 7\n')
    (bin_dir / "srun").chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    proc = launch(
        "--backend", "slurm", str(SCRIPTS / "rank_env.py"), str(tmp_path),
        PATH=path, SLURM_JOB_ID="5", SLURM_NTASKS="4", SLURM_CPUS_PER_TASK="2",
    )  # fmt: skip
    assert proc.returncode == 7, proc.stdout + proc.stderr
    args = (tmp_path / "srun.args").read_text().split("\n")[:-1]
    assert args == [
        "--mpi=pmix", "--ntasks=4", "--kill-on-bad-exit=1", "--cpus-per-task=2",
        sys.executable, str(SCRIPTS / "rank_env.py"), str(tmp_path),
    ]  # fmt: skip


def _ray_runner_available() -> bool:
    try:
        from distkeras.distributed.ray import run_script  # noqa: F401
    except Exception:  # noqa: BLE001 - any import problem means: not available here
        return False
    return True


@pytest.mark.skipif(not _ray_runner_available(), reason="distkeras.distributed.ray not available")
def test_ray_run_through_the_launcher():
    proc = launch(
        "--backend",
        "ray",
        "-np",
        "2",
        "python",
        "examples/mnist_mlp.py",
        "--epochs",
        "1",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Test accuracy" in proc.stdout
