"""How long a collective may wait: the stall warning and the adaptive timeout.

A rank that hangs (sleeps or spins in user code) never reaches the next
collective, and the ranks that did reach it wait. Two deadlines bound that wait:

- the *stall warning* (default 30 s, `DISTKERAS_STALL_WARNING_S` or
  `stall_warning=`): once per stalled collective, a waiting rank asks the
  others where they are and logs which ranks have not arrived; nothing fails;
- the *timeout*: past it the collective raises `CollectiveTimeoutError` naming
  the missing ranks. An explicit value (`timeout=` or
  `DISTKERAS_COLLECTIVE_TIMEOUT`) is used as given; otherwise it adapts to the
  job: the larger of 120 s and 20 times the longest interval seen so far
  between two consecutive collectives of this rank (a training step, or a
  collective that itself waited long), so slow jobs are not cut off and fast
  ones are not left hanging for minutes.

Both are read when a wait begins; measuring an interval costs one clock read
per collective.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from distkeras.distributed import env

ADAPTIVE_FLOOR_S = 120.0
ADAPTIVE_FACTOR = 20.0
DEFAULT_STALL_WARNING_S = 30.0
STALL_ENV = "DISTKERAS_STALL_WARNING_S"

DEFAULT: Any = object()  # "argument not given": use the environment, else the default

logger = logging.getLogger("distkeras.distributed")


def adaptive_timeout(
    slowest_s: float, floor_s: float = ADAPTIVE_FLOOR_S, factor: float = ADAPTIVE_FACTOR
) -> float:
    """The default collective timeout: `max(floor_s, factor * slowest_s)`.

    Args:
        slowest_s: The longest interval between two collectives seen so far (seconds).
        floor_s: The timeout before anything slow was seen.
        factor: How many times the slowest interval a wait may last.
    """
    return max(float(floor_s), float(factor) * float(slowest_s))


def default_stall_warning(environ: Any = None) -> float | None:
    """`DISTKERAS_STALL_WARNING_S` if set (0/'none' disables it), else 30 s."""
    environ = os.environ if environ is None else environ
    if STALL_ENV in environ:
        return env.parse_timeout(environ[STALL_ENV], STALL_ENV)
    return DEFAULT_STALL_WARNING_S


class Deadlines:
    """Mixin of `Communicator`: its `timeout` and `stall_warning` settings.

    `timeout` reads the adaptive value unless one was given; assigning it
    fixes it. Collectives call `observe_interval` with the time between
    consecutive collectives.
    """

    def _init_deadlines(self, timeout: Any = DEFAULT, stall_warning: Any = DEFAULT) -> None:
        if timeout is DEFAULT and env.TIMEOUT_ENV not in os.environ:
            self._fixed_timeout: tuple[float | None] | None = None  # adaptive
        else:
            value = env.default_timeout() if timeout is DEFAULT else env.parse_timeout(timeout)
            self._fixed_timeout = (value,)
        self._slowest_s = 0.0
        self.stall_warning = default_stall_warning() if stall_warning is DEFAULT else stall_warning

    @property
    def timeout(self) -> float | None:
        """Seconds a collective may wait for the other ranks (None: forever).

        Unless given, the larger of 120 s and 20x the slowest interval seen
        between two collectives.
        """
        fixed = self._fixed_timeout
        if fixed is not None:
            return fixed[0]
        return adaptive_timeout(self._slowest_s)

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._fixed_timeout = (env.parse_timeout(value),)

    @property
    def timeout_is_adaptive(self) -> bool:
        """True when `timeout` follows the job (no timeout was given)."""
        return self._fixed_timeout is None

    @property
    def stall_warning(self) -> float | None:
        """Seconds a collective waits before logging which ranks have not arrived."""
        return self._stall_warning

    @stall_warning.setter
    def stall_warning(self, value: float | None) -> None:
        self._stall_warning = env.parse_timeout(value, "stall_warning")

    @property
    def slowest_interval(self) -> float:
        """The longest interval seen between two consecutive collectives (seconds)."""
        return self._slowest_s

    def observe_interval(self, seconds: float) -> None:
        """Records the time between two consecutive collectives (for the adaptive timeout)."""
        if seconds > self._slowest_s:
            self._slowest_s = seconds

    def stall_deadline(self, timeout: float | None) -> float | None:
        """Seconds into a wait at which to warn, or None (off, or not before the timeout)."""
        stall = self._stall_warning
        if stall is None or (timeout is not None and stall >= timeout):
            return None
        return stall


def describe_absence(
    missing: list[int], elsewhere: dict[int, str], arrived: list[int], final: bool = True
) -> str:
    """'rank(s) [1] never arrived (...); rank 2 is waiting in collective #4 barrier()'.

    Args:
        missing: Ranks that did not answer (outside any collective).
        elsewhere: Ranks waiting in another collective, with its description.
        arrived: Ranks waiting in this collective.
        final: Past tense ('never arrived', for the error) or 'have not arrived'.
    """
    parts = []
    if missing:
        verb = "never arrived" if final else "have not arrived"
        parts.append(f"rank(s) {missing} {verb} (busy outside any collective, hung or dead)")
    for r, what in sorted(elsewhere.items()):
        parts.append(f"rank {r} is waiting in collective {what}")
    if arrived:
        parts.append(f"rank(s) {arrived} arrived")
    return "; ".join(parts or ["no rank answered"])


def warn_stall(
    rank: int, what: str, waited: float, absence: str, timeout: float | None, adaptive: bool
) -> None:
    """Logs the stall warning of one collective (a WARNING on `distkeras.distributed`)."""
    if timeout is None:
        limit = "it has no timeout"
    else:
        how = "adaptive: max(120 s, 20x the slowest step)" if adaptive else "as given"
        limit = f"it times out after {timeout:.1f} s ({how})"
    logger.warning(
        "[distkeras] stall: rank %d has waited %.1f s in collective %s: %s; %s.",
        rank,
        waited,
        what,
        absence,
        limit,
    )
