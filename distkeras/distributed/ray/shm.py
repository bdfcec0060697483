"""Shared-memory all-reduce for the Ray ranks of a group that all run on one node.

Ray's object store costs about a millisecond per `ray.put` plus a round trip
through the rendezvous actor per exchange, which made a 2.7 MB gradient
all-reduce 3x slower than torch's gloo. When every rank of a group is on the
same node, the ranks instead share one POSIX shared-memory segment, created by
rank 0 and announced through the rendezvous actor once:

    control: per rank, an *arrived* and a *done* sequence number and the
             fingerprint of its call, each on its own cache line
    slots:   one input slot per rank
    result:  the reduced buffer

One all-reduce is: copy the buffer into this rank's slot and publish *arrived*;
wait for every rank's *arrived*; reduce chunk `rank` of every slot, in rank
order, into the result (so results are bitwise equal on every rank, as in the
object-store path); publish *done*; wait for every *done*; copy the result out.
A slot is rewritten only after every rank published *done* for the previous
call, so no rank can still be reading it.

Waiting spins briefly, then yields, then sleeps in growing steps (a rank that
arrives early does not take a core from one still computing). While waiting
it watches the group's failure flag in the rendezvous actor, so an abort on
any rank ends every waiting rank; past the stall window (`stall_warning`) it
logs, once per call, the ranks that have not arrived (as the object-store and
MPI paths do), and past the timeout it raises naming them. Publishing relies
on x86-64's ordered stores (data before the flag); on other machines the
object-store path is used.
"""

from __future__ import annotations

import platform
import time
import zlib
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np
import ray

from distkeras.distributed.deadlines import describe_absence, warn_stall
from distkeras.distributed.errors import CollectiveTimeoutError

LINE = 64  # bytes per control entry: one cache line, no false sharing
_ARRIVED, _DONE, _PRINT = 0, 1, 2
_SPIN_S = 50e-6
_MAX_SLEEP_S = 1e-3
_FAILURE_POLL_S = 0.2
# Smallest slot (bytes per rank); grown to the largest buffer seen.
SHM_MIN_BYTES = 4 * 1024 * 1024


def _key_text(key: Any) -> str:
    """A collective's key as its error messages print it (`#12`)."""
    return f"#{key[0]}" if isinstance(key, tuple) else str(key)


def supported() -> bool:
    """True on machines whose store order makes the flag protocol safe (x86-64)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def fingerprint(header: tuple) -> int:
    """A 32-bit digest of a collective's header (compared across ranks)."""
    return zlib.crc32(repr(header[:-1]).encode())


