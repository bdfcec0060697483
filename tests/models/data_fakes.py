"""Stand-ins for data sources of other libraries, for tests that must run without them."""

from __future__ import annotations

import numpy as np


class FakeTFDataset:
    """Behaves like a batched `tf.data.Dataset` for the API the adapters use.

    `as_numpy_iterator()`, `shard(num_shards, index)` (elements index,
    index + num_shards, ...), `cardinality()` (-2 when unknown), iteration.
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

    def cardinality(self) -> int:
        return len(self.batches) if self.known else -2


def id_batches(n: int, batch_size: int) -> list:
    """Batches (x, y) where x holds the sample ids as a float column and y = 2 * id."""
    ids = np.arange(n, dtype=np.float32)
    return [
        (ids[i : i + batch_size, None], 2 * ids[i : i + batch_size, None])
        for i in range(0, n, batch_size)
    ]
