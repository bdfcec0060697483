"""Stand-ins for data sources of other libraries, for tests that must run without them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class FakeTFDataset:
    """Behaves like a batched `tf.data.Dataset` for the API the adapters use, no more.

    `as_numpy_iterator()`, `shard(num_shards, index)` (elements index,
    index + num_shards, ...), `cardinality()` (a 0-d int64, -2 when unknown, as
    TensorFlow's scalar tensor), iteration. tests/models/test_tf_data.py checks
    shard and cardinality against real tf.data (`stand_in_matches_tf`).
    """

    def __init__(self, batches: list, known_cardinality: bool = True):
        self.batches = list(batches)
        self.known = known_cardinality
        self.shard_calls: list[tuple[int, int]] = []

    def as_numpy_iterator(self):
        return iter(self.batches)

    def __iter__(self):
        return iter(self.batches)

    def shard(self, num_shards: int, index: int) -> FakeTFDataset:
        self.shard_calls.append((num_shards, index))
        return FakeTFDataset(self.batches[index::num_shards], self.known)

    def cardinality(self) -> np.ndarray:
        return np.asarray(len(self.batches) if self.known else -2, dtype=np.int64)


def id_batches(n: int, batch_size: int) -> list:
    """Batches (x, y) where x holds the sample ids as a float column and y = 2 * id."""
    ids = np.arange(n, dtype=np.float32)
    return [
        (ids[i : i + batch_size, None], 2 * ids[i : i + batch_size, None])
        for i in range(0, n, batch_size)
    ]


def check_shares(prefix: str, mode: str) -> None:
    """Checks what scripts/data_shares.py recorded on 2 ranks (see its docstring).

    Each sample once per epoch across ranks, none twice in a global step, ranks in lockstep
    and agreeing on the global batch size; equal weights; evaluate/predict on the streams
    equal to those on the arrays.
    """
    ranks = [json.loads(Path(f"{prefix}.rank{r}.json").read_text()) for r in range(2)]
    for name in ranks[0]["seen"]:
        n = 20 if name == "loader_sampler" else 19
        for epoch in range(2):
            steps = [ranks[r]["seen"][name][epoch] for r in range(2)]
            assert len(steps[0]) == len(steps[1]), name  # lockstep
            every = []
            for (ids0, g0), (ids1, g1) in zip(*steps):
                step_ids = ids0 + ids1
                assert len(set(step_ids)) == len(step_ids), (name, step_ids)  # none twice
                assert g0 == g1 == len(step_ids), name  # the agreed global batch size
                every += step_ids
            assert sorted(every) == list(range(n)), (name, epoch)  # each sample once
    assert ranks[0]["weights"] == ranks[1]["weights"]
    if mode == "det":
        assert "DistributedSampler" in ranks[0]["refused"]
        assert "loader_sampler" not in ranks[0]["seen"]
    for r in range(2):
        c = ranks[r]["checks"]
        for key in ("evaluate_loader", "evaluate_tfdata", "evaluate_one_batch"):
            np.testing.assert_allclose(c[key], c["evaluate_arrays"], rtol=1e-5)
        np.testing.assert_allclose(c["predict_loader"], c["predict_arrays"], rtol=1e-6)


def ids_regression(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of n samples in a fixed order: x = id / n, y = cos(id), both (n, 1) float32."""
    ids = np.arange(n, dtype=np.float32)[:, None]
    return ids / n, np.cos(ids).astype(np.float32)
