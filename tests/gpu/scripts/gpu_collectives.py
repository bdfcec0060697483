"""Checks the GPU communicator's collectives on every rank; run under mpirun.

Usage: mpirun -n N python gpu_collectives.py TRANSPORT   (nccl | staged | cuda_aware_mpi)
Exits non-zero (through the fail-fast hook) when a check fails on any rank.
"""

from __future__ import annotations

import os
import sys

os.environ["DISTKERAS_BACKEND"] = "cupy"
os.environ["DISTKERAS_GPU_COLLECTIVES"] = sys.argv[1]

import cupy as cp  # noqa: E402
import numpy as np  # noqa: E402

import distkeras.distributed as dist  # noqa: E402
from distkeras import backend  # noqa: E402
from distkeras.distributed.nccl import NCCLCommunicator  # noqa: E402

backend.set_backend("cupy")
comm = dist.initialize("mpi")
assert isinstance(comm, NCCLCommunicator), type(comm)
assert comm.transport == sys.argv[1], comm.transport
r, n = comm.rank, comm.size
ranks = np.arange(n, dtype="float64")


def check(got, want, what):
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-6, err_msg=f"rank {r}: {what}")


# Fused buckets: several small arrays of two dtypes, a non-contiguous one, a bool.
a = cp.full((3, 4), r + 1.0, dtype=cp.float32)
b = cp.arange(5, dtype=cp.int64) * (r + 1)
c = cp.full((4, 6), float(r), dtype=cp.float64)[:, ::2]  # not contiguous
flag = cp.asarray([r == 0, False, True])
comm.allreduce([a, b, c], op="sum", bucket_bytes=64)
check(a, np.full((3, 4), (ranks + 1).sum()), "sum float32")
check(b, np.arange(5) * (ranks + 1).sum(), "sum int64")
check(c, np.full((4, 3), ranks.sum()), "sum strided float64")
comm.allreduce(flag, op="max")
check(flag, [True, False, True], "max bool")

# One flat buffer whose views are the "variables": reduced in one call, in place.
flat = cp.arange(12, dtype=cp.float32) + r
views = [flat[:5], flat[5:9], flat[9:]]
out = comm.allreduce(views, op="mean")
check(flat, np.arange(12) + ranks.mean(), "mean of back-to-back views")
assert all(o is v for o, v in zip(out, views))

# max/min, deterministic and float16-compressed sums, async.
m = cp.asarray([float(r), -float(r)])
comm.allreduce(m, op="max")
check(m, [n - 1.0, 0.0], "max")
d = cp.full(7, 0.1 * (r + 1), dtype=cp.float32)
comm.allreduce(d, op="sum", deterministic=True)
check(d, np.full(7, np.float32(0.1) * (ranks + 1).sum()), "deterministic sum")
h = cp.full(5, 0.5, dtype=cp.float32)
comm.allreduce(h, op="mean", compression="float16")
check(h, np.full(5, 0.5), "float16 compressed mean")
g = cp.full(1000, float(r), dtype=cp.float32)
handle = comm.allreduce_async(g, op="mean")
handle.wait()
check(g, np.full(1000, ranks.mean()), "async mean")

# broadcast (arrays in place; plain data through the host), allgather with ragged rows.
w = cp.full((2, 2), float(r), dtype=cp.float32)
comm.broadcast([w], root=n - 1)
check(w, np.full((2, 2), n - 1.0), "broadcast")
assert comm.broadcast({"step": r}, root=0) == {"step": 0}
parts = comm.allgather(cp.full((r + 1, 2), float(r), dtype=cp.float32))
assert [tuple(p.shape) for p in parts] == [(k + 1, 2) for k in range(n)]
for k, p in enumerate(parts):
    check(p, np.full((k + 1, 2), float(k)), f"allgather part {k}")
comm.barrier()
assert backend.device() == f"cuda:{cp.cuda.runtime.getDevice()}"
print(f"rank {r} ok on {backend.device()} via {comm.transport}")
comm.close()
