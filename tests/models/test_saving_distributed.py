"""model.save / save_weights under a real `mpirun -n 2`: one file per save, by rank 0.

The script (scripts/save_dist.py) checks on every rank that each file loads
right after its save returned and holds that rank's weights; here the test
checks the folder listing, the output, and the files against both ranks'
weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distkeras import layers
from distkeras.models import Sequential

MPIRUN = shutil.which("mpirun")
try:
    import mpi4py  # noqa: F401
except ImportError:
    MPIRUN = None
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason="mpirun or mpi4py not found")
SCRIPT = Path(__file__).parent / "scripts" / "save_dist.py"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp("save_dist")
    out = base / "out"
    out.mkdir()
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
        DISTKERAS_COLLECTIVE_TIMEOUT="60",  # a hang becomes an error
    )
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2"]
    cmd += [sys.executable, str(SCRIPT), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    for r in range(2):
        assert f"rank {r} OK" in text, text
    ranks = []
    for r in range(2):
        with np.load(base / f"rank{r}.npz") as f:
            ranks.append(
                {
                    "weights": [f[f"arr_{i}"] for i in range(4)],
                    "mid_slots": f["mid_slots"],
                }
            )
    return out, text, ranks


@needs_mpi
def test_each_save_writes_exactly_one_file(job):
    out, _, _ = job
    # m.dkm, w.dkw: after fit; mid.dkm: from a callback; m0.dkm: the per-rank path
    # (m{rank}.dkm) of the issue, written once, by rank 0; afile: the unwritable parent;
    # only0.dkw: saved by rank 0 alone (written, then the mismatch is reported).
    # best.dkw: ModelCheckpoint(save_best_only=True) on batch logs.
    assert sorted(os.listdir(out)) == [
        "afile",
        "best.dkw",
        "m.dkm",
        "m0.dkm",
        "mid.dkm",
        "only0.dkw",
        "w.dkw",
    ]


@needs_mpi
def test_files_hold_the_weights_of_every_rank(job):
    from distkeras.models import load_model

    out, _, ranks = job
    for r in range(2):
        np.testing.assert_array_equal(ranks[r]["mid_slots"], ranks[0]["mid_slots"])
    for name in ("m.dkm", "m0.dkm"):
        model = load_model(out / name)
        for r in range(2):
            for got, want in zip(model.get_weights(), ranks[r]["weights"]):
                np.testing.assert_array_equal(got, want)


@needs_mpi
def test_mid_epoch_save_gathers_the_sharded_slots_first(job):
    from distkeras.models import load_model

    out, text, ranks = job
    for r in range(2):
        assert f"rank {r}: slots sharded before the save" in text, text
    model = load_model(out / "mid.dkm")
    saved = np.concatenate([v.numpy().reshape(-1) for v in model.optimizer.variables])
    np.testing.assert_array_equal(saved, ranks[0]["mid_slots"])


@needs_mpi
def test_per_rank_paths_warn_on_the_other_ranks(job):
    _, text, _ = job
    assert "rank 1 warned: save(" in text and "m1.dkm')" in text, text
    assert "rank 0 warned" not in text, text


@needs_mpi
def test_unwritable_path_raises_on_every_rank(job):
    _, text, _ = job
    assert "rank 0 raised NotADirectoryError: [Errno 20]" in text, text
    assert (
        "rank 1 raised NotADirectoryError: The coordinator (rank 0) failed save_weights(" in text
    ), text
    assert "did not raise" not in text, text


@needs_mpi
def test_model_checkpoint_best_only_follows_rank_0_on_every_rank(job):
    """Batch logs differ between ranks; rank 0's decides, so all ranks save together."""
    _, text, _ = job
    lines = {}
    for r in range(2):
        line = next(x for x in text.splitlines() if x.startswith(f"rank {r} best "))
        best, losses = line[len(f"rank {r} best ") :].split(" batch losses ")
        lines[r] = (float(best), losses)
    assert lines[0][1] != lines[1][1], text  # the ranks' own batch losses disagree
    assert lines[0][0] == lines[1][0], text
    assert lines[0][0] == min(json.loads(lines[0][1])), text


@needs_mpi
def test_saving_on_rank_0_only_is_an_error_that_says_why(job):
    _, text, _ = job
    assert "no mismatch" not in text, text
    assert 'rank 0 mismatch, notes: ["save_weights(' in text, text
    assert "is collective in a distributed run: every rank calls it" in text, text
    assert "rank 1 mismatch, notes: []" in text, text


class Rank1:
    """Rank 1 of two, whose rank 0 failed to write."""

    rank, size = 1, 2

    def broadcast_object(self, obj, root=0):
        return {"what": obj["what"], "error": ["PermissionError", "[Errno 13] Permission denied"]}


def _small_model():
    return Sequential([layers.Dense(2, input_shape=(3,))])


def test_overwrite_false_refuses_an_existing_file(tmp_path):
    model = _small_model()
    model.save_weights(tmp_path / "w.dkw")
    before = (tmp_path / "w.dkw").read_bytes()
    model.layers[0].kernel.assign(np.ones((3, 2), "float32"))
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save_weights(tmp_path / "w.dkw", overwrite=False)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(tmp_path / "w.dkw", overwrite=False)
    assert (tmp_path / "w.dkw").read_bytes() == before


def test_a_non_coordinator_writes_nothing_and_raises_rank_0s_error(tmp_path):
    from distkeras.models.saving import save_model, save_weights

    model = _small_model()
    for save, name in ((save_weights, "w.dkw"), (save_model, "m.dkm")):
        with pytest.raises(PermissionError, match=r"The coordinator \(rank 0\) failed save"):
            save(model, tmp_path / name, communicator=Rank1())
    assert list(tmp_path.iterdir()) == []


def test_make_dirs_creates_the_folder(tmp_path):
    from distkeras.models.saving import save_weights

    model = _small_model()
    save_weights(model, tmp_path / "a" / "b" / "w.dkw", make_dirs=True)
    fresh = _small_model()
    fresh.load_weights(tmp_path / "a" / "b" / "w.dkw")
    for got, want in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
