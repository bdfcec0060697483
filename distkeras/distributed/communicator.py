"""The `Communicator` interface, the single-process `LocalCommunicator` and fail-fast hooks.

A communicator moves arrays between the ranks of a data-parallel job. It knows
nothing of layers or models: the trainer hands it gradient buffers, metric sums
and small decisions. Arrays travel as raw buffers; small Python objects travel
as msgpack (never pickle), so nothing a peer sends can execute code here.
"""

from __future__ import annotations

import abc
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from distkeras.distributed.bucketing import DEFAULT_BUCKET_BYTES, GradientBucketer
from distkeras.distributed.deadlines import DEFAULT, Deadlines

REDUCE_OPS = ("sum", "mean", "max", "min")
_NDARRAY_EXT = 1

_UNSET: Any = DEFAULT  # "argument not given"


# ----------------------------------------------------------------------------- helpers


def is_array(x: Any) -> bool:
    """True for NumPy, CuPy and strict-backend arrays (not for scalars, lists or Tensors)."""
    if isinstance(x, np.ndarray):
        return True
    mod = type(x).__module__
    return (mod.startswith("cupy") and hasattr(x, "__cuda_array_interface__")) or (
        mod == "distkeras.backend.strict"
    )


def as_array_list(arrays: Any, name: str = "arrays") -> tuple[list[Any], bool]:
    """Returns `(list_of_arrays, was_single)`; scalars and nested lists become NumPy arrays."""
    if is_array(arrays):
        return [arrays], True
    if isinstance(arrays, (list, tuple)):
        return [a if is_array(a) else np.asarray(a) for a in arrays], False
    if isinstance(arrays, (int, float, np.generic)):
        return [np.asarray(arrays)], True
    raise TypeError(
        f"`{name}` must be an array or a list of arrays. Received: {name} of type "
        f"{type(arrays).__name__}"
    )


def check_op(op: Any) -> str:
    """Validates a reduction op name."""
    if op not in REDUCE_OPS:
        raise ValueError(f"Unknown reduction. Expected one of {REDUCE_OPS}. Received: op={op!r}")
    return op


def check_compression(compression: Any) -> str | None:
    """Normalizes a compression name: None, or 'float16'."""
    if compression in (None, False, "none", "None"):
        return None
    if compression in ("float16", "fp16"):
        return "float16"
    raise ValueError(
        f"Unknown compression. Expected None or 'float16'. Received: compression={compression!r}"
    )


def check_reduce_dtypes(arrays: Sequence[Any], op: str) -> None:
    """Raises if `op` is undefined for one of the arrays' dtypes."""
    for a in arrays:
        kind = np.dtype(a.dtype).kind
        if op == "mean" and kind not in "fc":
            raise ValueError(
                "op='mean' needs floating-point arrays; reduce integers with op='sum' and "
                f"divide yourself. Received: op='mean' with dtype={np.dtype(a.dtype).name}"
            )
        if kind == "b" and op == "sum":
            raise ValueError(
                "op='sum' is undefined for bool arrays; cast to an integer dtype. "
                "Received: op='sum' with dtype=bool"
            )
        if kind == "c" and op in ("max", "min"):
            raise ValueError(f"op={op!r} is undefined for complex arrays. Received: op={op!r}")
        if kind not in "biufc":
            raise ValueError(
                f"Cannot reduce arrays of dtype {np.dtype(a.dtype).name}. Received: op={op!r}"
            )


def check_root(root: Any, size: int) -> int:
    """Validates a broadcast root rank."""
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"`root` must be a rank in [0, {size}). Received: root={root!r}")
    return int(root)


def fp16_roundtrip(a: Any) -> Any:
    """Rounds a floating array through float16 in place (what compression sends)."""
    if np.dtype(a.dtype).kind == "f" and np.dtype(a.dtype).itemsize > 2:
        a[...] = a.astype("float16")
    return a


def _msgpack_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("Cannot send object arrays. Received: an array of dtype=object")
        import msgpack  # noqa: PLC0415

        body = msgpack.packb(
            [obj.dtype.str, list(obj.shape), np.ascontiguousarray(obj).tobytes()], use_bin_type=True
        )
        return msgpack.ExtType(_NDARRAY_EXT, body)
    raise TypeError(
        "Only plain data travels as an object (dict, list, tuple, str, bytes, int, float, "
        f"bool, None, NumPy scalars and arrays). Received: an object of type {type(obj).__name__}"
    )


