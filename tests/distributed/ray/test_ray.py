"""The Ray backend on a real local Ray cluster: collectives, data-parallel fit, failures."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

import distkeras.distributed as dist  # noqa: E402
from distkeras.distributed.ray import (  # noqa: E402
    WorkerError,
    WorkersLostError,
    get_context,
    run,
    run_script,
)
from distkeras.distributed.ray.driver import _resources  # noqa: E402
from tests.distributed.ray import jobs  # noqa: E402

pytestmark = pytest.mark.timeout(120)
HERE = Path(__file__).parent
ROOT = HERE.parents[2]
DP_TRAIN = ROOT / "tests" / "models" / "scripts" / "dp_train.py"


def _single_fit(deterministic: bool, optimizer: str = "adam", epochs: int = 4):
    """The same fit in this process (local communicator)."""
    dist.shutdown()
    dist.initialize("local", deterministic=deterministic)
    try:
        x, y = jobs.make_data()
        model = jobs.make_model(3, optimizer)
        hist = model.fit(x, y, batch_size=20, epochs=epochs, verbose=0)
        return model.get_weights(), hist.history
    finally:
        dist.shutdown()


@pytest.mark.parametrize("transport", ["shared_memory", "object_store"])
def test_collectives_on_three_ranks(ray_cluster, transport):
    """Every collective, with large all-reduces over shared memory and the object store."""
    env = {"DISTKERAS_RAY_SHM": "0"} if transport == "object_store" else None
    config = {"timeout_in": "allreduce" if transport == "shared_memory" else "barrier"}
    result = run(jobs.collectives_job, num_workers=3, env=env, config=config)
    assert len(result["ranks"]) == 3
    for rank, checks in enumerate(result["ranks"]):
        assert checks["mean_big"] < 1e-12
        assert list(checks["mismatch"]) == [[2], True], checks["mismatch"]
        assert list(checks["mismatch_big"]) == [[2], True], checks["mismatch_big"]
        assert list(checks["topology"]) == [rank, 3, "ray"]
        assert checks["transport"] == transport
        skip = ("mean_big", "mismatch", "mismatch_big", "topology", "transport")
        failed = [k for k, v in checks.items() if k not in skip and not v]
        assert not failed, (rank, failed)
    missing, waited, text = result["timeout"]
    assert missing == [1] and waited < 30 and "never arrived" in text


def test_stall_warning_names_the_late_rank(ray_cluster):
    ranks = run(jobs.stall_job, num_workers=3)
    assert ranks[1]["warnings"] == [], ranks  # the late rank itself waits for nobody
    for r in (0, 2):
        (warning,) = ranks[r]["warnings"]  # once per stall
        assert warning.startswith(f"[distkeras] stall: rank {r} has waited"), warning
        assert "rank(s) [1] have not arrived" in warning and "barrier()" in warning, warning
    for r in range(3):  # the 3 s gap between two collectives feeds the adaptive timeout
        assert ranks[r]["slowest"] >= 3.0, ranks


def test_shared_memory_allreduce_stall_warning_names_the_late_rank(ray_cluster):
    ranks = run(jobs.shm_stall_job, num_workers=3)
    assert ranks[1]["warnings"] == [], ranks  # the late rank itself waits for nobody
    for r in (0, 2):
        assert ranks[r]["transport"] == "shared_memory" and ranks[r]["correct"], ranks[r]
        (warning,) = ranks[r]["warnings"]  # once per stall
        assert warning.startswith(f"[distkeras] stall: rank {r} has waited"), warning
        assert "rank(s) [1] have not arrived" in warning and "allreduce" in warning, warning
        other = 2 - r  # the other early rank had arrived in the segment
        assert f"rank(s) [{other}] arrived" in warning, warning


def test_two_worker_fit_equals_one_process(ray_cluster):
    x, y = jobs.make_data()
    config = {"x": ray_cluster.put(x), "y": ray_cluster.put(y)}
    result = run(jobs.train_job, num_workers=2, config=config)
    assert (result["size"], result["backend"]) == (2, "ray")
    weights, history = result["default"]
    ref_weights, ref_history = _single_fit(deterministic=False)
    for a, b in zip(weights, ref_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in ref_history:
        np.testing.assert_allclose(history[key], ref_history[key], rtol=1e-5)
    det_weights, det_history = result["det"]
    ref_det, ref_det_history = _single_fit(deterministic=True)
    for a, b in zip(det_weights, ref_det):
        assert np.array_equal(a, b)  # bitwise in deterministic mode
    assert det_history == ref_det_history
    assert len(set(result["ranks_agree"])) == 1


def _mpirun_env() -> dict:
    return dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )


def _weights(prefix: str, rank: int) -> list[np.ndarray]:
    with np.load(f"{prefix}.rank{rank}.npz") as f:
        return [f[f"arr_{i}"] for i in range(4)]


def test_script_runner_matches_mpirun(ray_cluster, tmp_path):
    ray_prefix = str(tmp_path / "ray")
    assert run_script(DP_TRAIN, [ray_prefix, "det"], num_workers=2) == 0
    ray_weights = _weights(ray_prefix, 0)
    for a, b in zip(ray_weights, _weights(ray_prefix, 1)):
        assert np.array_equal(a, b)
    assert (tmp_path / "ray.csv").exists()  # rank 0 wrote the CSVLogger file
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("mpirun not found: compared Ray runs only")
    mpi_prefix = str(tmp_path / "mpi")
    cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-n", "2", sys.executable]
    proc = subprocess.run(
        cmd + [str(DP_TRAIN), mpi_prefix, "det"],
        capture_output=True,
        text=True,
        timeout=100,
        env=_mpirun_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for a, b in zip(ray_weights, _weights(mpi_prefix, 0)):
        assert np.array_equal(a, b)


def test_masked_weighted_loss_on_two_ray_workers_matches_one_process(ray_cluster, tmp_path):
    """Loss divisors that depend on the data (an output mask, per-step weights piled on
    rank 0's shard) are summed across the Ray workers too: the one-process weights."""
    script = ROOT / "tests" / "models" / "scripts" / "exact_divisors.py"
    ray_prefix, one_prefix = str(tmp_path / "ray"), str(tmp_path / "one")
    assert run_script(script, [ray_prefix, "mask", "default"], num_workers=2) == 0
    proc = subprocess.run(
        [sys.executable, str(script), one_prefix, "mask", "default"],
        capture_output=True,
        text=True,
        timeout=100,
        env=_mpirun_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in range(2):
        for a, b in zip(_weights(ray_prefix, rank), _weights(one_prefix, 0)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_script_exit_status_and_missing_script(ray_cluster, tmp_path):
    script = HERE / "scripts" / "exit_script.py"
    start = time.monotonic()
    assert run_script(script, ["1", "3"], num_workers=2) == 3
    assert time.monotonic() - start < 60
    assert run_script(tmp_path / "nope.py", [], num_workers=2) == 2


def test_user_exception_reraises_on_driver_naming_rank(ray_cluster):
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        run(jobs.failing_job, num_workers=2, max_failures=3)  # user errors are not retried
    assert time.monotonic() - start < 30
    err = info.value
    assert err.rank == 1
    assert "rank 1 of 2" in str(err) and "boom on purpose" in str(err)
    assert "Traceback" in err.traceback_text and "failing_job" in err.traceback_text
    assert isinstance(err.__cause__, ValueError)


def _kill_when_ready(pid_file: Path, killed: list, deadline_s: float = 90.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["backup_and_restore", "manual", "no_restarts_left"])
def test_killed_actor_recovers_to_uninterrupted_weights(ray_cluster, tmp_path, mode):
    from distkeras import callbacks
    from distkeras.models import trainer

    if mode == "backup_and_restore" and not (
        hasattr(callbacks, "BackupAndRestore")
        and hasattr(trainer.Trainer, "_capture_training_state")
    ):
        pytest.skip("BackupAndRestore cannot resume yet (the 'manual' case covers recovery)")
    killed: list[int] = []
    killer = threading.Thread(
        target=_kill_when_ready, args=(tmp_path / "victim.pid", killed), daemon=True
    )
    killer.start()
    kwargs = dict(
        num_workers=2,
        # 'manual': the job saves and loads weights per epoch itself (SGD has no state).
        config={"epochs": 4, "manual": mode == "manual"},
        max_failures=0 if mode == "no_restarts_left" else 1,
        checkpoint_dir=tmp_path,
        deterministic=True,
    )
    if mode == "no_restarts_left":
        with pytest.raises(WorkersLostError, match="rank 1 died") as info:
            run(jobs.recovery_job, **kwargs)
        assert info.value.failures == 1 and killed
        return
    result = run(jobs.recovery_job, **kwargs)
    killer.join(timeout=1)
    assert killed, "the victim never wrote its pid"
    assert result["attempt"] == 1
    expected, _ = _single_fit(deterministic=True, optimizer="sgd")
    for a, b in zip(result["weights"], expected):
        assert np.array_equal(a, b)


def test_argument_checks_and_outside_worker():
    with pytest.raises(ValueError, match="Received: num_workers=0"):
        run(jobs.train_job, num_workers=0)
    with pytest.raises(ValueError, match="Received: placement_strategy='DIAGONAL'"):
        run(jobs.train_job, num_workers=2, placement_strategy="DIAGONAL")
    with pytest.raises(ValueError, match="Received: max_failures=-2"):
        run(jobs.train_job, max_failures=-2)
    with pytest.raises(ValueError, match="resources_per_worker"):
        run(jobs.train_job, resources_per_worker={"CPU": -1})
    assert _resources(None, True) == {"CPU": 1.0, "GPU": 1.0}  # use_gpu: one GPU per worker
    assert _resources({"CPU": 2, "GPU": 0}, False) == {"CPU": 2.0}
    with pytest.raises(RuntimeError, match="inside a worker"):
        get_context()
    with pytest.raises(RuntimeError, match="needs to run inside a worker"):
        dist.initialize("ray")
    dist.shutdown()


@pytest.fixture
def second_node(ray_cluster):
    """A second Ray node on this machine (`ray start --address`), stopped afterwards."""
    ray = ray_cluster
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    if not os.path.exists(ray_bin):
        pytest.skip("the `ray` command is not installed")
    address = ray.get_runtime_context().gcs_address
    cmd = [ray_bin, "start", "--address", address, "--num-cpus", "2", "--block"]
    cmd += ["--object-store-memory", str(100 * 1024 * 1024), "--disable-usage-stats"]
    # `ray start` records the head's address for later `ray.init()` calls; put back the old one.
    address_file = Path("/tmp/ray/ray_current_cluster")
    saved = address_file.read_bytes() if address_file.exists() else None
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip("the second Ray node did not come up within 60 s")
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if saved is not None:
            address_file.write_bytes(saved)
        elif address_file.exists() and address in address_file.read_text():
            address_file.unlink()


def test_script_runner_on_two_nodes(second_node, tmp_path):
    prefix = str(tmp_path / "two_nodes")
    env = {"DISTKERAS_RAY_PLACEMENT": "STRICT_SPREAD"}  # one worker per node
    assert run_script(DP_TRAIN, [prefix, "det"], num_workers=2, env=env) == 0
    expected, _ = _single_fit(deterministic=True)
    for rank in (0, 1):
        for a, b in zip(_weights(prefix, rank), expected):
            assert np.array_equal(a, b)
