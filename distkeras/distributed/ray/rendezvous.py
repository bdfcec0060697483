"""The rendezvous actor: where the ranks of one Ray group meet for every collective.

An asyncio actor holding no CPU. Each collective is one or more *exchanges*:
every rank posts a header (the call's fingerprint) and a value under a key,
and all get everyone's once the last rank has posted. It also records the
group's first failure, which wakes every waiting rank at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from distkeras.distributed.errors import DistributedError


class PeerFailedError(DistributedError):
    """Another rank aborted the job (an exception or `abort()`); this rank stops too.

    Attributes:
        rank: The rank that aborted first.
        reason: Its reason (a traceback for an uncaught exception).
    """

    def __init__(self, message: str, rank: int = -1, reason: str = ""):
        super().__init__(message)
        self.rank = rank
        self.reason = reason


# ----------------------------------------------------------------------------- rendezvous actor


class _Slot:
    __slots__ = ("headers", "values", "count", "left", "event")

    def __init__(self, size: int):
        self.headers: list[Any] = [None] * size
        self.values: list[Any] = [None] * size
        self.count = 0
        self.left = size
        self.event = asyncio.Event()


class Rendezvous:
    """The meeting point of one group of ranks (run as an async Ray actor).

    Args:
        size: The number of ranks in the group.
    """

    def __init__(self, size: int):
        self._size = int(size)
        self._slots: dict[Any, _Slot] = {}
        self._joined: set[int] = set()
        self._all_joined = asyncio.Event()
        self._failure: dict | None = None
        self._waiting: dict[int, tuple[Any, str]] = {}

    def _wake_all(self) -> None:
        self._all_joined.set()
        for slot in self._slots.values():
            slot.event.set()

    async def join(self, rank: int, size: int) -> Any:
        """Registers `rank`; returns once all ranks joined (or the group failed)."""
        if size != self._size:
            return ("error", f"group has {self._size} ranks but rank {rank} says size={size}")
        self._joined.add(rank)
        if len(self._joined) == self._size:
            self._all_joined.set()
        await self._all_joined.wait()
        return ("abort", self._failure) if self._failure else ("ok", None)

    async def exchange(self, key: Any, rank: int, header: Any, value: Any, scatter: bool) -> Any:
        """Posts this rank's header and value for `key`; returns everyone's once all posted.

        `value` is a one-item list (so that Ray passes object refs inside as refs).
        With `scatter`, the item is a list holding one entry per destination rank
        and each rank receives only the items addressed to it.
        """
        if self._failure:
            return ("abort", self._failure)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(self._size)
        slot.headers[rank] = header
        slot.values[rank] = value[0]  # boxed: Ray would resolve a bare top-level ObjectRef
        slot.count += 1
        self._waiting[rank] = (key, header[-1] if header else "")
        if slot.count == self._size:
            slot.event.set()
        try:
            await slot.event.wait()
        finally:
            self._waiting.pop(rank, None)
        if self._failure:
            return ("abort", self._failure)
        slot.left -= 1
        if slot.left == 0:
            del self._slots[key]
        values = [v[rank] for v in slot.values] if scatter else slot.values
        return ("ok", slot.headers, values)

    def abort(self, rank: int, reason: str, exit_code: int = 1) -> None:
        """Marks the group failed (the first call wins) and wakes every waiting rank."""
        if self._failure is None:
            self._failure = {"rank": int(rank), "reason": str(reason), "exit_code": int(exit_code)}
        self._wake_all()

    def failure(self) -> dict | None:
        """The first abort: {'rank', 'reason'}, or None."""
        return self._failure

    def status(self, key: Any) -> dict:
        """Which ranks posted to `key`, and the collective each waiting rank is in."""
        slot = self._slots.get(key)
        arrived = [r for r in range(self._size) if slot is not None and slot.headers[r] is not None]
        return {"arrived": arrived, "waiting": dict(self._waiting)}


_RendezvousActor = ray.remote(num_cpus=0, max_concurrency=10_000)(Rendezvous)


def get_rendezvous(name: str, size: int, namespace: str | None = None) -> Any:
    """Returns the named rendezvous actor, creating it if no rank did yet."""
    return _RendezvousActor.options(
        name=name, namespace=namespace, get_if_exists=True, lifetime=None
    ).remote(size)