def _msgpack_ext_hook(code: int, data: bytes) -> Any:
    if code != _NDARRAY_EXT:
        raise ValueError(f"Unknown msgpack extension type. Received: code={code}")
    import msgpack  # noqa: PLC0415

    dtype, shape, raw = msgpack.unpackb(data, raw=False)
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise ValueError(f"Refusing to decode an object array. Received: dtype={dtype!r}")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def pack_object(obj: Any) -> bytes:
    """Serializes plain data with msgpack (tuples come back as lists)."""
    import msgpack  # noqa: PLC0415

    return msgpack.packb(obj, default=_msgpack_default, use_bin_type=True)


def unpack_object(data: bytes | memoryview) -> Any:
    """Inverse of `pack_object`; never executes code."""
    import msgpack  # noqa: PLC0415

    return msgpack.unpackb(bytes(data), raw=False, strict_map_key=False, ext_hook=_msgpack_ext_hook)


# ----------------------------------------------------------------------------- interface


class CollectiveHandle:
    """A collective in flight; `wait()` returns its result."""

    def test(self) -> bool:
        """Returns True when the operation has completed (`wait()` will not block)."""
        raise NotImplementedError

    def wait(self) -> Any:
        """Blocks until the operation completes and returns its result."""
        raise NotImplementedError


class CompletedHandle(CollectiveHandle):
    """A handle whose result is already known."""

    def __init__(self, result: Any):
        self._result = result

    def test(self) -> bool:
        return True

    def wait(self) -> Any:
        return self._result


class StoredTopology:
    """The four topology properties of a communicator, read from attributes.

    For communicators that learn their place once, in `__init__`, and store it
    as `_rank`, `_size`, `_local_rank` and `_local_size` (MPI, Ray).
    """

    _rank: int
    _size: int
    _local_rank: int
    _local_size: int

    @property
    def rank(self) -> int:
        """This process's rank in [0, size)."""
        return self._rank

    @property
    def size(self) -> int:
        """The number of ranks."""
        return self._size

    @property
    def local_rank(self) -> int:
        """This process's rank among the ranks on its node."""
        return self._local_rank

    @property
    def local_size(self) -> int:
        """The number of ranks on this node."""
        return self._local_size


class BucketedReduce:
    """Argument handling of `allreduce` for communicators that stage through a
    `GradientBucketer` kept as `_bucketer` (MPI, Ray)."""

    _bucketer: GradientBucketer

    def _reduce_args(self, arrays, op, deterministic, compression, bucket_bytes):
        """(items, single, deterministic, compression, bucketer) for one all-reduce call."""
        items, single = as_array_list(arrays)
        check_reduce_dtypes(items, check_op(op))
        det = self.deterministic if deterministic is None else bool(deterministic)
        comp = self.compression if compression is _UNSET else check_compression(compression)
        bucketer = self._bucketer
        if bucket_bytes is not None and bucket_bytes != bucketer.bucket_bytes:
            bucketer = GradientBucketer(bucket_bytes, bucketer.inplace_bytes)
        return items, single, det, comp, bucketer


