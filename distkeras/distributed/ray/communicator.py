"""`RayCommunicator`: the communicator for ranks that are Ray actors (no PyTorch).

Rendezvous goes through one named *rendezvous actor* per group (an asyncio
actor that holds no CPU). Every collective is one or two *exchanges* with it:
each rank posts a small header (the collective's fingerprint) and a value,
and gets back every rank's header and value once all have arrived. Small
payloads travel inline in the exchange; large arrays stay in Ray's object
store and only their object refs are exchanged (zero-copy reads on one node).

When every rank of the group runs on one node (x86-64), large all-reduces go
through a shared-memory segment instead of the object store (`shm.py`; off
with DISTKERAS_RAY_SHM=0); the rest of this paragraph is the object-store path.
All-reduce of a large buffer is bandwidth-efficient: the buffer is cut into
one chunk per rank; in a *reduce-scatter* each rank puts the chunks the other
ranks own into the object store and sums the contributions to its own chunk,
in rank order; in an *all-gather* each rank puts its reduced chunk and copies
the others' reduced chunks in. Each rank receives about 2 (N-1)/N of the
buffer, whatever the number of ranks. With two ranks (or a buffer under
`DIRECT_BYTES`) each rank instead takes the other ranks' whole buffers in one
round trip: at N=2 that is the same number of bytes with half the latency.
Because every element is summed in rank order, results are bitwise equal on
every rank and do not depend on timing, so the deterministic mode costs
nothing extra.

Every exchange compares the ranks' fingerprints (`CollectiveMismatchError`
naming the disagreeing ranks) and waits at most `timeout` seconds
(`CollectiveTimeoutError` naming the ranks that never arrived); past the stall
warning it asks the actor who has arrived and logs the ranks that have not
(see deadlines.py). `abort()` marks the group failed, which ends every rank
waiting in a collective at once.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import threading
import time
from typing import Any

import numpy as np
import ray

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
from distkeras.distributed.deadlines import describe_absence, warn_stall
from distkeras.distributed.errors import (
    CollectiveMismatchError,
    CollectiveTimeoutError,
    CommunicatorClosedError,
    DistributedError,
)
from distkeras.distributed.guard import describe_arrays, signature
from distkeras.distributed.mpi import _divide, _float16_table
from distkeras.distributed.ray import shm
from distkeras.distributed.ray.rendezvous import PeerFailedError, get_rendezvous
from distkeras.distributed.ray.shm import _key_text

GROUP_ENV = "DISTKERAS_RAY_GROUP"
NAMESPACE_ENV = "DISTKERAS_RAY_NAMESPACE"
RANK_ENV = "DISTKERAS_RAY_RANK"
SIZE_ENV = "DISTKERAS_RAY_SIZE"
LOCAL_RANK_ENV = "DISTKERAS_RAY_LOCAL_RANK"
LOCAL_SIZE_ENV = "DISTKERAS_RAY_LOCAL_SIZE"

# Buffers up to this size travel inline in one exchange and are summed by every rank.
INLINE_BYTES = 256 * 1024
# Up to this size (and always with two ranks), every rank gets every other rank's buffer.
DIRECT_BYTES = 1024 * 1024
# Larger buffers are reduced in segments of at most this size (bounds object-store use).
SEGMENT_BYTES = 64 * 1024 * 1024
_RAY_BUCKET_BYTES = 16 * 1024 * 1024
SHM_ENV = "DISTKERAS_RAY_SHM"
_JOIN_TIMEOUT_S = 120.0


# ----------------------------------------------------------------------------- communicator


def _bounds(n: int, parts: int) -> list[int]:
    return [n * i // parts for i in range(parts + 1)]


class RayCommunicator(shm.SharedMemoryTransport, StoredTopology, BucketedReduce, Communicator):
    """A communicator between Ray actors, rendezvousing through a named actor.

    Construct it in each of the `size` actors (usually through
    `distkeras.distributed.initialize(backend="ray")` inside
    `distkeras.distributed.ray.run`, which sets the environment up).

    Args:
        rank: This actor's rank in [0, size).
        size: The number of ranks.
        group: The name of the group's rendezvous actor (unique per job).
        namespace: The Ray namespace of the rendezvous actor.
        local_rank: Rank among this node's ranks (defaults to `rank`).
        local_size: Ranks on this node (defaults to `size`).
        timeout, deterministic, compression, check, bucket_bytes, stall_warning: See
            `Communicator`.
    """

    backend = "ray"

    def __init__(
        self,
        rank: int,
        size: int,
        group: str,
        namespace: str | None = None,
        local_rank: int | None = None,
        local_size: int | None = None,
        timeout: float | None = _UNSET,
        *,
        deterministic: bool = False,
        compression: str | None = None,
        check: bool = True,
        bucket_bytes: int | None = None,
        stall_warning: float | None = _UNSET,
    ):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"`size` must be a positive integer. Received: size={size!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < size:
            raise ValueError(f"`rank` must be in [0, {size}). Received: rank={rank!r}")
        if not group or not isinstance(group, str):
            raise ValueError(f"`group` must be a non-empty string. Received: group={group!r}")
        bucketer = GradientBucketer(_RAY_BUCKET_BYTES if bucket_bytes is None else bucket_bytes)
        super().__init__(
            deterministic=deterministic,
            compression=compression,
            check=check,
            timeout=timeout,
            bucket_bytes=bucketer.bucket_bytes,
            stall_warning=stall_warning,
        )
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), namespace=namespace)
        self._rank, self._size = rank, size
        self._local_rank = rank if local_rank is None else int(local_rank)
        self._local_size = size if local_size is None else int(local_size)
        self._group = group
        self._bucketer = bucketer
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._last_start: float | None = None  # for the adaptive timeout
        self._broken: str | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        # Shared-memory all-reduce when every rank is on this node (see shm.py).
        # Calls take tickets in call order, so sync and async all-reduces use the
        # segment in the same order on every rank.
        self._shm_on = (
            size > 1
            and self._local_size == size
            and shm.supported()
            and os.environ.get(SHM_ENV, "1") != "0"
        )
        self._shm: shm.ShmReducer | None = None
        self._shm_tickets = 0
        self._shm_turn = 0
        self._shm_cond = threading.Condition()
        self._actor = get_rendezvous(group, size, namespace)
        self._join()
        if self._shm_on:
            atexit.register(self._close_shm)

    @classmethod
    def from_environment(cls, **kwargs: Any) -> RayCommunicator:
        """Builds the communicator from the variables `distkeras.distributed.ray.run` sets.

        Raises:
            RuntimeError: When this process is not a worker started by the Ray driver.
        """
        env = os.environ
        if not env.get(GROUP_ENV):
            raise RuntimeError(
                "backend='ray' needs to run inside a worker started by "
                "distkeras.distributed.ray.run() or run_script() (or construct "
                f"RayCommunicator(rank, size, group) yourself). Received: {GROUP_ENV} unset"
            )
        return cls(
            rank=int(env[RANK_ENV]),
            size=int(env[SIZE_ENV]),
            group=env[GROUP_ENV],
            namespace=env.get(NAMESPACE_ENV) or None,
            local_rank=int(env.get(LOCAL_RANK_ENV, env[RANK_ENV])),
            local_size=int(env.get(LOCAL_SIZE_ENV, env[SIZE_ENV])),
            **kwargs,
        )

    def _join(self) -> None:
        ref = self._actor.join.remote(self._rank, self._size)
        timeout = _JOIN_TIMEOUT_S if self.timeout is None else max(self.timeout, _JOIN_TIMEOUT_S)
        try:
            reply = ray.get(ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise CollectiveTimeoutError(
                f"Rank {self._rank} waited {timeout:.0f} s for the {self._size} ranks of group "
                f"{self._group!r} to join.",
                timeout=timeout,
            ) from None
        if reply[0] == "error":
            raise ValueError(reply[1])
        if reply[0] == "abort":
            self._raise_abort(reply[1])

    # -- topology (rank, size, local_rank, local_size: StoredTopology)
    @property
    def group(self) -> str:
        """The name of the rendezvous actor."""
        return self._group

    @property
    def allreduce_transport(self) -> str:
        """How buffers over `INLINE_BYTES` are all-reduced: 'shared_memory' or 'object_store'.

        Shared memory when every rank runs on this node (x86-64, unless
        DISTKERAS_RAY_SHM=0); Ray's object store otherwise.
        """
        return "shared_memory" if self._shm_on else "object_store"

    # -- exchange plumbing
    def _next_seq(self) -> int:
        if self._closed:
            raise CommunicatorClosedError("The communicator is closed.")
        if self._broken:
            raise CommunicatorClosedError(
                f"The communicator is unusable after an earlier failure ({self._broken}); "
                "abort the job."
            )
        with self._seq_lock:
            now = time.perf_counter()
            if self._last_start is not None:
                self.observe_interval(now - self._last_start)
            self._last_start = now
            self._seq += 1
            return self._seq

    def _raise_abort(self, failure: dict) -> None:
        self._broken = f"rank {failure['rank']} aborted the job"
        raise PeerFailedError(
            f"Rank {failure['rank']} aborted the job; rank {self._rank} stops too. "
            f"Reason: {failure['reason']}",
            rank=failure["rank"],
            reason=failure["reason"],
        )

    def _exchange(
        self, key: tuple, header: tuple, value: Any = None, scatter: bool = False
    ) -> list[Any]:
        """Posts (header, value) under `key`; returns every rank's value (checked)."""
        ref = self._actor.exchange.remote(key, self._rank, header, [value], scatter)
        try:
            reply = self._wait(ref, key, header)
        except ray.exceptions.RayActorError as e:
            self._broken = "the rendezvous actor died"
            raise DistributedError(
                f"The rendezvous actor of group {self._group!r} died (its owner, the driver or "
                f"rank 0, ended) during collective {_key_text(key)} {header[-1]} on rank "
                f"{self._rank}."
            ) from e
        if reply[0] == "abort":
            self._raise_abort(reply[1])
        _, headers, values = reply
        if self.check and any(h[:-1] != headers[0][:-1] for h in headers):
            self._mismatch(key, headers)
        return values

    def _wait(self, ref: Any, key: tuple, header: tuple) -> Any:
        """`ray.get(ref)`, warning once past the stall window, raising past the timeout."""
        timeout = self.timeout
        stall = self.stall_deadline(timeout)
        start = time.perf_counter()
        if stall is not None:
            try:
                return ray.get(ref, timeout=stall)
            except ray.exceptions.GetTimeoutError:
                missing, elsewhere, arrived = self._whereabouts(key)
                if missing or elsewhere:
                    absence = describe_absence(missing, elsewhere, arrived, final=False)
                    what = f"{_key_text(key)} {header[-1]}"
                    waited = time.perf_counter() - start
                    adaptive = self.timeout_is_adaptive
                    warn_stall(self._rank, what, waited, absence, timeout, adaptive)
        left = None if timeout is None else max(0.0, timeout - (time.perf_counter() - start))
        try:
            return ray.get(ref, timeout=left)
        except ray.exceptions.GetTimeoutError:
            self._timed_out(key, header, timeout)

    def _whereabouts(self, key: tuple) -> tuple[list[int], dict[int, str], list[int]]:
        """(ranks not in any collective, {rank: other collective}, ranks in this one)."""
        try:
            status = ray.get(self._actor.status.remote(key), timeout=10)
        except Exception:  # noqa: BLE001 - the actor may be gone
            status = {"arrived": [], "waiting": {}}
        others = [r for r in range(self._size) if r != self._rank]
        arrived = [r for r in others if r in status["arrived"]]
        elsewhere = {}
        for r in others:
            if r in arrived or r not in status["waiting"]:
                continue
            k, desc = status["waiting"][r]
            if tuple(k) != tuple(key):
                elsewhere[r] = f"{_key_text(tuple(k))} {desc}"
        missing = [r for r in others if r not in arrived and r not in elsewhere]
        return missing, elsewhere, arrived

    def _timed_out(self, key: tuple, header: tuple, timeout: float | None = None) -> None:
        timeout = self.timeout if timeout is None else timeout
        missing, elsewhere, arrived = self._whereabouts(key)
        what = f"{_key_text(key)} {header[-1]}"
        how = (
            "the adaptive default, max(120 s, 20x the slowest step seen)"
            if self.timeout_is_adaptive
            else "as given"
        )
        self._broken = f"collective {what} timed out"
        raise CollectiveTimeoutError(
            f"Collective {what} timed out after {timeout:.1f} s on rank {self._rank}: "
            f"{describe_absence(missing, elsewhere, arrived)}. The timeout ({how}) is set with "
            "distkeras.distributed.initialize(timeout=...) or DISTKERAS_COLLECTIVE_TIMEOUT; "
            "the stall warning with stall_warning=... or DISTKERAS_STALL_WARNING_S.",
            sequence=key[0],
            missing_ranks=missing + sorted(elsewhere),
            elsewhere=elsewhere,
            timeout=timeout,
        )

    def _mismatch(self, key: tuple, headers: list[tuple]) -> None:
        disagreeing = [r for r, h in enumerate(headers) if h[:-1] != headers[0][:-1]]
        groups: dict[str, list[int]] = {}
        for r, h in enumerate(headers):
            groups.setdefault(h[-1], []).append(r)
        lines = [
            f"  rank {ranks[0]}: {text}" if len(ranks) == 1 else f"  ranks {ranks}: {text}"
            for text, ranks in groups.items()
        ]
        raise CollectiveMismatchError(
            "Ranks called different collectives (or with different shapes/dtypes) at "
            f"collective {_key_text(key)} on rank {self._rank}:\n"
            + "\n".join(lines)
            + f"\nDisagreeing ranks (compared with rank 0): {disagreeing}. Every rank must "
            "call the same collectives in the same order with the same shapes and dtypes.",
            sequence=key[0],
            calls={r: h[-1] for r, h in enumerate(headers)},
            disagreeing_ranks=disagreeing,
        )

    # -- allreduce

    def _reduce_header(self, opname: str, items: list, op: str, det: bool, comp: Any) -> tuple:
        text = (
            f"{opname}(op={op!r}, {len(items)} array(s): {describe_arrays(items)}, "
            f"compression={comp!r})"
        )
        return ("allreduce", signature(items), op, bool(comp), len(items), text)

    def allreduce(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> Any:
        items, single, _det, comp, bucketer = self._reduce_args(
            arrays, op, deterministic, compression, bucket_bytes
        )
        seq, ticket = self._next_seq_and_ticket()
        header = self._reduce_header("allreduce", items, op, _det, comp)
        return self._run_allreduce(seq, header, items, single, op, comp, bucketer, ticket)

    def _next_seq_and_ticket(self) -> tuple[int, int | None]:
        seq = self._next_seq()
        if not self._shm_on:
            return seq, None
        with self._shm_cond:
            self._shm_tickets += 1
            return seq, self._shm_tickets

    def _run_allreduce(self, seq, header, items, single, op, comp, bucketer, ticket=None):
        if ticket is None:
            return self._reduce_buckets(seq, header, items, single, op, comp, bucketer)
        with self._shm_cond:  # wait for the earlier calls' turn to end
            self._shm_cond.wait_for(lambda: self._shm_turn == ticket - 1)
        try:
            return self._reduce_buckets(seq, header, items, single, op, comp, bucketer)
        finally:
            with self._shm_cond:
                self._shm_turn = ticket
                self._shm_cond.notify_all()

    def _reduce_buckets(self, seq, header, items, single, op, comp, bucketer) -> Any:
        results: list[Any] = [None] * len(items)
        key = 0
        for bucket in bucketer.plan(items):
            bucket.pack(items)
            buf = bucket.buffer
            step = max(1, SEGMENT_BYTES // max(buf.itemsize, 1))
            for lo in range(0, max(buf.size, 1), step):
                self._reduce_segment((seq, key), header, buf[lo : lo + step], op, comp)
                key += 1
            if op == "mean":
                _divide(buf, self._size)
            bucket.unpack(items, results)
        if key == 0:  # nothing to move: still meet, so fingerprints are checked
            self._exchange((seq, 0, 0), header)
        return results[0] if single else results

    def _reduce_segment(self, key: tuple, header: tuple, buf: np.ndarray, op: str, comp) -> None:
        n, me = self._size, self._rank
        half = comp == "float16" and buf.dtype.kind == "f" and buf.dtype.itemsize > 2
        half = half and op in ("sum", "mean")
        send = buf.astype(np.float16) if half else buf
        if buf.nbytes <= INLINE_BYTES or buf.size < n:  # latency-bound: one inline exchange
            self._combine(self._exchange(key + (0,), header, send), buf, op, half)
            return
        if self._shm_on and not half and buf.flags.c_contiguous:
            self._shm_reduce(key, header, buf, op)
            return
        if n == 2 or buf.nbytes <= DIRECT_BYTES:
            # Every rank takes every other rank's whole buffer through the object store:
            # (n-1) buffers in, one round trip. At n=2 that is as many bytes as a
            # reduce-scatter + all-gather, with half the round trips.
            refs = self._exchange(key + (0,), header, ray.put(send))
            got = ray.get([refs[r] for r in range(n) if r != me])
            got.insert(me, send)
            self._combine(got, buf, op, half)
            del got, refs
            return
        # Reduce-scatter: rank r sums chunk r of every rank's buffer, in rank order.
        bounds = _bounds(buf.size, n)
        parts = [None if r == me else ray.put(send[bounds[r] : bounds[r + 1]]) for r in range(n)]
        got = self._exchange(key + (0,), header, parts, scatter=True)
        mine = buf[bounds[me] : bounds[me + 1]]
        contributions = ray.get([got[r] for r in range(n) if r != me])
        contributions.insert(me, send[bounds[me] : bounds[me + 1]])
        self._combine(contributions, mine, op, half)
        del contributions, got, parts
        # All-gather: every rank copies in the other ranks' reduced chunks.
        owners = self._exchange(key + (1,), header, ray.put(mine))
        chunks = ray.get([owners[r] for r in range(n) if r != me])
        for r, chunk in zip([r for r in range(n) if r != me], chunks):
            np.copyto(buf[bounds[r] : bounds[r + 1]], chunk)
        del owners, chunks

    @staticmethod
    def _combine(values: list[np.ndarray], out: np.ndarray, op: str, half: bool) -> None:
        """out = values[0] (op) values[1] (op) ... in rank order (float16 summed in float32)."""
        if half:
            lut = _float16_table()
            acc = out if out.dtype == np.float32 else np.empty(out.shape, np.float32)
            row = np.empty(out.shape, np.float32)
            np.take(lut, np.asarray(values[0]).view(np.uint16), out=acc, mode="clip")
            for v in values[1:]:
                np.take(lut, np.asarray(v).view(np.uint16), out=row, mode="clip")
                np.add(acc, row, out=acc)
            if acc is not out:
                out[...] = acc
            return
        ufunc = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}[op]
        if len(values) == 1:
            if values[0] is not out:
                np.copyto(out, values[0])
            return
        values = [
            v.copy() if i >= 2 and np.shares_memory(v, out) else v for i, v in enumerate(values)
        ]
        ufunc(values[0], values[1], out=out)
        for v in values[2:]:
            ufunc(out, v, out=out)

    def allreduce_async(
        self,
        arrays: Any,
        op: str = "sum",
        *,
        deterministic: bool | None = None,
        compression: str | None = _UNSET,
        bucket_bytes: int | None = None,
    ) -> CollectiveHandle:
        items, single, _det, comp, bucketer = self._reduce_args(
            arrays, op, deterministic, compression, bucket_bytes
        )
        # Numbered now, in call order, identically on every rank.
        seq, ticket = self._next_seq_and_ticket()
        header = self._reduce_header("allreduce_async", items, op, _det, comp)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="distkeras-ray-allreduce"
            )
        future = self._executor.submit(
            self._run_allreduce, seq, header, items, single, op, comp, bucketer, ticket
        )
        return _FutureHandle(future)

    # -- broadcast
    def broadcast_arrays(self, arrays: Any, root: int = 0) -> Any:
        root = check_root(root, self._size)
        items, single = as_array_list(arrays)
        seq = self._next_seq()
        header = (
            "broadcast_arrays",
            signature(items),
            root,
            len(items),
            f"broadcast_arrays(root={root}, {len(items)} array(s): {describe_arrays(items)})",
        )
        results: list[Any] = [None] * len(items)
        plan = self._bucketer.plan(items)
        for b, bucket in enumerate(plan):
            value = None
            if self._rank == root:
                bucket.pack(items)
                buf = bucket.buffer
                value = buf if buf.nbytes <= INLINE_BYTES else ray.put(buf)
            values = self._exchange((seq, b, 0), header, value)
            if self._rank == root:
                for i, _, _ in bucket.members:
                    results[i] = items[i]
            else:
                got = values[root]
                np.copyto(bucket.buffer, ray.get(got) if isinstance(got, ray.ObjectRef) else got)
                bucket.unpack(items, results)
        if not plan:
            self._exchange((seq, 0, 0), header)
        return results[0] if single else results

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        root = check_root(root, self._size)
        data = pack_object(obj) if self._rank == root else None
        seq = self._next_seq()
        header = ("broadcast_object", root, f"broadcast_object(root={root})")
        values = self._exchange((seq, 0, 0), header, data)
        return obj if self._rank == root else unpack_object(values[root])

    # -- allgather
    def allgather(self, array: Any) -> list[Any]:
        items, _ = as_array_list(array, "array")
        host = items[0]
        if not isinstance(host, np.ndarray):
            from distkeras.backend import to_numpy  # noqa: PLC0415

            host = to_numpy(host)
        seq = self._next_seq()
        header = (
            "allgather",
            signature([host], skip_first_dim=True),
            f"allgather({describe_arrays([host], skip_first_dim=True)})",
        )
        value = host if host.nbytes <= INLINE_BYTES else ray.put(host)
        values = self._exchange((seq, 0, 0), header, value)
        pieces = []
        for v in values:
            arr = ray.get(v) if isinstance(v, ray.ObjectRef) else v
            pieces.append(np.array(arr, copy=True))
        del values, value
        if not isinstance(items[0], np.ndarray):
            from distkeras.backend import get_array_module  # noqa: PLC0415

            module = get_array_module(items[0])
            pieces = [module.asarray(p) for p in pieces]
        return pieces

    def allgather_object(self, obj: Any) -> list[Any]:
        data = pack_object(obj)
        seq = self._next_seq()
        values = self._exchange((seq, 0, 0), ("allgather_object", "allgather_object()"), data)
        return [obj if r == self._rank else unpack_object(v) for r, v in enumerate(values)]

    def barrier(self) -> None:
        seq = self._next_seq()
        self._exchange((seq, 0, 0), ("barrier", "barrier()"))

    # -- lifecycle
    def notify_failure(self, reason: str, exit_code: int = 1) -> None:
        """Marks the group failed with `reason`, waking every rank waiting in a collective."""
        with contextlib.suppress(Exception):
            ray.get(self._actor.abort.remote(self._rank, reason, exit_code), timeout=5)

    def abort(self, reason: str = "", exit_code: int = 1) -> None:
        _print_abort(self._rank, reason)
        self.notify_failure(reason or f"rank {self._rank} called abort()", exit_code)
        os._exit(exit_code)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self._close_shm()
        super().close()


class _FutureHandle(CollectiveHandle):
    """An `allreduce_async` running on the communicator's worker thread."""

    def __init__(self, future: concurrent.futures.Future):
        self._future = future

    def test(self) -> bool:
        return self._future.done()

    def wait(self) -> Any:
        return self._future.result()
