"""Data-parallel fit/evaluate/predict under real `mpirun`, against one process."""

from __future__ import annotations

import json
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
SCRIPT = Path(__file__).parent / "scripts" / "dp_train.py"
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    return env


def run(tmp_path: Path, n: int, mode: str = "default", **env: str) -> tuple[list[dict], str]:
    prefix = str(tmp_path / f"n{n}_{mode}")
    if n == 1:
        cmd = [sys.executable, str(SCRIPT), prefix, mode]
    else:
        cmd = [
            MPIRUN,
            "--allow-run-as-root",
            "--oversubscribe",
            "-n",
            str(n),
            sys.executable,
            str(SCRIPT),
            prefix,
            mode,
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**_env(), **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = []
    for r in range(n):
        with np.load(f"{prefix}.rank{r}.npz") as f:
            weights = [f[f"arr_{i}"] for i in range(4)]
            results.append(
                {
                    "weights": weights,
                    "history": json.loads(str(f["history"])),
                    "evaluate": json.loads(str(f["evaluate"])),
                    "pred": f["pred"],
                    "slots": f["slots"],
                }
            )
    return results, proc.stdout


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return run(tmp_path_factory.mktemp("single"), 1)[0][0]


@pytest.mark.parametrize(
    "n,env",
    [
        (2, {}),
        (3, {}),
        (4, {}),
        (2, {"DISTKERAS_OVERLAP": "1", "DISTKERAS_BUCKET_BYTES": "200"}),  # overlapped buckets
        (2, {"DISTKERAS_OVERLAP": "1"}),  # one overlapped bucket
        (3, {"DISTKERAS_SHARD_UPDATE": "0"}),  # all-reduce, every rank updates everything
    ],
    ids=[
        "n2",
        "n3_uneven",
        "n4_oversubscribed",
        "n2_overlap_small_buckets",
        "n2_overlap",
        "n3_unsharded",
    ],
)
def test_n_ranks_match_one_process(tmp_path, single, n, env):
    results, _ = run(tmp_path, n, **env)
    for res in results:
        for a, b in zip(res["weights"], single["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for key, values in single["history"].items():
            np.testing.assert_allclose(res["history"][key], values, rtol=1e-5, atol=1e-6)
        for key, value in single["evaluate"].items():
            np.testing.assert_allclose(res["evaluate"][key], value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res["pred"], single["pred"], rtol=1e-5, atol=1e-6)
        # The optimizer's slots too: whole again after a sharded fit.
        np.testing.assert_allclose(res["slots"], single["slots"], rtol=1e-4, atol=1e-7)
    # Every rank holds bitwise the same replica, and the same optimizer state.
    for res in results[1:]:
        for a, b in zip(res["weights"], results[0]["weights"]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(res["slots"], results[0]["slots"])


def test_sharded_slots_are_refused_mid_epoch_until_synced(tmp_path, single):
    """Each rank updates 1/N of the slots; reading them mid-epoch is an error, not stale data."""
    results, out = run(tmp_path, 2, "slots")
    assert out.count("sharded slots refused") == 2, out
    # The last mid-epoch checkpoint (step 20 of 24) holds whole slots: the same
    # optimizer state as one process's checkpoint at that step.
    from distkeras.models import load_model

    single_slots, _ = run(tmp_path, 1, "slots")
    # After fit, one train_on_batch (all-reduce step on 2 ranks): still the same state.
    for res in results:
        np.testing.assert_allclose(res["slots"], single_slots[0]["slots"], rtol=1e-4, atol=1e-7)
    one, two = (load_model(tmp_path / f"n{n}_slots.ckpt.dkm") for n in (1, 2))
    assert int(two.optimizer.iterations.numpy()) == 20
    for a, b in zip(two.optimizer.variables, one.optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-7)


def test_deterministic_mode_is_bitwise_across_world_sizes(tmp_path):
    ref, _ = run(tmp_path, 1, "det")
    for n in (2, 4):
        results, _ = run(tmp_path, n, "det")
        for res in results:
            for a, b in zip(res["weights"], ref[0]["weights"]):
                np.testing.assert_array_equal(a, b)


def test_only_rank0_prints_and_writes_and_early_stopping_is_shared(tmp_path):
    results, stdout = run(tmp_path, 2, "early")
    assert stdout.count("Epoch 1/4") == 1
    lengths = {len(r["history"]["loss"]) for r in results}
    assert lengths == {2}
    rows = (tmp_path / "n2_early.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch") and len(rows) == 3


def _fields(tmp_path: Path, n: int, mode: str, key: str) -> list:
    out = []
    for r in range(n):
        with np.load(tmp_path / f"n{n}_{mode}.rank{r}.npz") as f:
            out.append(f[key].item())
    return out


def test_mid_epoch_decisions_of_rank0_reach_every_rank_at_the_same_step(tmp_path):
    """A callback that decides per batch makes fit broadcast decisions every step."""
    results, _ = run(tmp_path, 2, "batchstop")
    assert _fields(tmp_path, 2, "batchstop", "steps") == [7, 7]
    assert _fields(tmp_path, 2, "batchstop", "lr") == [0.5, 0.5]
    for a, b in zip(results[0]["weights"], results[1]["weights"]):
        np.testing.assert_array_equal(a, b)


def test_without_per_batch_deciders_decisions_cross_ranks_once_per_epoch(tmp_path):
    """CSVLogger (and History, the progress bar) never decide mid-epoch: no per-step sync."""
    run(tmp_path, 2)
    # 4 epochs of 6 steps: one decision broadcast per epoch plus fit's set-up
    # (weights, optimizer state), where a per-step sync would make at least 24.
    counts = _fields(tmp_path, 2, "default", "broadcasts")
    assert counts[0] == counts[1] and counts[0] <= 4 + 3, counts


def test_script_without_initialize_runs_data_parallel_under_mpirun():
    """examples/mnist_mlp.py never calls initialize(): fit auto-detects the mpirun launch."""
    cmd = [
        MPIRUN,
        "--allow-run-as-root",
        "--oversubscribe",
        "-n",
        "2",
        sys.executable,
        str(ROOT / "examples" / "mnist_mlp.py"),
        "--epochs",
        "2",
        "--verbose",
        "2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("Test accuracy") == 1  # only the coordinator prints
    assert proc.stdout.count("Epoch 1/2") == 1
    # 1,437 training samples at global batch 128 -> 12 steps on both ranks together.
    assert "12/12" in proc.stdout
