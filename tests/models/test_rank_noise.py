"""Default-mode data parallelism: each rank draws its own Dropout noise, and resuming
stays bitwise.

With the same seed on every rank, the layers' random streams used to be identical
on every rank, so the shards of a global batch got the same masks row for row
(correlated noise, unlike one process). `fit` now folds the rank into each layer's
stream once; the folded states are what backups save per rank.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import distkeras
from distkeras import layers
from distkeras.backend.random import SeedGenerator
from tests.models.test_data_parallel import MPIRUN, _env

SCRIPT = Path(__file__).parent / "scripts" / "rank_noise.py"
mpi = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")


def test_folding_keeps_rank_0_and_moves_other_ranks_to_their_own_stream():
    a, b, c = SeedGenerator(42), SeedGenerator(42), SeedGenerator(42)
    b.fold_in_rank(0)
    c.fold_in_rank(1)
    first = a.random((1000,))
    np.testing.assert_array_equal(b.random((1000,)), first)
    other = c.random((1000,))
    assert not np.array_equal(other, first)
    # A saved folded state continues the rank's own stream (what a backup restores).
    d = SeedGenerator(0)
    d.set_state(c.get_state())
    np.testing.assert_array_equal(d.random((100,)), c.random((100,)))


def _fold_on(model, rank: int, size: int, deterministic: bool = False) -> None:
    comm = SimpleNamespace(rank=rank, size=size, deterministic=deterministic)
    object.__setattr__(model, "_communicator", lambda: comm)
    model._fold_rank_into_rng()


def test_a_model_is_folded_once_per_rank_and_not_in_deterministic_mode():
    def states(seed):
        distkeras.utils.set_random_seed(seed)
        m = distkeras.Sequential(
            [distkeras.Input((4,)), layers.Dropout(0.5), layers.GaussianNoise(0.1)]
        )
        return m, m.rng_states()

    model, before = states(3)
    _fold_on(model, 1, 2)
    folded = model.rng_states()
    assert all(f != b for f, b in zip(folded, before))
    _fold_on(model, 1, 2)  # every fit / train_on_batch asks again: nothing moves twice
    assert model.rng_states() == folded
    for rank, size, det in ((0, 2, False), (1, 2, True), (0, 1, False)):
        model, before = states(3)
        _fold_on(model, rank, size, det)
        assert model.rng_states() == before


@mpi
def test_two_ranks_with_one_seed_draw_different_masks_for_the_same_local_rows(tmp_path):
    prefix = str(tmp_path / "noise")
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2"]
    cmd += [sys.executable, str(SCRIPT), prefix]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m0, m1 = (np.load(f"{prefix}.rank{r}.npz")["masks"] for r in range(2))
    assert m0.shape == m1.shape == (3, 16, 32)  # 3 steps, 16 local rows each
    agree = float((m0 == m1).mean())
    assert 0.4 < agree < 0.6, agree  # independent masks agree on about half the entries
    for m in (m0, m1):
        assert 0.4 < float(m.mean()) < 0.6  # each still keeps about 1 - rate
    w0, w1 = (np.load(f"{prefix}.rank{r}.npz")["arr_0"] for r in range(2))
    np.testing.assert_array_equal(w0, w1)  # the replicas stay identical


@mpi
def test_default_mode_dropout_with_one_seed_resumes_bitwise_on_two_ranks(tmp_path):
    from tests.models.test_resume import assert_same, run

    ref = run(tmp_path, "ref", 2, tmp_path / "b_ref", mode="dropout", SAME_SEED="1")
    run(tmp_path, "k", 2, tmp_path / "b", mode="dropout", kill_at=11, SAME_SEED="1")
    resumed = run(tmp_path, "k", 2, tmp_path / "b", mode="dropout", SAME_SEED="1")
    for r in range(2):
        assert_same(resumed[r], ref[r])
