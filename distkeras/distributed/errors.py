"""Errors raised by the communicators.

Every distributed failure derives from `DistributedError`, so a training loop
can catch them in one place and abort the job.
"""

from __future__ import annotations


class DistributedError(RuntimeError):
    """Base class of the errors raised by `distkeras.distributed`."""


class CollectiveMismatchError(DistributedError):
    """Ranks called different collectives, or the same one with different arguments.

    Attributes:
        sequence: The collective's sequence number on the raising rank.
        calls: Maps each rank to a description of what it called.
        disagreeing_ranks: The ranks whose call differs from rank 0's.
    """

    def __init__(
        self,
        message: str,
        sequence: int = -1,
        calls: dict[int, str] | None = None,
        disagreeing_ranks: list[int] | None = None,
    ):
        super().__init__(message)
        self.sequence = sequence
        self.calls = dict(calls or {})
        self.disagreeing_ranks = list(disagreeing_ranks or [])


class CollectiveTimeoutError(DistributedError, TimeoutError):
    """A collective waited longer than the communicator's timeout.

    Attributes:
        sequence: The collective's sequence number on the raising rank.
        missing_ranks: Ranks that never arrived at this collective (no answer).
        elsewhere: Maps ranks that answered from a different collective to its description.
        timeout: The timeout in seconds.
    """

    def __init__(
        self,
        message: str,
        sequence: int = -1,
        missing_ranks: list[int] | None = None,
        elsewhere: dict[int, str] | None = None,
        timeout: float | None = None,
    ):
        super().__init__(message)
        self.sequence = sequence
        self.missing_ranks = list(missing_ranks or [])
        self.elsewhere = dict(elsewhere or {})
        self.timeout = timeout


class CommunicatorClosedError(DistributedError):
    """The communicator was closed, or broken by an earlier mismatch or timeout."""