class Communicator(Deadlines, abc.ABC):
    """Moves arrays between the ranks of a data-parallel job.

    Every rank must call the same collectives in the same order with matching
    shapes and dtypes. Implementations check this (see `check`) and never
    wait forever (see `timeout`).

    Args:
        deterministic: Default for `allreduce(deterministic=...)`: sum floating
            contributions in rank order on every rank, independent of MPI's
            algorithm, so every rank gets bitwise the same result.
        compression: Default for `allreduce(compression=...)`: None or 'float16'.
        check: Fingerprint each collective and raise `CollectiveMismatchError`
            when ranks disagree.
        timeout: Seconds a collective may wait for the other ranks; None or 0
            disables it. Defaults to `DISTKERAS_COLLECTIVE_TIMEOUT`, else adapts
            to the job: max(120 s, 20x the slowest step seen) (see deadlines.py).
        bucket_bytes: Size of the staging buckets used to fuse small arrays.
        stall_warning: Seconds a collective waits before logging the ranks that
            have not arrived (once per stall); None or 0 disables it. Defaults
            to `DISTKERAS_STALL_WARNING_S` or 30 s.
    """

    backend: str = "abstract"

    def __init__(
        self,
        *,
        deterministic: bool = False,
        compression: str | None = None,
        check: bool = True,
        timeout: float | None = _UNSET,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        stall_warning: float | None = _UNSET,
    ):
        self.deterministic = bool(deterministic)
        self.compression = check_compression(compression)
        self.check = bool(check)
        self._init_deadlines(timeout, stall_warning)
        self.bucket_bytes = bucket_bytes
        self._closed = False

    # -- topology
    @property
    @abc.abstractmethod
    def rank(self) -> int:
        """This process's rank in [0, size)."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The number of ranks."""

    @property
    @abc.abstractmethod
    def local_rank(self) -> int:
        """This process's rank among the ranks on its node."""

    @property
    @abc.abstractmethod
    def local_size(self) -> int:
        """The number of ranks on this node."""

    @property
    def is_coordinator(self) -> bool:
        """True on rank 0, the rank that prints and writes files."""
        return self.rank == 0

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return self._closed

    # -- collectives
    @abc.abstractmethod
    def allreduce(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> Any:
        """Reduces arrays element-wise across ranks.

        Contiguous writable arrays are reduced in place and returned; arrays
        lying back to back in one flat buffer go in one call with no copy;
        other small arrays are packed into buckets of `bucket_bytes`.

        Args:
            arrays: An array, or a list of arrays (any dtypes and shapes).
            op: 'sum', 'mean', 'max' or 'min'.
            deterministic: Sum in rank order on every rank (bitwise equal results);
                defaults to the communicator's setting.
            compression: 'float16' sends floating arrays as float16 and sums them
                in float32 (or wider); defaults to the communicator's setting.
            bucket_bytes: Staging bucket size; defaults to the communicator's.

        Returns:
            The reduced array (given one array) or list of arrays.
        """

    @abc.abstractmethod
    def allreduce_async(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> CollectiveHandle:
        """Starts `allreduce` without waiting; `handle.wait()` returns its result.

        The arrays must not be touched until `wait()` returns.
        """

    def broadcast(self, value: Any, root: int = 0) -> Any:
        """Sends `value` from `root` to every rank.

        An array or a list of arrays is broadcast in place (every rank passes
        arrays of the same shapes and dtypes); anything else is plain data sent
        with msgpack (non-root ranks may pass None).

        Returns:
            The root's value.
        """
        if is_array(value) or (
            isinstance(value, (list, tuple)) and value and all(is_array(v) for v in value)
        ):
            return self.broadcast_arrays(value, root)
        return self.broadcast_object(value, root)

    @abc.abstractmethod
    def broadcast_arrays(self, arrays: Any, root: int = 0) -> Any:
        """Overwrites `arrays` on every rank with root's (in place where writable)."""

    @abc.abstractmethod
    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        """Returns root's plain-data `obj` on every rank (msgpack; tuples become lists)."""

    @abc.abstractmethod
    def allgather(self, array: Any) -> list[Any]:
        """Returns every rank's array, in rank order; first dimensions may differ."""

    @abc.abstractmethod
    def allgather_object(self, obj: Any) -> list[Any]:
        """Returns every rank's plain-data `obj`, in rank order."""

    # -- sharded collectives (a flat buffer cut into one contiguous shard per rank)
    # True where `reduce_scatter` and `allgather_shards` move only shards (MPI);
    # elsewhere they are an all-reduce and an all-gather, and the trainer keeps
    # the plain all-reduce step.
    native_shards = False

    def shard_range(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """The `[lo, hi)` of an `n`-element flat buffer owned by `rank` (default: this one).

        Contiguous and as even as can be: the first `n % size` ranks get one more.
        """
        r = self.rank if rank is None else rank
        base, extra = divmod(int(n), self.size)
        lo = r * base + min(r, extra)
        return lo, lo + base + (1 if r < extra else 0)

    def reduce_scatter(self, flat: Any, op: str = "sum") -> Any:
        """Reduces a 1-D buffer across ranks; returns this rank's shard of the result.

        Every rank passes a buffer of the same size and dtype; the shard is
        `flat[lo:hi]` of the reduced buffer for `(lo, hi) = shard_range(flat.size)`.
        The returned array may be a view of `flat` or a separate array, and
        the rest of `flat` is left unspecified.
        """
        self.allreduce([flat], op=op)
        lo, hi = self.shard_range(flat.size)
        return flat[lo:hi]

    def allgather_shards(self, flat: Any) -> Any:
        """Fills every rank's `flat` with each rank's own shard of it (in place); returns `flat`."""
        pieces = self.allgather(flat[slice(*self.shard_range(flat.size))])
        for r, piece in enumerate(pieces):
            lo, hi = self.shard_range(flat.size, r)
            flat[lo:hi] = piece
        return flat

    @abc.abstractmethod
    def barrier(self) -> None:
        """Waits until every rank has arrived."""

    @abc.abstractmethod
    def abort(self, reason: str = "", exit_code: int = 1) -> None:
        """Ends every rank of the job now, printing `reason` on stderr."""

    def close(self) -> None:
        """Releases the communicator's resources (does not finalize MPI)."""
        self._closed = True

    def __enter__(self) -> Communicator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} rank={self.rank} size={self.size} "
            f"deterministic={self.deterministic}>"
        )


# ----------------------------------------------------------------------------- local


class LocalCommunicator(Communicator):
    """The communicator of a single process: every collective is the identity.

    It validates its arguments like the MPI communicator does, so a script that
    works here passes the same checks on N ranks. With `compression='float16'`,
    floating arrays are rounded through float16, as they would be on the wire.
    """

    backend = "local"

    @property
    def rank(self) -> int:
        return 0

    @property
    def size(self) -> int:
        return 1

    @property
    def local_rank(self) -> int:
        return 0

    @property
    def local_size(self) -> int:
        return 1

    def allreduce(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> Any:
        items, single = as_array_list(arrays)
        check_reduce_dtypes(items, check_op(op))
        comp = self.compression if compression is _UNSET else check_compression(compression)
        if comp and op in ("sum", "mean"):
            items = [
                fp16_roundtrip(a if getattr(a.flags, "writeable", True) else a.copy())
                for a in items
            ]
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
        return CompletedHandle(self.allreduce(arrays, op, compression=compression))

    def broadcast_arrays(self, arrays: Any, root: int = 0) -> Any:
        check_root(root, 1)
        items, single = as_array_list(arrays)
        return items[0] if single else items

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        check_root(root, 1)
        pack_object(obj)  # fail here, as on N ranks, for data msgpack cannot carry
        return obj

    def allgather(self, array: Any) -> list[Any]:
        items, _ = as_array_list(array, "array")
        return [items[0]]

    def allgather_object(self, obj: Any) -> list[Any]:
        pack_object(obj)
        return [obj]

    def barrier(self) -> None:
        return None

    def abort(self, reason: str = "", exit_code: int = 1) -> None:
        _print_abort(0, reason)
        os._exit(exit_code)


def _print_abort(rank: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        if reason:
            sys.stderr.write(f"[distkeras] rank {rank} aborting the job: {reason}\n")
        sys.stderr.flush()


# ----------------------------------------------------------------------------- fail-fast


def report_failure(comm: Communicator, exc: BaseException) -> None:
    """Prints '[distkeras] rank R failed:' and the traceback on stderr, then aborts every rank."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with contextlib.suppress(Exception):
        sys.stderr.write(f"[distkeras] rank {comm.rank} failed:\n{text}")
        sys.stderr.flush()
    comm.abort(f"uncaught {type(exc).__name__} on rank {comm.rank}", 1)


_hook_state: dict[str, Any] = {"previous": None, "comm": None}


def install_excepthook(comm: Communicator) -> None:
    """Makes an uncaught exception on any rank abort the whole job.

    In a multi-rank job the hook prints '[distkeras] rank R failed:' with the
    traceback on that rank's stderr (mpirun forwards it) and aborts, ending
    every rank within seconds. In one process the usual traceback is printed.
    Installing again replaces the communicator.
    """
    if _hook_state["previous"] is None:
        _hook_state["previous"] = sys.excepthook
        sys.excepthook = _excepthook
    _hook_state["comm"] = comm


def uninstall_excepthook() -> None:
    """Restores the excepthook that `install_excepthook` replaced."""
    if _hook_state["previous"] is not None:
        sys.excepthook = _hook_state["previous"]
    _hook_state["previous"] = None
    _hook_state["comm"] = None


def _excepthook(etype: type, value: BaseException, tb: Any) -> None:
    comm = _hook_state["comm"]
    if comm is None or comm.closed or comm.size <= 1 or issubclass(etype, KeyboardInterrupt):
        (_hook_state["previous"] or sys.__excepthook__)(etype, value, tb)
        if comm is not None and not comm.closed and comm.size > 1:
            comm.abort("interrupted", 1)
        return
    if value.__traceback__ is None:
        value = value.with_traceback(tb)
    report_failure(comm, value)


@contextlib.contextmanager
def fail_fast(comm: Communicator) -> Iterator[Communicator]:
    """Context manager: an exception escaping the block aborts every rank.

    In one process (size 1) the exception propagates as usual.
    """
    try:
        yield comm
    except BaseException as e:  # noqa: BLE001
        if comm.size > 1 and not comm.closed and not isinstance(e, (SystemExit, GeneratorExit)):
            report_failure(comm, e)
        raise
