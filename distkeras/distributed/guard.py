"""The guard every MPI collective passes through: fingerprints and deadlines.

Before moving data, each collective exchanges a *header* with one tiny
non-blocking Allgather of eight int64 per rank: sequence number, op, a hash of
the shapes and dtypes, root or reduction, flags, array count, element count,
and a payload that is not compared (a byte length or a first dimension). It
costs a few microseconds and gives three things at once:

- a fingerprint check: ranks that called different collectives, or the same
  one with different shapes, get `CollectiveMismatchError` naming each rank's
  call instead of a deadlock;
- an arrival check with deadlines (deadlines.py): the header is polled with
  `Test()`; past the stall warning (30 s by default) the waiting rank asks
  every other rank, on a side communicator, which collective it is in and
  logs the ranks that have not arrived; past the timeout it asks again and
  raises `CollectiveTimeoutError` naming them (ranks waiting in a collective
  answer while they poll; a rank busy or hung in user code does not);
- the sizes that variable-length calls need (Allgatherv counts, object bytes).
"""

from __future__ import annotations

import math
import os
import struct
import time
from typing import Any

import numpy as np

from distkeras.distributed.deadlines import describe_absence, warn_stall
from distkeras.distributed.errors import (
    CollectiveMismatchError,
    CollectiveTimeoutError,
    CommunicatorClosedError,
)

_OPS = (
    "barrier",
    "allreduce",
    "allreduce_async",
    "broadcast_arrays",
    "broadcast_object",
    "allgather",
    "allgather_object",
    "reduce_scatter",
    "allgather_shards",
)
_OPCODE = {name: i + 1 for i, name in enumerate(_OPS)}
REDUCE_CODE = {"sum": 1, "mean": 2, "max": 3, "min": 4}
HEADER_LEN = 8  # seq, opcode, signature, arg, flags, n arrays, n elements | payload
_COMPARED = 7
_TAG_QUERY, _TAG_REPLY = 7301, 7302
# A waiting rank polls without sleeping for this long (yielding the core when
# ranks outnumber cores), then naps, backing off to 1 ms between polls.
_SPIN_S, _SPIN_OVERSUBSCRIBED_S = 0.05, 0.005
_SERVE_AFTER_S = 0.25  # answer "where are you" queries once a wait is this long
_SERVE_EVERY_S = 0.02
_CENSUS_GRACE_S = 1.0  # how long a stall warning waits for the others' answers


def signature(arrays: list[Any], skip_first_dim: bool = False) -> int:
    """A hash of shapes and dtypes, equal across processes (no str hashing)."""
    start = 1 if skip_first_dim else 0
    return hash(
        tuple((a.shape[start:], a.ndim, ord(a.dtype.kind), a.dtype.itemsize) for a in arrays)
    )


def _pack_header(header: np.ndarray, *fields: int) -> None:
    struct.pack_into("=8q", header, 0, *fields)


def _rows_agree(gathered: np.ndarray) -> bool:
    """True when every rank's header matches rank 0's in the compared columns."""
    if gathered.shape[0] > 64:
        return bool((gathered[:, :_COMPARED] == gathered[0, :_COMPARED]).all())
    raw, width, row = gathered.tobytes(), 8 * _COMPARED, 8 * HEADER_LEN
    ref = raw[:width]
    return all(raw[i : i + width] == ref for i in range(row, len(raw), row))


def describe_arrays(arrays: list[Any], skip_first_dim: bool = False) -> str:
    """A short text like 'float32[3, 4], int64[?, 2]' for error messages."""

    def one(a: Any) -> str:
        shape = ("?",) + tuple(a.shape[1:]) if skip_first_dim and a.ndim else tuple(a.shape)
        return f"{np.dtype(a.dtype).name}[{', '.join(map(str, shape))}]"

    head = ", ".join(one(a) for a in arrays[:4])
    if len(arrays) > 4:
        total = sum(int(a.size) for a in arrays)
        head += f", ... ({len(arrays)} arrays, {total} elements)"
    return head


