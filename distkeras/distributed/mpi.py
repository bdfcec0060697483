"""`MPICommunicator`: the communicator on mpi4py buffer calls.

Each collective first passes the `CollectiveGuard` (a tiny header exchange
that checks fingerprints and enforces the timeout, see guard.py). Once every
header has arrived and agrees, the data moves with a blocking buffer call
(`Allreduce` with `MPI.IN_PLACE`, `Bcast`, `Allgatherv`): in Open MPI 5 it is
over twice as fast as its non-blocking twin for a few MiB, and it cannot hang,
since every rank is known to be there with matching arguments.
`allreduce_async` uses `Iallreduce` so that the reduction overlaps compute.

Deterministic sums and float16 compression go through an Allgather of every
rank's contribution, summed in rank order on every rank, so all ranks get
bitwise the same result whatever algorithm MPI picks.

A rank that dies (an uncaught exception under the fail-fast hook calls
`Abort`; a signal kills it) makes mpirun end every rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.distributed.bucketing import GradientBucketer
from distkeras.distributed.communicator import (
    _UNSET,
    BucketedReduce,
    CollectiveHandle,
    Communicator,
    StoredTopology,
    _print_abort,
    as_array_list,
    check_root,
    pack_object,
    unpack_object,
)
from distkeras.distributed.guard import (
    HEADER_LEN,
    REDUCE_CODE,
    CollectiveGuard,
    describe_arrays,
    signature,
)


def _to_host(a: Any) -> np.ndarray:
    """A C-contiguous NumPy array with a's shape (0-d stays 0-d)."""
    if not isinstance(a, np.ndarray):
        from distkeras.backend import to_numpy  # noqa: PLC0415

        a = to_numpy(a)
    return a if a.flags.c_contiguous else a.copy(order="C")