class ShmReducer:
    """One shared-memory segment of a group: slots for `capacity` bytes per rank.

    Construct through `create` (rank 0) or `attach` (the others).
    """

    def __init__(self, shm: shared_memory.SharedMemory, size: int, capacity: int, owner: bool):
        self.shm, self.size, self.capacity, self.owner = shm, size, capacity, owner
        self.ctrl = np.ndarray((size, LINE // 8), dtype=np.int64, buffer=shm.buf)
        self._data_offset = size * LINE
        self.seq = 0

    @staticmethod
    def nbytes(size: int, capacity: int) -> int:
        """Segment size for `size` ranks and `capacity` bytes per slot."""
        return size * LINE + (size + 1) * capacity

    @classmethod
    def create(cls, size: int, capacity: int) -> ShmReducer:
        """Creates a zeroed segment (rank 0); its `name` is announced to the others."""
        shm = shared_memory.SharedMemory(create=True, size=cls.nbytes(size, capacity))
        np.ndarray((size * LINE // 8,), dtype=np.int64, buffer=shm.buf)[:] = 0
        return cls(shm, size, capacity, owner=True)

    @classmethod
    def attach(cls, name: str, size: int, capacity: int) -> ShmReducer:
        """Attaches to rank 0's segment (without letting this process's tracker unlink it)."""
        shm = shared_memory.SharedMemory(name=name)
        try:  # Python < 3.13 registers attached segments too and unlinks them at exit
            resource_tracker.unregister(shm._name, "shared_memory")  # noqa: SLF001
        except Exception:  # noqa: BLE001, S110 - newer Pythons do not track attachments
            pass
        return cls(shm, size, capacity, owner=False)

    @property
    def name(self) -> str:
        """The segment's name."""
        return self.shm.name

    def _view(self, index: int, dtype: Any, count: int) -> np.ndarray:
        start = self._data_offset + index * self.capacity
        return np.ndarray((count,), dtype=dtype, buffer=self.shm.buf, offset=start)

    def allreduce(
        self,
        buf: np.ndarray,
        rank: int,
        ufunc: Any,
        digest: int,
        wait: Any,
    ) -> list[int]:
        """Reduces the contiguous 1-D `buf` in place across the ranks.

        Args:
            buf: This rank's values; overwritten with the reduction.
            rank: This rank.
            ufunc: np.add, np.maximum or np.minimum.
            digest: This call's fingerprint (see `fingerprint`).
            wait: `wait(column, seq)` blocks until every rank's control entry
                `column` reached `seq` (raising on timeout or a group failure).

        Returns:
            The ranks whose fingerprint differs from rank 0's (empty when all agree).
        """
        self.seq += 1
        seq, n = self.seq, self.size
        count = buf.size
        np.copyto(self._view(rank, buf.dtype, count), buf)
        self.ctrl[rank, _PRINT] = digest
        self.ctrl[rank, _ARRIVED] = seq  # after the data: x86-64 keeps store order
        wait(_ARRIVED, seq)
        prints = self.ctrl[:, _PRINT]
        bad = [r for r in range(n) if prints[r] != prints[0]]
        if bad:  # let the caller raise a clear error; nothing was reduced
            self.ctrl[rank, _DONE] = seq
            return bad
        lo, hi = count * rank // n, count * (rank + 1) // n
        out = self._view(n, buf.dtype, count)[lo:hi]
        if hi > lo:
            slots = [self._view(r, buf.dtype, count)[lo:hi] for r in range(n)]
            ufunc(slots[0], slots[1], out=out) if n > 1 else np.copyto(out, slots[0])
            for s in slots[2:]:
                ufunc(out, s, out=out)
        self.ctrl[rank, _DONE] = seq
        wait(_DONE, seq)
        np.copyto(buf, self._view(n, buf.dtype, count))
        return []

    def close(self) -> None:
        """Detaches (and, on rank 0, removes) the segment."""
        self.ctrl = None
        try:
            self.shm.close()
            if self.owner:
                self.shm.unlink()
        except (FileNotFoundError, BufferError):  # already gone, or views still alive
            pass


class Waiter:
    """Waits for the other ranks' control entries; watches the group's failure flag.

    Args:
        reducer: The segment.
        rank: This rank.
        actor: The rendezvous actor (its `failure()` is polled while waiting).
        timeout: Seconds before `on_timeout(missing_ranks)` is called (None: never).
        on_failure: Called with the failure dict when the group failed.
        on_timeout: Called with the list of ranks that did not arrive.
        stall: Seconds before `on_stall(late_ranks, waited)` is called, once per
            collective (None: never).
        on_stall: Called with the ranks that have not arrived and the wait so far.
    """

    def __init__(
        self, reducer, rank, actor, timeout, on_failure, on_timeout, stall=None, on_stall=None
    ):
        self.reducer, self.rank, self.actor = reducer, rank, actor
        self.timeout, self.on_failure, self.on_timeout = timeout, on_failure, on_timeout
        self.stall, self.on_stall = stall, on_stall
        self._probe = None
        self._probe_t = 0.0
        self._warned = False

    def _check_failure(self, now: float) -> None:
        if self._probe is None:
            if now - self._probe_t >= _FAILURE_POLL_S:
                self._probe = self.actor.failure.remote()
            return
        ready, _ = ray.wait([self._probe], timeout=0)
        if ready:
            failure = ray.get(self._probe)
            self._probe, self._probe_t = None, now
            if failure:
                self.on_failure(failure)

    def __call__(self, column: int, seq: int) -> None:
        ctrl = self.reducer.ctrl
        flags = ctrl[:, column]
        start = time.perf_counter()
        sleep = 0.0
        while True:
            if (flags >= seq).all():
                return
            now = time.perf_counter()
            waited = now - start
            if waited > _SPIN_S:
                if waited > 0.05:
                    self._check_failure(now)
                if self.timeout is not None and waited > self.timeout:
                    self.on_timeout([r for r in range(len(flags)) if flags[r] < seq])
                if self.stall is not None and not self._warned and waited > self.stall:
                    self._warned = True
                    if self.on_stall is not None:
                        self.on_stall([r for r in range(len(flags)) if flags[r] < seq], waited)
                sleep = min(_MAX_SLEEP_S, sleep * 2 or 1e-5)
                time.sleep(sleep)


class SharedMemoryTransport:
    """Mixin for `RayCommunicator`: large all-reduces through the node's segment.

    Uses the communicator's exchange (for set-up and error reports), its
    rendezvous actor (for group failures) and its timeout.
    """

    _shm: ShmReducer | None

    def _shm_reduce(self, key: tuple, header: tuple, buf: np.ndarray, op: str) -> None:
        """All-reduce through the node's shared-memory segment (set up on first use)."""
        if self._shm is None or self._shm.capacity < buf.nbytes:
            self._shm_setup(key, header, buf.nbytes)
        ufunc = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}[op]
        timeout = self.timeout
        waiter = Waiter(
            self._shm,
            self._rank,
            self._actor,
            timeout,
            self._raise_abort,
            lambda missing: self._shm_timed_out(key, header, missing),
            self.stall_deadline(timeout),
            lambda late, waited: self._shm_stalled(key, header, late, waited, timeout),
        )
        bad = self._shm.allreduce(buf, self._rank, ufunc, fingerprint(header), waiter)
        if bad:  # fetch every rank's description through the actor for the error
            self._mismatch(key, self._exchange(key + (8,), header, header))

    def _shm_setup(self, key: tuple, header: tuple, nbytes: int) -> None:
        """Rank 0 creates a segment big enough for `nbytes`; the others attach to it."""
        old = self._shm
        capacity = max(SHM_MIN_BYTES, nbytes, 2 * old.capacity if old else 0)
        capacity = -(-capacity // 4096) * 4096
        new = ShmReducer.create(self._size, capacity) if self._rank == 0 else None
        names = self._exchange(key + (7,), header, new.name if new else None)
        if new is None:
            new = ShmReducer.attach(names[0], self._size, capacity)
        self._shm = new
        if old is not None:
            old.close()

    def _shm_stalled(
        self, key: tuple, header: tuple, late: list[int], waited: float, timeout: float | None
    ) -> None:
        """Logs the stall warning: the ranks whose flags show they have not arrived (and,
        from the rendezvous actor, which of them wait in another collective)."""
        _, elsewhere_all, _ = self._whereabouts(key)
        elsewhere = {r: what for r, what in elsewhere_all.items() if r in late}
        missing = [r for r in late if r not in elsewhere]
        arrived = [r for r in range(self._size) if r != self._rank and r not in late]
        absence = describe_absence(missing, elsewhere, arrived, final=False)
        what = f"{_key_text(key)} {header[-1]}"
        warn_stall(self._rank, what, waited, absence, timeout, self.timeout_is_adaptive)

    def _shm_timed_out(self, key: tuple, header: tuple, missing: list[int]) -> None:
        what = f"{_key_text(key)} {header[-1]}"
        self._broken = f"collective {what} timed out"
        raise CollectiveTimeoutError(
            f"Collective {what} timed out after {self.timeout:.1f} s on rank {self._rank}: "
            f"rank(s) {missing} never arrived (busy outside any collective, hung or dead). "
            "Set the timeout with distkeras.distributed.initialize(timeout=...) or "
            "DISTKERAS_COLLECTIVE_TIMEOUT.",
            sequence=key[0],
            missing_ranks=missing,
            timeout=self.timeout,
        )

    def _close_shm(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm = None