class _Call:
    """Bookkeeping of one collective: its number, op and a lazy description."""

    __slots__ = ("seq", "opcode", "_describe")

    def __init__(self, seq: int, opname: str, describe: Any):
        self.seq = seq
        self.opcode = _OPCODE[opname]
        self._describe = describe

    def describe(self) -> str:
        return f"#{self.seq} {self._describe()}"


class CollectiveGuard:
    """Header exchange, fingerprint check and deadline for one communicator.

    Args:
        owner: The communicator (its `check` and `closed` are read at each call, its
            `timeout` and `stall_warning` when a wait begins; it is told the interval
            between consecutive collectives, for the adaptive timeout).
        comm: The mpi4py communicator the collectives run on.
        side: A duplicate of `comm` for the timeout queries.
        local_size: Ranks on this node (to detect oversubscription).
    """

    def __init__(self, owner: Any, comm: Any, side: Any, local_size: int):
        from mpi4py import MPI  # noqa: PLC0415

        self._MPI = MPI
        self._owner, self._comm, self._side = owner, comm, side
        self._rank, self._size = comm.Get_rank(), comm.Get_size()
        self._oversubscribed = local_size > (os.cpu_count() or 1)
        self._spin_s = _SPIN_OVERSUBSCRIBED_S if self._oversubscribed else _SPIN_S
        self._seq = 0
        self._header_buf = np.zeros(HEADER_LEN, np.int64)
        self._gathered = np.zeros((self._size, HEADER_LEN), np.int64)
        self._current: _Call | None = None
        self._sends: list[Any] = []  # (request, buffer) of queries and replies in flight
        self._qid = 0  # census number: queries and replies carry it
        self._asking = 0
        self._answers: dict[int, tuple[int, int]] = {}  # rank -> (seq, opcode)
        self._last_start: float | None = None
        self._broken: str | None = None

    def ensure_usable(self) -> None:
        """Raises `CommunicatorClosedError` after close() or an earlier timeout."""
        if self._owner.closed:
            raise CommunicatorClosedError("The communicator is closed.")
        if self._broken:
            raise CommunicatorClosedError(
                f"The communicator is unusable after an earlier failure ({self._broken}); "
                "abort the job."
            )

    def start(
        self,
        opname: str,
        describe: Any,
        sig: int = 0,
        arg: int = 0,
        flags: int = 0,
        count: int = 0,
        elements: int = 0,
        payload: int = 0,
        need_payload: bool = False,
        nonblocking: bool = False,
    ) -> tuple[_Call, Any, np.ndarray | None, np.ndarray | None]:
        """Posts this collective's header; returns (call, request, header, gathered)."""
        self.ensure_usable()
        owner = self._owner
        now = time.perf_counter()
        if self._last_start is not None:
            owner.observe_interval(now - self._last_start)
        self._last_start = now
        self._seq += 1
        call = _Call(self._seq, opname, describe)
        if not (owner.check or need_payload or owner.timeout is not None or owner.stall_warning):
            return call, None, None, None
        if nonblocking:
            header = np.empty(HEADER_LEN, np.int64)
            gathered = np.empty((self._size, HEADER_LEN), np.int64)
        else:
            header, gathered = self._header_buf, self._gathered
        _pack_header(header, self._seq, call.opcode, sig, arg, flags, count, elements, payload)
        return call, self._comm.Iallgather(header, gathered), header, gathered

    def finish(self, call: _Call, request: Any, gathered: Any, nonblocking: bool) -> None:
        """Waits for a header exchange and raises if the ranks' fingerprints differ."""
        if request is None:
            return
        self.wait([request], call)
        if self._owner.check and not _rows_agree(gathered):
            self.mismatch(call, gathered, nonblocking)

    def header(self, opname: str, describe: Any, **fields: Any) -> tuple[_Call, Any]:
        """`start` + `finish`: returns (call, every rank's header as a (size, 8) array)."""
        call, request, _, gathered = self.start(opname, describe, **fields)
        self.finish(call, request, gathered, False)
        return call, gathered

    def wait(self, requests: list[Any], call: _Call) -> None:
        """Waits for `requests`, polling, answering queries, warning on a stall and
        raising past the timeout."""
        test_all = self._MPI.Request.Testall
        if test_all(requests):
            return
        self._current = call
        owner = self._owner
        timeout = owner.timeout
        stall = owner.stall_deadline(timeout)
        start = time.perf_counter()
        serve_at = start + _SERVE_AFTER_S
        # The census (asking the others where they are) starts a little before
        # the warning, so that the warning names the ranks when the window ends.
        warn_at = math.inf if stall is None else start + stall
        census_at = warn_at - min(_CENSUS_GRACE_S, 0.5 * (stall or 0.0))
        nap = 5e-5
        spin, yield_core = self._spin_s, self._oversubscribed
        while not test_all(requests):
            now = time.perf_counter()
            waited = now - start
            if waited > spin:
                time.sleep(nap)
                nap = min(nap * 1.5, 1e-3)
            elif yield_core:
                os.sched_yield()
            if now >= serve_at:
                self.serve_queries()
                serve_at = now + _SERVE_EVERY_S
            if now >= census_at:  # once per stall: ask where the others are, then log
                if census_at != warn_at:
                    self._ask_others(call)
                    census_at = warn_at
                elif now >= warn_at:
                    self.serve_queries()
                    self._warn_stall(call, waited, timeout)
                    census_at = warn_at = math.inf
            if timeout is not None and waited > timeout:
                self.timed_out(call, waited, timeout)
        self._current = None

    def _warn_stall(self, call: _Call, waited: float, timeout: float | None) -> None:
        missing, elsewhere, arrived = self._whereabouts(call)
        if missing or elsewhere:
            absence = describe_absence(missing, elsewhere, arrived, final=False)
            adaptive = self._owner.timeout_is_adaptive
            warn_stall(self._rank, call.describe(), waited, absence, timeout, adaptive)

    def serve_queries(self) -> None:
        """Answers other ranks' "which collective are you in" queries; collects replies."""
        MPI = self._MPI
        side = self._side
        status = MPI.Status()
        while side.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_QUERY, status=status):
            src = status.Get_source()
            query = np.empty(3, np.int64)
            side.Recv(query, source=src, tag=_TAG_QUERY)
            call = self._current
            where = [call.seq, call.opcode] if call else [-1, 0]
            reply = np.array([query[0], *where], np.int64)
            self._sends.append((side.Isend(reply, dest=src, tag=_TAG_REPLY), reply))
        while side.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_REPLY, status=status):
            src = status.Get_source()
            reply = np.empty(3, np.int64)
            side.Recv(reply, source=src, tag=_TAG_REPLY)
            if int(reply[0]) == self._asking:  # a late answer to an earlier census is dropped
                self._answers[src] = (int(reply[1]), int(reply[2]))
        self._sends = [(r, b) for r, b in self._sends if not r.Test()]

    def _ask_others(self, call: _Call) -> None:
        """Starts a census: asks every other rank which collective it is in."""
        self._qid += 1
        self._asking, self._answers = self._qid, {}
        query = np.array([self._qid, call.seq, call.opcode], np.int64)
        for r in range(self._size):
            if r != self._rank:
                self._sends.append((self._side.Isend(query, dest=r, tag=_TAG_QUERY), query))

    def _whereabouts(self, call: _Call) -> tuple[list[int], dict[int, str], list[int]]:
        """(ranks that did not answer, {rank: other collective}, ranks in this one)."""
        others = [r for r in range(self._size) if r != self._rank]
        answers = self._answers
        elsewhere = {
            r: (f"#{s} {_OPS[o - 1]}" if s >= 0 and 0 < o <= len(_OPS) else "no collective")
            for r, (s, o) in answers.items()
            if (s, o) != (call.seq, call.opcode)
        }
        missing = [r for r in others if r not in answers]
        arrived = [r for r in others if r in answers and r not in elsewhere]
        return missing, elsewhere, arrived

    def timed_out(self, call: _Call, waited: float, timeout: float) -> None:
        """Finds out where the other ranks are and raises `CollectiveTimeoutError`."""
        self._ask_others(call)
        grace = min(5.0, max(1.0, 0.1 * timeout))
        deadline = time.perf_counter() + grace
        while len(self._answers) < self._size - 1 and time.perf_counter() < deadline:
            self.serve_queries()
            time.sleep(0.005)
        missing, elsewhere, arrived = self._whereabouts(call)
        how = (
            "the adaptive default, max(120 s, 20x the slowest step seen)"
            if self._owner.timeout_is_adaptive
            else "as given"
        )
        self._broken = f"collective {call.describe()} timed out"
        raise CollectiveTimeoutError(
            f"Collective {call.describe()} timed out after {waited:.1f} s on rank "
            f"{self._rank}: {describe_absence(missing, elsewhere, arrived)}. The timeout "
            f"({timeout:.1f} s, {how}) is set with distkeras.distributed.initialize("
            "timeout=...) or DISTKERAS_COLLECTIVE_TIMEOUT; the stall warning with "
            "stall_warning=... or DISTKERAS_STALL_WARNING_S.",
            sequence=call.seq,
            missing_ranks=missing,
            elsewhere=elsewhere,
            timeout=timeout,
        )

    def mismatch(self, call: _Call, gathered: np.ndarray, nonblocking: bool) -> None:
        """Gathers each rank's call description and raises `CollectiveMismatchError`."""
        rows = gathered[:, :_COMPARED]
        disagreeing = [r for r in range(self._size) if not (rows[r] == rows[0]).all()]
        descriptions = self.exchange_descriptions(call.describe())
        if descriptions is None:
            descriptions = [
                f"#{row[0]} {_OPS[row[1] - 1] if 0 < row[1] <= len(_OPS) else '?'}"
                for row in gathered
            ]
        groups: dict[str, list[int]] = {}
        for r, text in enumerate(descriptions):
            groups.setdefault(text, []).append(r)
        lines = [
            f"  rank {ranks[0]}: {text}" if len(ranks) == 1 else f"  ranks {ranks}: {text}"
            for text, ranks in groups.items()
        ]
        if nonblocking:
            self._broken = f"collective mismatch at {call.describe()}"
        raise CollectiveMismatchError(
            f"Ranks called different collectives (or with different shapes/dtypes) at "
            f"collective #{call.seq} on rank {self._rank}:\n"
            + "\n".join(lines)
            + f"\nDisagreeing ranks (compared with rank 0): {disagreeing}. Every rank must "
            "call the same collectives in the same order with the same shapes and dtypes.",
            sequence=call.seq,
            calls=dict(enumerate(descriptions)),
            disagreeing_ranks=disagreeing,
        )

    def exchange_descriptions(self, text: str) -> list[str] | None:
        """All ranks' call descriptions, over the side communicator (None on timeout)."""
        data = np.frombuffer(text.encode()[:4000], np.uint8)
        counts = np.empty(self._size, np.int64)
        deadline = time.perf_counter() + min(30.0, self._owner.timeout or 30.0)
        req = self._side.Iallgather(np.array([data.size], np.int64), counts)
        while not req.Test():
            if time.perf_counter() > deadline:
                return None
            time.sleep(1e-4)
        out = np.empty(int(counts.sum()), np.uint8)
        req = self._side.Iallgatherv(data, [out, counts.tolist()])
        while not req.Test():
            if time.perf_counter() > deadline:
                return None
            time.sleep(1e-4)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return [out[offsets[r] : offsets[r + 1]].tobytes().decode() for r in range(self._size)]
