"""distkeras.horovod under `mpirun -n N`: the scripts check on every rank; these tests
assert that every rank finished, and compare a Horovod-style script on 2 ranks with
the same script in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distkeras.saving.file_format import read_container
from tests.distributed.test_mpi import MPIRUN, REPO, run_mpi

pytest.importorskip("mpi4py")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")

SCRIPTS = Path(__file__).parent / "scripts"
EXAMPLE = REPO / "examples" / "horovod_keras_mnist.py"


@pytest.mark.parametrize("n", [2, 3])
def test_collectives_join_and_distributed_optimizer(n):
    rc, out, _ = run_mpi(n, str(SCRIPTS / "collectives.py"), timeout=180)
    assert rc == 0, out
    for r in range(n):
        assert f"ALL OK rank {r}" in out, out


def test_callbacks_broadcast_metric_average_warmup():
    rc, out, _ = run_mpi(2, str(SCRIPTS / "callbacks.py"), timeout=180)
    assert rc == 0, out
    assert "ALL OK rank 0" in out and "ALL OK rank 1" in out, out


def _weights(folder: Path, rank: int) -> list[np.ndarray]:
    with np.load(folder / f"weights_rank{rank}.npz") as f:
        return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]


def test_horovod_script_two_ranks_equals_one_process(tmp_path):
    # Same global batch (2 x 16 = 32) and rate (0.01 x 2 = 0.02 x 1): the same steps.
    common = ["--epochs", "2", "--warmup-epochs", "0", "--no-shuffle"]
    one, two, ckpt = tmp_path / "one", tmp_path / "two", tmp_path / "ckpt"
    one.mkdir()
    two.mkdir()
    ckpt.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env = {k: v for k, v in env.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *common, "--batch-size", "32", "--lr", "0.02"]
        + ["--dump", str(one)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout
    rc, out, _ = run_mpi(
        2,
        str(EXAMPLE),
        *common,
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--dump",
        str(two),
        "--checkpoint-dir",
        str(ckpt),
        timeout=240,
    )
    assert rc == 0, out
    # `if hvd.rank() == 0:` checkpointing: one weights file per epoch, the last one
    # holding the trained weights.
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == ["checkpoint-1.weights.h5", "checkpoint-2.weights.h5"], names
    w0, w1, ref = _weights(two, 0), _weights(two, 1), _weights(one, 0)
    for a, b, c in zip(w0, w1, ref):
        np.testing.assert_array_equal(a, b)  # replicas identical
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)  # = one process, global batch
    saved = list(read_container(ckpt / "checkpoint-2.weights.h5")[1].values())
    assert len(saved) == len(w0)
    for a in w0:
        assert any(s.shape == a.shape and np.array_equal(s, a) for s in saved)
    # The run trained (weights moved from the broadcast initial state) and its logs,
    # averaged by MetricAverageCallback, match the one-process logs.
    h_two = json.loads((two / "history_rank1.json").read_text())
    h_one = json.loads((one / "history_rank0.json").read_text())
    np.testing.assert_allclose(h_two["loss"], h_one["loss"], rtol=1e-4)
    assert h_two["loss"][1] < h_two["loss"][0]
    assert "Test accuracy" in out or "test accuracy" in out
