"""A user's train_step (GradientTape + optimizer.apply) and an overridden compute_loss
train data-parallel with no change: under mpirun and Ray, 2 ranks give the weights
of one process (bitwise in deterministic mode)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.models import custom_steps
from tests.ray_harness import local_ray

SCRIPT = Path(__file__).parent / "scripts" / "custom_step_train.py"
ROOT = Path(__file__).resolve().parents[2]
MPIRUN = shutil.which("mpirun")
KINDS = ["custom_step", "compute_loss", "two_optimizers"]


def _env() -> dict:
    return dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )


def _run(tmp_path: Path, n: int, kind: str, det: bool) -> list[dict]:
    prefix = str(tmp_path / f"{kind}_n{n}_{det}")
    args = [sys.executable, str(SCRIPT), prefix, kind] + (["det"] if det else [])
    if n > 1:
        args = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n), *args]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = []
    for r in range(n):
        with open(f"{prefix}.rank{r}.json") as f:
            out.append(json.load(f))
    return out


def _weights(result) -> list[np.ndarray]:
    return [np.asarray(w, dtype="float32") for w in result["weights"]]


def _check(ranks: list, single, bitwise: bool, metric: str) -> None:
    for res in ranks:
        for a, b in zip(_weights(res), _weights(single)):
            if bitwise:
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        # Sample-weighted metrics are reduced exactly across ranks.
        np.testing.assert_allclose(res["history"][metric], single["history"][metric], rtol=1e-6)
    for res in ranks[1:]:  # replicas never drift
        for a, b in zip(_weights(res), _weights(ranks[0])):
            np.testing.assert_array_equal(a, b)


METRIC = {"custom_step": "acc", "compute_loss": "accuracy", "two_optimizers": "accuracy"}


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
@pytest.mark.parametrize("det", [False, True], ids=["default", "deterministic"])
@pytest.mark.parametrize("kind", KINDS)
def test_mpirun_two_ranks_give_one_process_weights(tmp_path, kind, det):
    pytest.importorskip("mpi4py")
    single = _run(tmp_path, 1, kind, det)[0]
    _check(_run(tmp_path, 2, kind, det), single, bitwise=det, metric=METRIC[kind])


def test_custom_step_is_what_trains(tmp_path):
    """The user's step ran (it counts itself), and training moved the weights."""
    x, y = custom_steps.make_data()
    model = custom_steps.build("custom_step", 0)
    model.fit(x, y, batch_size=20, epochs=1, verbose=0)
    assert model.steps_seen == 6  # ceil(103 / 20)


@pytest.fixture(scope="module")
def ray_local():
    with local_ray(num_cpus=2, object_store_mb=100) as ray:
        yield ray


def _single(kind: str, det: bool) -> dict:
    import distkeras.distributed as dist

    dist.shutdown()
    dist.initialize("local", deterministic=det)
    try:
        weights, history = custom_steps.fit(kind)
    finally:
        dist.shutdown()
    return {"weights": weights, "history": history}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", KINDS)
def test_ray_two_workers_give_one_process_weights(ray_local, kind):
    from distkeras.distributed.ray import run

    result = run(custom_steps.fit_job, num_workers=2, config={"kind": kind}, timeout=120)
    assert result["size"] == 2
    for mode, det in (("default", False), ("det", True)):
        weights, history = result[mode]
        single = _single(kind, det)
        _check([{"weights": weights, "history": history}], single, det, METRIC[kind])
