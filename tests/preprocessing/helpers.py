"""Shared checks for the lazily loaded datasets of `distkeras.preprocessing`."""

from __future__ import annotations

import numpy as np

from distkeras.models.data_adapter import flatten_struct
from distkeras.models.stream_adapters import IterableDataAdapter


def _leaves(batch):
    return [np.asarray(a) for a in flatten_struct(batch)]


def check_sharded_reads(ds, sizes=(2, 3)) -> None:
    """`get_shard` equals slicing `__getitem__`, and an n-rank adapter reads each sample once.

    For every world size, the concatenation over ranks of the adapter's shards
    equals the one-process batches, and each rank's loader is asked only for
    its own slice (checked by counting the indices passed to `load`).
    """
    full = [_leaves(ds[i]) for i in range(len(ds))]
    for i, batch in enumerate(full):
        n = ds.batch_length(i)
        assert all(len(a) == n for a in batch)
        for lo, hi in [(0, n), (0, 0), (n // 3, n), (1, max(1, n - 1))]:
            for a, b in zip(_leaves(ds.get_shard(i, lo, hi)), batch):
                np.testing.assert_array_equal(a, b[lo:hi])
    original = ds.load
    for size in sizes:
        loaded: list[int] = []

        def counting(indices, original=original, loaded=loaded):
            loaded.extend(int(j) for j in indices)
            return original(indices)

        ds.load = counting
        try:
            parts = []
            for rank in range(size):
                adapter = IterableDataAdapter(ds, rank=rank, size=size)
                parts.append([(_leaves((x, y)), gbs) for x, y, _, gbs in adapter.batches(0)])
        finally:
            del ds.load
        # Every sample of the epoch was loaded exactly once across the ranks.
        expected = sorted(int(j) for i in range(len(ds)) for j in ds.batch_indices(i))
        assert sorted(loaded) == expected
        for step, batch in enumerate(full):
            gbs = {parts[r][step][1] for r in range(size)}
            assert gbs == {len(batch[0])}
            for k, leaf in enumerate(batch):
                joined = np.concatenate([parts[r][step][0][k] for r in range(size)])
                np.testing.assert_array_equal(joined, leaf)


def make_image_folder(root, counts: dict, sizes=((6, 4), (8, 8), (5, 7))) -> dict:
    """Writes class subfolders of flat-colour images; returns {path: (label, colour)}.

    Files alternate PNG and JPEG and cycle through `sizes` (height, width);
    each image has its own colour so tests can tell which file a sample is.
    """
    from pathlib import Path

    from PIL import Image

    files = {}
    k = 0
    for label, (name, n) in enumerate(sorted(counts.items())):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = sizes[k % len(sizes)]
            colour = (20 * k % 256, 255 - 15 * k % 256, (40 + 30 * k) % 256)
            ext = "png" if k % 2 == 0 else "jpg"
            path = folder / f"img_{i:03d}.{ext}"
            Image.fromarray(np.full((h, w, 3), colour, dtype=np.uint8), "RGB").save(path)
            files[str(path)] = (label, colour)
            k += 1
    return files
