"""Work done once per job, on the coordinator, that every rank waits for.

Saving a model in a data-parallel run is the example: the replicas are
identical, so one file is written, by rank 0; the other ranks must not return
before that file is in place (a rank that loads it next would find nothing),
and a failed write must fail every rank, not leave them training on while rank
0 is gone. `on_coordinator` does exactly that with one small broadcast, which
is both the barrier and the carrier of rank 0's outcome.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from distkeras.distributed.errors import DistributedError

# Errors re-raised with their own type on the other ranks (others: RuntimeError).
_PORTABLE = frozenset(
    {
        "OSError",
        "PermissionError",
        "FileNotFoundError",
        "FileExistsError",
        "IsADirectoryError",
        "NotADirectoryError",
        "TimeoutError",
        "ValueError",
        "TypeError",
        "KeyError",
        "RuntimeError",
        "MemoryError",
    }
)


class CoordinatorError(RuntimeError):
    """The coordinator failed a task that every rank waited for (its error type is not portable).

    Attributes:
        error_type: The name of the exception class raised on the coordinator.
    """

    def __init__(self, message: str, error_type: str = ""):
        super().__init__(message)
        self.error_type = error_type


def on_coordinator(comm: Any, task: Callable[[], None], what: str) -> dict:
    """Runs `task()` on rank 0 only; every rank returns when it has finished.

    Collective: every rank of the job calls it, with the same `what`. In one
    process (no communicator, or size 1) it just runs the task.

    Args:
        comm: The communicator (or None).
        task: What rank 0 does (e.g. write a file, fsync and rename it).
        what: A short description for error messages, e.g. "save('m.dkm')".

    Returns:
        `{"what": ...}` as rank 0 described the task (to compare with this rank's).

    Raises:
        The task's exception on rank 0, and on the other ranks an exception of
        the same builtin type (or `CoordinatorError`) naming rank 0 and `what`.
    """
    if comm is None or comm.size <= 1:
        task()
        return {"what": what}
    outcome: dict = {"what": what}
    error: BaseException | None = None
    if comm.rank == 0:
        try:
            task()
        except Exception as e:  # noqa: BLE001 - sent to every rank, then re-raised
            error = e
            outcome["error"] = [type(e).__name__, str(e)]
    try:
        outcome = comm.broadcast_object(outcome, root=0)
    except DistributedError as e:  # e.g. `if rank == 0: model.save(...)` (Horovod's idiom)
        note = (
            f"{what} is collective in a distributed run: every rank calls it (rank 0 "
            "writes), not only the coordinator."
        )
        if hasattr(e, "add_note"):  # Python 3.11+
            e.add_note(note)
        raise
    if error is not None:
        raise error
    if "error" in outcome:
        name, text = outcome["error"]
        message = f"The coordinator (rank 0) failed {outcome['what']}: {name}: {text}"
        cls = getattr(builtins, name, None) if name in _PORTABLE else None
        if cls is None:
            raise CoordinatorError(message, error_type=name)
        raise cls(message)
    return outcome
