"""Prints one stdout and one stderr line per rank; `--fail` makes rank 1 raise; `--fit`
trains a tiny model with the live progress bar (verbose=1) first."""

import sys

import numpy as np

import distkeras
import distkeras.distributed as dist

dist.initialize()
rank = dist.rank()
if "--fit" in sys.argv:
    x = np.random.RandomState(0).rand(64, 3).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = distkeras.models.Sequential([distkeras.layers.Input((3,)), distkeras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, verbose=1)
print(f"out from rank {rank}", flush=True)
print(f"err from rank {rank}", file=sys.stderr, flush=True)
if "--fail" in sys.argv and rank == 1:
    raise ValueError("boom on rank 1")
dist.get_communicator().barrier()
