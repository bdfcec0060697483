"""Checks every collective of the MPI communicator; run under `mpirun -n N`.

Each rank prints 'ALL OK rank R' at the end; any failed check raises, and the
fail-fast hook aborts the job with the traceback.
"""

from __future__ import annotations

import os

import numpy as np

import distkeras.distributed as dist


def data(r: int, shape, dtype) -> np.ndarray:
    """Rank r's contribution: reproducible on every rank."""
    rng = np.random.default_rng(1000 + r)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-50, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def expected(op: str, shape, dtype, size: int) -> np.ndarray:
    parts = [data(r, shape, dtype).astype(np.float64) for r in range(size)]
    stack = np.stack(parts)
    return {"sum": stack.sum(0), "mean": stack.mean(0), "max": stack.max(0), "min": stack.min(0)}[
        op
    ]


def same_on_all_ranks(comm, array: np.ndarray) -> bool:
    gathered = comm.allgather(np.ascontiguousarray(array).reshape(1, -1))
    return all(g.tobytes() == gathered[0].tobytes() for g in gathered)


def main() -> None:
    comm = dist.get_communicator()  # auto-initializes: MPI under mpirun
    r, n = comm.rank, comm.size
    assert comm.backend == "mpi", comm
    assert n == int(os.environ["OMPI_COMM_WORLD_SIZE"]) and r == int(
        os.environ["OMPI_COMM_WORLD_RANK"]
    )
    assert comm.local_size == n and comm.local_rank == r  # one node
    assert dist.is_coordinator() == (r == 0) and dist.rank() == r and dist.size() == n
    launch = dist.detect_launch()
    assert launch.launcher == "openmpi" and launch.rank == r and launch.size == n

    # allreduce: ops x dtypes, in place, same bits on every rank.
    tolerance = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12, "int32": 0, "int64": 0}
    for dtype in ("float32", "float64", "int32", "int64", "float16"):
        for op in ("sum", "mean", "max", "min"):
            if op == "mean" and dtype.startswith("int"):
                continue
            x = data(r, (7, 3), dtype)
            out = comm.allreduce(x, op)
            assert out is x, "allreduce must reduce a contiguous array in place"
            want = expected(op, (7, 3), dtype, n)
            np.testing.assert_allclose(x, want, rtol=tolerance[dtype], atol=tolerance[dtype])
            assert x.dtype == np.dtype(dtype)
            assert same_on_all_ranks(comm, x), (dtype, op)
    flags = comm.allreduce([np.array([r == 0, False]), np.array([True, r != 0])], "max")
    assert flags[0].tolist() == [True, False] and flags[1].tolist() == [True, n > 1]

    # Bucketed lists: views of one flat buffer (zero copy), separate, non-contiguous,
    # read-only and mixed-dtype arrays, with buckets small enough to need several.
    shapes = [(5, 4), (4,), (3, 3), (1,), (6,)]
    flat = np.concatenate([data(r, s, "float32").reshape(-1) for s in shapes])
    views, off = [], 0
    for s in shapes:
        k = int(np.prod(s))
        views.append(flat[off : off + k].reshape(s))
        off += k
    transposed = data(r, (4, 6), "float64").T
    readonly = data(r, (8,), "float64")
    readonly.flags.writeable = False
    separate = [data(r, (2, 5), "float32"), transposed, readonly, data(r, (9,), "int64")]
    for bucket_bytes in (64, 1 << 20):
        fv = flat.copy()
        vv = [fv[o : o + v.size].reshape(v.shape) for o, v in zip(_offsets(views), views)]
        got = dist.fused_allreduce(comm, vv, "mean", bucket_bytes=bucket_bytes)
        assert all(g is v for g, v in zip(got, vv))
        want = np.concatenate([expected("mean", s, "float32", n).reshape(-1) for s in shapes])
        np.testing.assert_allclose(fv, want, rtol=1e-5)
        items = [a.copy() if a.flags.writeable else a for a in separate]
        items[1] = items[1].T.copy().T  # keep it non-contiguous
        got = comm.allreduce(items, "sum", bucket_bytes=bucket_bytes)
        for g, a in zip(got, items):
            assert g.shape == a.shape
            if a.flags.writeable:
                assert g is a
        np.testing.assert_allclose(got[0], expected("sum", (2, 5), "float32", n), rtol=1e-5)
        np.testing.assert_allclose(got[1], expected("sum", (4, 6), "float64", n).T, rtol=1e-12)
        np.testing.assert_allclose(got[2], expected("sum", (8,), "float64", n), rtol=1e-12)
        assert (got[3] == expected("sum", (9,), "int64", n)).all()
        assert (readonly == data(r, (8,), "float64")).all(), "read-only input was modified"

    # Deterministic mode: rank-order sum, bitwise, on every rank.
    x = data(r, (1000,), "float32")
    comm.allreduce(x, "sum", deterministic=True)
    want = data(0, (1000,), "float32").copy()
    for q in range(1, n):
        want += data(q, (1000,), "float32")
    assert x.tobytes() == want.tobytes()
    assert same_on_all_ranks(comm, x)
    # float16 compression: each contribution rounded to float16, summed in float32.
    x = data(r, (300,), "float32")
    comm.allreduce(x, "mean", compression="float16")
    wire = [data(q, (300,), "float32").astype(np.float16).astype(np.float32) for q in range(n)]
    want = wire[0].copy()
    for q in range(1, n):
        want += wire[q]
    want /= n
    assert x.tobytes() == want.tobytes() and same_on_all_ranks(comm, x)

    # Non-blocking allreduce (flat and bucketed list, deterministic too).
    x = data(r, (50,), "float64")
    handle = comm.allreduce_async(x, "mean")
    assert handle.wait() is x and handle.test()
    np.testing.assert_allclose(x, expected("mean", (50,), "float64", n), rtol=1e-12)
    lst = [data(r, (3,), "float32"), data(r, (2, 2), "float32").T]
    h2 = comm.allreduce_async(lst, "sum", deterministic=True, bucket_bytes=8)
    out = h2.wait()
    np.testing.assert_allclose(out[1], expected("sum", (2, 2), "float32", n).T, rtol=1e-5)
    # Two in flight while blocking collectives run in between (the overlap pattern).
    big = [data(r, (100_000,), "float32"), data(r, (7,), "float32")]
    handles = [comm.allreduce_async(a, "sum") for a in big]
    metric = comm.allreduce(np.array([float(r)]), "sum")
    comm.barrier()
    assert metric[0] == n * (n - 1) / 2
    for h, a, shape in zip(handles, big, [(100_000,), (7,)]):
        np.testing.assert_allclose(h.wait(), expected("sum", shape, "float32", n), atol=1e-5)
        assert h.wait() is a

    # Sharded: reduce_scatter returns this rank's shard of the sum; allgather_shards
    # puts every rank's shard back into every rank's buffer (uneven: 11 elements).
    assert comm.native_shards
    for size_ in (11, 1000):
        lo, hi = comm.shard_range(size_)
        bounds = [comm.shard_range(size_, q) for q in range(n)]
        assert bounds[0][0] == 0 and bounds[-1][1] == size_
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        for op in ("sum", "mean"):
            x = data(r, (size_,), "float32")
            shard = comm.reduce_scatter(x, op)
            assert shard.shape == (hi - lo,)
            np.testing.assert_allclose(
                shard, expected(op, (size_,), "float32", n)[lo:hi], rtol=1e-5, atol=1e-6
            )
        # float16 goes through the all-reduce (MPI has no half type to reduce).
        x16 = data(r, (size_,), "float16")
        shard = comm.reduce_scatter(x16, "sum")
        want16 = expected("sum", (size_,), "float16", n)[lo:hi]
        np.testing.assert_allclose(shard, want16, rtol=1e-2, atol=1e-2)
        full = np.full(size_, -1.0)
        full[lo:hi] = np.arange(lo, hi)
        assert comm.allgather_shards(full) is full
        assert (full == np.arange(size_)).all()
    try:
        comm.reduce_scatter(data(r, (4,), "float32"), "max")
        raise AssertionError("reduce_scatter accepted op='max'")
    except ValueError as e:
        assert "op='max'" in str(e)

    # Broadcast: arrays in place from a non-zero root, then plain objects.
    root = n - 1
    arrays = [np.full((3, 2), r, np.float32), np.arange(4, dtype=np.int16) * (r + 1)]
    got = comm.broadcast(arrays, root=root)
    assert all(g is a for g, a in zip(got, arrays))
    assert (arrays[0] == root).all() and (arrays[1] == np.arange(4) * (root + 1)).all()
    obj = {"epoch": 3, "stop": True, "lr": np.float32(0.5), "hist": (1, 2.5, None), 7: "x"}
    obj["w"] = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = comm.broadcast(obj if r == root else None, root=root)
    assert got["epoch"] == 3 and got["stop"] is True and got["lr"] == 0.5 and got[7] == "x"
    assert list(got["hist"]) == [1, 2.5, None]
    assert got["w"].dtype == np.float32 and got["w"].tolist() == [[0, 1, 2], [3, 4, 5]]

    # allgather: uneven first dimensions (rank 0 sends none), 0-d arrays, objects.
    for dtype in ("float32", "int64"):
        pieces = comm.allgather(np.full((r, 3), r, dtype))
        assert [p.shape for p in pieces] == [(q, 3) for q in range(n)]
        assert all((p == q).all() and p.dtype == np.dtype(dtype) for q, p in enumerate(pieces))
    scalars = comm.allgather(np.float64(r) * np.ones(()))
    assert [float(s) for s in scalars] == list(range(n)) and scalars[0].shape == ()
    objs = comm.allgather_object({"rank": r, "name": f"worker-{r}"})
    assert objs == [{"rank": q, "name": f"worker-{q}"} for q in range(n)]
    comm.barrier()

    # Fingerprints: a different shape on the last rank is a clear error on every rank.
    try:
        comm.allreduce(np.zeros(4 + (r == n - 1)), "sum")
    except dist.CollectiveMismatchError as e:
        text = str(e)
        assert e.disagreeing_ranks == [n - 1], e.disagreeing_ranks
        assert "float64[5]" in text and "float64[4]" in text and f"rank {n - 1}:" in text, text
    else:
        raise AssertionError("shape mismatch was not detected")
    # Different collectives: rank 0 broadcasts an object while the others all-reduce.
    try:
        if r == 0:
            comm.broadcast_object({"a": 1})
        else:
            comm.allreduce(np.zeros(3))
    except dist.CollectiveMismatchError as e:
        assert "broadcast_object(root=0)" in str(e) and "allreduce(op='sum'" in str(e), str(e)
        assert e.disagreeing_ranks == list(range(1, n))
    else:
        raise AssertionError("collective mismatch was not detected")
    # The communicator stays usable after a detected (blocking) mismatch.
    x = np.ones(2)
    comm.allreduce(x)
    assert (x == n).all()
    comm.barrier()
    print(f"ALL OK rank {r}", flush=True)


def _offsets(views):
    out, off = [], 0
    for v in views:
        out.append(off)
        off += v.size
    return out


if __name__ == "__main__":
    main()