class MPICommunicator(StoredTopology, BucketedReduce, Communicator):
    """A communicator over an mpi4py intracommunicator.

    Must be constructed on every rank (it splits and duplicates `comm`).

    Args:
        comm: An `mpi4py.MPI.Intracomm`; defaults to `MPI.COMM_WORLD`.
        timeout: Seconds a collective may wait; None/0 never times out.
            Defaults to `DISTKERAS_COLLECTIVE_TIMEOUT`, else max(120 s, 20x the
            slowest step seen).
        deterministic, compression, check, bucket_bytes, stall_warning: See
            `Communicator`.
    """

    backend = "mpi"

    def __init__(
        self,
        comm: Any = None,
        timeout: float | None = _UNSET,
        *,
        deterministic: bool = False,
        compression: str | None = None,
        check: bool = True,
        bucket_bytes: int | None = None,
        stall_warning: float | None = _UNSET,
    ):
        from mpi4py import MPI  # noqa: PLC0415

        bucketer = GradientBucketer() if bucket_bytes is None else GradientBucketer(bucket_bytes)
        super().__init__(
            deterministic=deterministic,
            compression=compression,
            check=check,
            timeout=timeout,
            bucket_bytes=bucketer.bucket_bytes,
            stall_warning=stall_warning,
        )
        self._MPI = MPI
        self._comm = MPI.COMM_WORLD if comm is None else comm
        self._rank = self._comm.Get_rank()
        self._size = self._comm.Get_size()
        shared = self._comm.Split_type(MPI.COMM_TYPE_SHARED)
        self._local_rank, self._local_size = shared.Get_rank(), shared.Get_size()
        shared.Free()
        self._side = self._comm.Dup()  # point-to-point "where are you" queries
        self._guard = CollectiveGuard(self, self._comm, self._side, self._local_size)
        self._bucketer = bucketer
        self._mpi_ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self._bool_ops = {"max": MPI.LOR, "min": MPI.LAND}
        self._scratch: dict[str, np.ndarray] = {}

    # -- topology (rank, size, local_rank, local_size: StoredTopology)
    @property
    def mpi_comm(self) -> Any:
        """The underlying mpi4py communicator."""
        return self._comm

    # -- allreduce

    def _gather_mode(self, dtype: np.dtype, op: str, det: bool, comp: str | None) -> str | None:
        """'float16' or 'ordered' when the sum goes through an Allgather, else None."""
        if op not in ("sum", "mean") or dtype.kind not in "fc":
            return None
        if comp == "float16" and dtype.kind == "f" and dtype.itemsize > 2:
            return "float16"
        return "ordered" if det else None

    def _allreduce_header(self, opname, items, op, det, comp, describe_extra=""):
        flags = int(det) | (2 if comp else 0)

        def describe() -> str:
            return (
                f"{opname}(op={op!r}, {len(items)} array(s): {describe_arrays(items)}, "
                f"deterministic={det}, compression={comp!r}{describe_extra})"
            )

        return dict(
            describe=describe,
            sig=signature(items),
            arg=REDUCE_CODE[op],
            flags=flags,
            count=len(items),
            elements=sum(int(a.size) for a in items),
        )

    def allreduce(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> Any:
        items, single, det, comp, bucketer = self._reduce_args(
            arrays, op, deterministic, compression, bucket_bytes
        )
        self._guard.header("allreduce", **self._allreduce_header("allreduce", items, op, det, comp))
        results: list[Any] = [None] * len(items)
        for bucket in bucketer.plan(items):
            bucket.pack(items)
            self._reduce_buffer(bucket.buffer, op, det, comp, bucketer.bucket_bytes)
            bucket.unpack(items, results)
        return results[0] if single else results

    def _reduce_buffer(
        self, buf: np.ndarray, op: str, det: bool, comp: str | None, chunk_bytes: int
    ) -> None:
        mode = self._gather_mode(buf.dtype, op, det, comp)
        if mode is None:
            self._comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._mpi_op(buf, op))
        else:
            step = max(1, chunk_bytes // buf.dtype.itemsize)
            for lo in range(0, buf.size, step):
                part = buf[lo : lo + step]
                send = part.astype(np.float16) if mode == "float16" else part
                table = self._scratch_table(send.dtype, part.size)
                self._comm.Allgather(send.view(np.uint8), table.view(np.uint8))
                _sum_rows(table, part)
        if op == "mean":
            _divide(buf, self._size)

    def _mpi_op(self, buf: np.ndarray, op: str) -> Any:
        return self._bool_ops[op] if buf.dtype.kind == "b" else self._mpi_ops[op]

    def _scratch_table(self, dtype: np.dtype, n: int) -> np.ndarray:
        key = np.dtype(dtype).str
        buf = self._scratch.get(key)
        if buf is None or buf.size < self._size * n:
            buf = np.empty(self._size * n, dtype)
            self._scratch[key] = buf
        return buf[: self._size * n].reshape(self._size, n)

    def allreduce_async(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> CollectiveHandle:
        items, _single, det, comp, bucketer = self._reduce_args(
            arrays, op, deterministic, compression, bucket_bytes
        )
        fields = self._allreduce_header("allreduce_async", items, op, det, comp)
        call, header_req, header, gathered = self._guard.start(
            "allreduce_async", nonblocking=True, **fields
        )
        buckets = bucketer.plan(items, reuse_staging=False)
        posted = []
        for bucket in buckets:
            bucket.pack(items)
            buf = bucket.buffer
            mode = self._gather_mode(buf.dtype, op, det, comp)
            if mode is None:
                req = self._comm.Iallreduce(self._MPI.IN_PLACE, buf, op=self._mpi_op(buf, op))
                posted.append((bucket, req, None, None))
            else:
                send = buf.astype(np.float16) if mode == "float16" else buf
                table = np.empty((self._size, buf.size), send.dtype)
                req = self._comm.Iallgather(send.view(np.uint8), table.view(np.uint8))
                posted.append((bucket, req, send, table))
        return _MPIHandle(self, call, header_req, header, gathered, posted, items, _single, op)

    # -- broadcast
    def broadcast_arrays(self, arrays: Any, root: int = 0) -> Any:
        root = check_root(root, self._size)
        items, single = as_array_list(arrays)
        self._guard.header(
            "broadcast_arrays",
            lambda: (
                f"broadcast_arrays(root={root}, {len(items)} array(s): {describe_arrays(items)})"
            ),
            sig=signature(items),
            arg=root,
            count=len(items),
            elements=sum(int(a.size) for a in items),
        )
        results: list[Any] = [None] * len(items)
        for bucket in self._bucketer.plan(items):
            if self._rank == root:
                bucket.pack(items)
            self._comm.Bcast(bucket.buffer.view(np.uint8), root=root)
            if self._rank == root:
                for i, _, _ in bucket.members:
                    results[i] = items[i]
            else:
                bucket.unpack(items, results)
        return results[0] if single else results

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        root = check_root(root, self._size)
        data = pack_object(obj) if self._rank == root else b""
        _, gathered = self._guard.header(
            "broadcast_object",
            lambda: f"broadcast_object(root={root})",
            arg=root,
            payload=len(data),
            need_payload=True,
        )
        n = int(gathered[root, HEADER_LEN - 1])
        buf = np.frombuffer(data, np.uint8).copy() if self._rank == root else np.empty(n, np.uint8)
        if n:
            self._comm.Bcast(buf, root=root)
        return obj if self._rank == root else unpack_object(buf.tobytes())

    # -- allgather
    def allgather(self, array: Any) -> list[Any]:
        items, _ = as_array_list(array, "array")
        host = _to_host(items[0])
        rows = host.shape[0] if host.ndim else 1
        _, gathered = self._guard.header(
            "allgather",
            lambda: f"allgather({describe_arrays([host], skip_first_dim=True)})",
            sig=signature([host], skip_first_dim=True),
            count=1,
            payload=rows,
            need_payload=True,
        )
        row_items = int(np.prod(host.shape[1:])) if host.ndim else 1
        counts = [int(c) * row_items * host.itemsize for c in gathered[:, HEADER_LEN - 1]]
        out = np.empty(sum(counts) // max(host.itemsize, 1), host.dtype)
        self._comm.Allgatherv(host.reshape(-1).view(np.uint8), [out.view(np.uint8), counts])
        pieces, start = [], 0
        for c in gathered[:, HEADER_LEN - 1].tolist():
            piece = out[start : start + c * row_items]
            pieces.append(piece.reshape((c,) + host.shape[1:]) if host.ndim else piece.reshape(()))
            start += c * row_items
        if not isinstance(items[0], np.ndarray):
            from distkeras.backend import get_array_module  # noqa: PLC0415

            module = get_array_module(items[0])
            pieces = [module.asarray(p) for p in pieces]
        return pieces

    # -- sharded collectives
    native_shards = True

    def _shard_counts(self, n: int) -> tuple[list[int], list[int]]:
        bounds = [self.shard_range(n, r) for r in range(self._size)]
        return [hi - lo for lo, hi in bounds], [lo for lo, _ in bounds]

    def _flat_header(self, opname: str, flat: np.ndarray, arg: int = 0) -> None:
        if flat.ndim != 1 or not flat.flags.c_contiguous:
            raise ValueError(
                f"{opname} takes a 1-D contiguous array. "
                f"Received: shape={flat.shape}, contiguous={flat.flags.c_contiguous}"
            )
        self._guard.header(
            opname,
            lambda: f"{opname}({describe_arrays([flat])})",
            sig=signature([flat]),
            arg=arg,
            count=1,
            elements=int(flat.size),
        )

    def reduce_scatter(self, flat: Any, op: str = "sum") -> Any:
        if op not in ("sum", "mean"):
            raise ValueError(f"reduce_scatter supports op='sum' or 'mean'. Received: op={op!r}")
        if not isinstance(flat, np.ndarray) or flat.dtype not in (np.float32, np.float64):
            return super().reduce_scatter(flat, op)  # an all-reduce (float16: see allreduce)
        self._flat_header("reduce_scatter", flat, REDUCE_CODE[op])
        counts, _ = self._shard_counts(flat.size)
        key = "shard:" + flat.dtype.str  # the trainer reads it before the next call
        out = self._scratch.get(key)
        if out is None or out.size < counts[self._rank]:
            out = self._scratch[key] = np.empty(counts[self._rank], flat.dtype)
        out = out[: counts[self._rank]]
        self._comm.Reduce_scatter(flat, out, recvcounts=counts, op=self._MPI.SUM)
        if op == "mean":
            _divide(out, self._size)
        return out

    def allgather_shards(self, flat: Any) -> Any:
        if not isinstance(flat, np.ndarray):
            return super().allgather_shards(flat)
        self._flat_header("allgather_shards", flat)
        counts, displs = self._shard_counts(flat.size)
        item = flat.itemsize
        raw = flat.view(np.uint8)
        self._comm.Allgatherv(
            self._MPI.IN_PLACE,
            [raw, [c * item for c in counts], [d * item for d in displs], self._MPI.BYTE],
        )
        return flat

    def allgather_object(self, obj: Any) -> list[Any]:
        data = pack_object(obj)
        _, gathered = self._guard.header(
            "allgather_object", lambda: "allgather_object()", payload=len(data), need_payload=True
        )
        counts = [int(c) for c in gathered[:, HEADER_LEN - 1]]
        out = np.empty(sum(counts), np.uint8)
        self._comm.Allgatherv(np.frombuffer(data, np.uint8), [out, counts])
        result, start = [], 0
        for r, c in enumerate(counts):
            result.append(obj if r == self._rank else unpack_object(out[start : start + c]))
            start += c
        return result

    def barrier(self) -> None:
        call, request, _, gathered = self._guard.start("barrier", lambda: "barrier()")
        if request is None:
            self._comm.Barrier()
        else:
            self._guard.finish(call, request, gathered, False)

    # -- lifecycle
    def abort(self, reason: str = "", exit_code: int = 1) -> None:
        _print_abort(self._rank, reason)
        self._comm.Abort(exit_code)

    def close(self) -> None:
        if not self._closed:
            try:
                self._side.Free()
            except Exception:  # noqa: BLE001 - MPI may be finalized already
                pass
        super().close()


def _divide(buf: np.ndarray, n: int) -> None:
    """buf /= n in place; a power of two multiplies by its exact reciprocal (same bits)."""
    if n & (n - 1) == 0 and buf.dtype.kind == "f":
        np.multiply(buf, buf.dtype.type(1.0 / n), out=buf)
    else:
        np.divide(buf, n, out=buf, casting="unsafe")


def _sum_rows(table: np.ndarray, out: np.ndarray) -> None:
    """out = table[0] + table[1] + ... in rank order; float16 rows are summed in float32."""
    if table.dtype == np.float16:
        # Widen through a lookup table: NumPy's float16 casts are scalar loops.
        lut = _float16_table()
        acc = out if out.dtype == np.float32 else np.empty(out.shape, np.float32)
        row = np.empty(out.shape, np.float32)
        np.take(lut, table[0].view(np.uint16), out=acc, mode="clip")
        for r in range(1, table.shape[0]):
            np.take(lut, table[r].view(np.uint16), out=row, mode="clip")
            acc += row
        if acc is not out:
            np.copyto(out, acc, casting="unsafe")
        return
    np.copyto(out, table[0])
    for r in range(1, table.shape[0]):
        np.add(out, table[r], out=out)


_LUT: list[np.ndarray] = []


def _float16_table() -> np.ndarray:
    """float32 value of each of the 65536 float16 bit patterns."""
    if not _LUT:
        _LUT.append(np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32))
    return _LUT[0]


class _MPIHandle(CollectiveHandle):
    """An `allreduce_async` in flight."""

    def __init__(self, comm, call, header_req, header, gathered, posted, items, single, op):
        self._comm, self._call = comm, call
        self._header_req, self._header, self._gathered = header_req, header, gathered
        self._posted, self._items, self._single, self._op = posted, items, single, op
        self._result: Any = None
        self._done = False

    def test(self) -> bool:
        if self._done:
            return True
        reqs = [p[1] for p in self._posted]
        if self._header_req is not None:
            reqs.append(self._header_req)
        return bool(self._comm._MPI.Request.Testall(reqs))

    def wait(self) -> Any:
        if self._done:
            return self._result
        comm = self._comm
        comm._guard.finish(self._call, self._header_req, self._gathered, True)
        comm._guard.wait([p[1] for p in self._posted], self._call)
        results: list[Any] = [None] * len(self._items)
        for bucket, _req, _send, table in self._posted:
            if table is not None:
                _sum_rows(table, bucket.buffer)
            if self._op == "mean":
                _divide(bucket.buffer, comm.size)
            bucket.unpack(self._items, results)
        self._result = results[0] if self._single else results
        self._done = True
        self._posted = []
        return self._result
