"""GPU collectives for CuPy arrays: NCCL, CUDA-aware MPI, or staging through pinned memory.

`NCCLCommunicator(host)` wraps the job's host communicator (MPI or Ray). The
host bootstraps NCCL (rank 0's `ncclUniqueId` is broadcast through it) and
still carries plain-data collectives, barriers and aborts; array collectives
on CuPy arrays run GPU to GPU. Small arrays are fused into buckets of
`bucket_bytes` as on the CPU path; arrays lying back to back in one flat
buffer (the optimizer's fused gradient) go in one call with no copy.

Three transports, chosen once (`DISTKERAS_GPU_COLLECTIVES` overrides):

- 'nccl': `cupy.cuda.nccl` on a dedicated non-blocking stream, ordered after
  the compute stream with CUDA events (so `allreduce_async` overlaps compute);
- 'cuda_aware_mpi': mpi4py buffer calls on device memory, when the host is MPI
  and the MPI library reports CUDA support (`MPIX_Query_cuda_support`, or
  `DISTKERAS_CUDA_AWARE_MPI=1`);
- 'staged': copy each bucket into pinned host memory, reduce it with the host
  communicator, copy it back.

With `check=True` every GPU collective first exchanges a small fingerprint
through the host communicator, so ranks calling different collectives raise
`CollectiveMismatchError` (and a missing rank hits the host's timeout) instead
of hanging inside NCCL.

Status: written against CuPy's documented `cupy.cuda.nccl` API; exercised only
by the GPU tests in tests/gpu/ (skipped without CuPy and a GPU).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from distkeras.distributed.communicator import (
    _UNSET,
    CollectiveHandle,
    Communicator,
    CompletedHandle,
    as_array_list,
    check_compression,
    check_op,
    check_reduce_dtypes,
    check_root,
)
from distkeras.distributed.errors import CollectiveMismatchError
from distkeras.distributed.guard import describe_arrays, signature

TRANSPORTS = ("nccl", "cuda_aware_mpi", "staged")
TRANSPORT_ENV = "DISTKERAS_GPU_COLLECTIVES"
CUDA_AWARE_ENV = "DISTKERAS_CUDA_AWARE_MPI"

_NCCL_DTYPES = {
    "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "bool": "NCCL_UINT8",
    "int32": "NCCL_INT32", "uint32": "NCCL_UINT32", "int64": "NCCL_INT64",
    "uint64": "NCCL_UINT64", "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32",
    "float64": "NCCL_FLOAT64", "bfloat16": "NCCL_BFLOAT16",
}  # fmt: skip
_NCCL_OPS = {"sum": "NCCL_SUM", "mean": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


def is_cupy_array(x: Any) -> bool:
    """True for `cupy.ndarray` (checked by module name: CuPy is never imported here)."""
    return type(x).__module__.startswith("cupy") and hasattr(x, "__cuda_array_interface__")


def cuda_aware_mpi(environ: dict | None = None) -> bool:
    """Whether the loaded MPI library can move device memory.

    `DISTKERAS_CUDA_AWARE_MPI` (1/0) decides when set; otherwise Open MPI's
    `MPIX_Query_cuda_support()` is asked (mpi4py must already be imported); other
    libraries count as not CUDA-aware.
    """
    env = os.environ if environ is None else environ
    value = env.get(CUDA_AWARE_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    try:
        query = ctypes.CDLL(None).MPIX_Query_cuda_support
    except (AttributeError, OSError):
        return False
    query.restype = ctypes.c_int
    try:
        return bool(query())
    except Exception:  # noqa: BLE001 - a broken MPI extension means "no"
        return False


def choose_transport(host: Communicator, nccl_available: bool, environ: dict | None = None) -> str:
    """The GPU transport: `DISTKERAS_GPU_COLLECTIVES`, else NCCL, CUDA-aware MPI, staging."""
    env = os.environ if environ is None else environ
    chosen = env.get(TRANSPORT_ENV, "").strip().lower()
    if chosen:
        if chosen not in TRANSPORTS:
            raise ValueError(
                f"Unknown GPU transport. Expected one of {TRANSPORTS}. "
                f"Received: {TRANSPORT_ENV}={chosen!r}"
            )
        return chosen
    if nccl_available:
        return "nccl"
    if getattr(host, "backend", None) == "mpi" and cuda_aware_mpi(env):
        return "cuda_aware_mpi"
    return "staged"


def plan_buckets(items: list[Any], bucket_bytes: int) -> list[list[int]]:
    """Groups array indices by dtype, in order, into buckets of at most `bucket_bytes`.

    An array larger than a bucket gets a bucket of its own.
    """
    buckets: list[list[int]] = []
    open_: dict[str, tuple[list[int], int]] = {}
    for i, a in enumerate(items):
        key = np.dtype(a.dtype).str
        nbytes = int(a.nbytes)
        members, used = open_.get(key, ([], 0))
        if members and used + nbytes > bucket_bytes:
            buckets.append(members)
            members, used = [], 0
        members.append(i)
        open_[key] = (members, used + nbytes)
    buckets.extend(m for m, _ in open_.values() if m)
    return sorted(buckets, key=lambda b: b[0])


def _divide(buf: Any, n: int) -> None:
    """buf /= n in place; a power of two multiplies by its exact reciprocal (as on MPI)."""
    if n & (n - 1) == 0:
        buf *= buf.dtype.type(1.0 / n)
    else:
        buf /= n


def _back_to_back(arrays: list[Any]) -> bool:
    """True when C-contiguous arrays of one dtype follow each other in memory."""
    end = None
    for a in arrays:
        if not a.flags.c_contiguous:
            return False
        ptr = a.data.ptr
        if end is not None and ptr != end:
            return False
        end = ptr + a.nbytes
    return True


class _Bucket:
    """One fused reduction: a contiguous device buffer and how to write it back."""

    def __init__(self, cp: Any, items: list[Any], members: list[int]):
        self.members = members
        arrays = [items[i] for i in members]
        self.inplace = _back_to_back(arrays)
        if self.inplace:
            first = arrays[0]
            total = sum(int(a.size) for a in arrays)
            mem = cp.cuda.MemoryPointer(first.data.mem, first.data.ptr - first.data.mem.ptr)
            self.buffer = cp.ndarray((total,), first.dtype, mem)
        else:
            self.buffer = cp.concatenate([a.reshape(-1) for a in arrays])

    def unpack(self, items: list[Any]) -> None:
        if self.inplace:
            return
        offset = 0
        for i in self.members:
            a = items[i]
            a[...] = self.buffer[offset : offset + a.size].reshape(a.shape)
            offset += a.size


class _GPUHandle(CollectiveHandle):
    def __init__(self, comm: NCCLCommunicator, event: Any, finish: Any):
        self._comm, self._event, self._finish, self._result = comm, event, finish, _UNSET

    def test(self) -> bool:
        return self._result is not _UNSET or self._event.done

    def wait(self) -> Any:
        if self._result is _UNSET:
            self._comm._cp.cuda.get_current_stream().wait_event(self._event)
            self._result = self._finish()
        return self._result


class NCCLCommunicator(Communicator):
    """GPU collectives over NCCL (or CUDA-aware MPI, or pinned staging) for CuPy arrays.

    Must be constructed on every rank after the CuPy backend has pinned the
    rank's GPU (see `distkeras.backend.device`). Host (NumPy) arrays and plain
    data go through `host` unchanged.

    Args:
        host: The job's MPI or Ray communicator (bootstrap and plain data).
        transport: 'nccl', 'cuda_aware_mpi' or 'staged'; chosen automatically
            (see `choose_transport`) when omitted.
        bucket_bytes: Fusion bucket size; the host's when omitted.
        own_host: Close the host communicator in `close()`.
    """

    def __init__(
        self,
        host: Communicator,
        transport: str | None = None,
        *,
        bucket_bytes: int | None = None,
        own_host: bool = True,
    ):
        import cupy  # noqa: PLC0415

        super().__init__(
            deterministic=host.deterministic,
            compression=host.compression,
            check=host.check,
            timeout=host.timeout,
            bucket_bytes=bucket_bytes or host.bucket_bytes,
        )
        self._cp = cupy
        self._host = host
        self._own_host = own_host
        try:
            from cupy.cuda import nccl  # noqa: PLC0415

            available = bool(getattr(nccl, "available", True))
        except ImportError:
            nccl, available = None, False
        self.transport = transport or choose_transport(host, available)
        if self.transport not in TRANSPORTS:
            raise ValueError(f"Unknown GPU transport. Received: transport={transport!r}")
        self._nccl_mod = nccl
        self._nccl = None
        if self.transport == "nccl":
            if not available:
                raise RuntimeError("transport='nccl' needs CuPy built with NCCL support.")
            uid = list(nccl.get_unique_id()) if host.rank == 0 else None
            uid = host.broadcast_object(uid, root=0)
            self._nccl = nccl.NcclCommunicator(host.size, tuple(int(v) for v in uid), host.rank)
        self._stream = cupy.cuda.Stream(non_blocking=True)
        self._pinned: dict[str, tuple[Any, np.ndarray]] = {}

    # -- topology (the host's)
    @property
    def backend(self) -> str:  # type: ignore[override]
        return self._host.backend

    @property
    def host(self) -> Communicator:
        """The host communicator (MPI or Ray)."""
        return self._host

    @property
    def rank(self) -> int:
        return self._host.rank

    @property
    def size(self) -> int:
        return self._host.size

    @property
    def local_rank(self) -> int:
        return self._host.local_rank

    @property
    def local_size(self) -> int:
        return self._host.local_size

    # -- helpers
    def _check(self, what: str, items: list[Any], extra: str = "") -> None:
        """Fingerprints the call through the host (its timeout applies), if `check`."""
        if not self.check:
            return
        mine = [what, signature(items), extra]
        calls = self._host.allgather_object(mine)
        bad = [r for r, c in enumerate(calls) if list(c) != list(calls[0])]
        if bad:
            desc = f"{what}({describe_arrays(items)}{extra})"
            raise CollectiveMismatchError(
                f"Ranks {bad} called a different GPU collective than rank 0 "
                f"(rank {self.rank} called {desc}).",
                calls={r: str(c) for r, c in enumerate(calls)},
                disagreeing_ranks=bad,
            )

    def _dtype_code(self, dtype: Any) -> int:
        name = _NCCL_DTYPES.get(np.dtype(dtype).name)
        code = getattr(self._nccl_mod, name, None) if name else None
        if code is None:
            raise TypeError(f"NCCL cannot carry dtype {np.dtype(dtype).name}.")
        return code

    def _op_code(self, op: str, dtype: Any) -> int:
        if np.dtype(dtype).kind == "b":  # logical or / and on 0/1 bytes
            return getattr(self._nccl_mod, "NCCL_MAX" if op == "max" else "NCCL_MIN")
        return getattr(self._nccl_mod, _NCCL_OPS[op])

    def _on_comm_stream(self, launch: Any) -> Any:
        """Runs `launch(stream_ptr)` after the current stream's work; returns its done event."""
        current = self._cp.cuda.get_current_stream()
        self._stream.wait_event(current.record())
        with self._stream:
            launch(self._stream.ptr)
        return self._stream.record()

    def _staging(self, buf: Any) -> np.ndarray:
        """A pinned host array shaped like `buf` (grown and reused per dtype)."""
        key = np.dtype(buf.dtype).str
        mem, arr = self._pinned.get(key, (None, np.empty(0, buf.dtype)))
        if arr.size < buf.size:
            mem = self._cp.cuda.alloc_pinned_memory(max(int(buf.nbytes), 1))
            arr = np.frombuffer(mem, buf.dtype, buf.size)
            self._pinned[key] = (mem, arr)
        return arr[: buf.size]

    # -- allreduce
    def _reduce_bucket(self, buf: Any, op: str, det: bool, comp: str | None) -> None:
        """Reduces one contiguous device buffer in place (launch only, for NCCL)."""
        cp, n = self._cp, self.size
        ordered = op in ("sum", "mean") and buf.dtype.kind == "f" and (det or comp)
        if self.transport == "staged" or (ordered and self.transport != "nccl"):
            host = self._staging(buf)
            buf.get(out=host)  # synchronous copy to pinned memory
            self._host.allreduce(host, op, deterministic=det, compression=comp)
            buf.set(host)
            return
        if self.transport == "cuda_aware_mpi":
            from mpi4py import MPI  # noqa: PLC0415

            cp.cuda.get_current_stream().synchronize()
            ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
            self._host.mpi_comm.Allreduce(MPI.IN_PLACE, buf, op=ops[op])
        elif ordered:  # rank-ordered sum of every rank's (float16) contribution
            send = buf.astype(cp.float16) if comp and buf.dtype.itemsize > 2 else buf
            table = cp.empty((n, buf.size), send.dtype)

            def gather(stream: int) -> None:
                self._nccl.allGather(
                    send.data.ptr, table.data.ptr, send.size,
                    self._dtype_code(send.dtype), stream,
                )  # fmt: skip

            self._cp.cuda.get_current_stream().wait_event(self._on_comm_stream(gather))
            acc = table[0].astype(cp.float32 if send.dtype == cp.float16 else buf.dtype)
            for r in range(1, n):
                acc += table[r]
            buf[...] = acc
        else:
            view = buf.view(cp.uint8) if buf.dtype.kind == "b" else buf

            def reduce(stream: int) -> None:
                self._nccl.allReduce(
                    view.data.ptr, view.data.ptr, view.size,
                    self._dtype_code(view.dtype), self._op_code(op, buf.dtype), stream,
                )  # fmt: skip

            self._cp.cuda.get_current_stream().wait_event(self._on_comm_stream(reduce))
        if op == "mean":
            _divide(buf, n)

    def _prepare(self, arrays, op, deterministic, compression, bucket_bytes):
        items, single = as_array_list(arrays)
        check_reduce_dtypes(items, check_op(op))
        det = self.deterministic if deterministic is None else bool(deterministic)
        comp = self.compression if compression is _UNSET else check_compression(compression)
        return items, single, det, comp, bucket_bytes or self.bucket_bytes

    def allreduce(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> Any:
        items, single, det, comp, bb = self._prepare(
            arrays, op, deterministic, compression, bucket_bytes
        )
        if not all(is_cupy_array(a) for a in items):
            return self._host.allreduce(
                arrays, op, deterministic=det, compression=comp, bucket_bytes=bucket_bytes
            )
        self._check("allreduce", items, f", op={op}, det={det}, comp={comp}")
        for members in plan_buckets(items, bb):
            bucket = _Bucket(self._cp, items, members)
            self._reduce_bucket(bucket.buffer, op, det, comp)
            bucket.unpack(items)
        return items[0] if single else items

    def allreduce_async(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> CollectiveHandle:
        items, single, det, comp, bb = self._prepare(
            arrays, op, deterministic, compression, bucket_bytes
        )
        plain = op in ("sum", "max", "min") or (op == "mean" and not (det or comp))
        if self.transport != "nccl" or not plain or not all(is_cupy_array(a) for a in items):
            return CompletedHandle(
                self.allreduce(
                    arrays, op, deterministic=det, compression=comp, bucket_bytes=bucket_bytes
                )
            )
        self._check("allreduce_async", items, f", op={op}")
        buckets = [_Bucket(self._cp, items, m) for m in plan_buckets(items, bb)]
        nccl = self._nccl_mod

        def launch(stream: int) -> None:
            nccl.groupStart()
            try:
                for b in buckets:
                    view = b.buffer.view(self._cp.uint8) if b.buffer.dtype.kind == "b" else b.buffer
                    self._nccl.allReduce(
                        view.data.ptr, view.data.ptr, view.size,
                        self._dtype_code(view.dtype), self._op_code(op, b.buffer.dtype), stream,
                    )  # fmt: skip
            finally:
                nccl.groupEnd()

        event = self._on_comm_stream(launch)

        def finish() -> Any:
            for b in buckets:
                if op == "mean":
                    _divide(b.buffer, self.size)
                b.unpack(items)
            return items[0] if single else items

        return _GPUHandle(self, event, finish)

    # -- broadcast / allgather
    def broadcast_arrays(self, arrays: Any, root: int = 0) -> Any:
        root = check_root(root, self.size)
        items, single = as_array_list(arrays)
        if not all(is_cupy_array(a) for a in items) or self.transport != "nccl":
            if all(is_cupy_array(a) for a in items):  # staged through the host
                hosts = self._host.broadcast_arrays([a.get() for a in items], root)
                for a, h in zip(items, hosts):
                    a.set(h) if a.flags.c_contiguous else a.__setitem__(..., self._cp.asarray(h))
                return items[0] if single else items
            return self._host.broadcast_arrays(arrays, root)
        self._check("broadcast_arrays", items, f", root={root}")
        bufs = [a if a.flags.c_contiguous else self._cp.ascontiguousarray(a) for a in items]
        nccl = self._nccl_mod

        def launch(stream: int) -> None:
            nccl.groupStart()
            try:
                for b in bufs:
                    view = b.view(self._cp.uint8) if b.dtype.kind == "b" else b
                    self._nccl.bcast(
                        view.data.ptr, view.size, self._dtype_code(view.dtype), root, stream
                    )
            finally:
                nccl.groupEnd()

        self._cp.cuda.get_current_stream().wait_event(self._on_comm_stream(launch))
        for a, b in zip(items, bufs):
            if b is not a:
                a[...] = b
        return items[0] if single else items

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        return self._host.broadcast_object(obj, root)

    def allgather(self, array: Any) -> list[Any]:
        if not is_cupy_array(array):
            return self._host.allgather(array)
        if self.transport != "nccl":
            return [self._cp.asarray(p) for p in self._host.allgather(array.get())]
        cp = self._cp
        rows = int(array.shape[0]) if array.ndim else 1
        counts = self._host.allgather_object(
            [rows, list(array.shape[1:]), np.dtype(array.dtype).str]
        )
        if any(c[1:] != counts[0][1:] for c in counts):
            raise CollectiveMismatchError(
                f"allgather: ranks passed different trailing shapes or dtypes: {counts}"
            )
        most = max(int(c[0]) for c in counts)
        src = array.reshape((rows,) + tuple(array.shape[1:]))
        send = cp.zeros((most,) + tuple(array.shape[1:]), array.dtype)
        send[:rows] = src
        table = cp.empty((self.size,) + send.shape, array.dtype)
        sv = send.view(cp.uint8) if send.dtype.kind == "b" else send
        tv = table.view(cp.uint8) if table.dtype.kind == "b" else table

        def launch(stream: int) -> None:
            self._nccl.allGather(
                sv.data.ptr, tv.data.ptr, sv.size, self._dtype_code(sv.dtype), stream
            )

        cp.cuda.get_current_stream().wait_event(self._on_comm_stream(launch))
        out = [table[r, : int(c[0])] for r, c in enumerate(counts)]
        return [o.reshape(()) for o in out] if array.ndim == 0 else out

    def allgather_object(self, obj: Any) -> list[Any]:
        return self._host.allgather_object(obj)

    def barrier(self) -> None:
        self._cp.cuda.get_current_stream().synchronize()
        self._host.barrier()

    def abort(self, reason: str = "", exit_code: int = 1) -> None:
        if self._nccl is not None:
            try:
                self._nccl.abort()
            except Exception:  # noqa: BLE001 - aborting anyway
                pass
        self._host.abort(reason, exit_code)

    def close(self) -> None:
        if self._nccl is not None:
            self._nccl.destroy()
            self._nccl = None
        if self._own_host:
            self._host.close()
        super().close()


def maybe_gpu_communicator(host: Communicator) -> Communicator:
    """Wraps a multi-rank host communicator in `NCCLCommunicator` under the CuPy backend.

    Returns `host` unchanged for one rank, for the NumPy backend, or when
    `DISTKERAS_GPU_COLLECTIVES=host` asks for the host path.
    """
    from distkeras import backend as _backend  # noqa: PLC0415

    if host.size < 2 or _backend.backend() != "cupy":
        return host
    if os.environ.get(TRANSPORT_ENV, "").strip().lower() == "host":
        return host
    return NCCLCommunicator(host)


__all__ = [
    "NCCLCommunicator",
    "choose_transport",
    "cuda_aware_mpi",
    "is_cupy_array",
    "maybe_gpu_communicator",
    "plan_buckets",
]
