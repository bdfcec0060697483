"""Makes the job end with `distkeras-run`, however the launcher ends (SIGKILL included).

Three layers, each enough on its own for the common case:

1. The job's first process (mpirun/prterun, srun, or the single rank) gets
   `PR_SET_PDEATHSIG` = SIGTERM: the kernel signals it the moment the
   launcher dies, and mpirun then ends its ranks (here and on other hosts).
2. A watchdog process (`launcher/watchdog.py`, in its own session) holds the
   read end of a pipe whose write end only the launcher holds. End of file
   without a `done` means the launcher was killed: the watchdog ends every
   process whose environment carries this launch's `DISTKERAS_LIFELINE`
   token (SIGTERM, then SIGKILL after a short grace): ranks, Ray's processes
   and workers, and anything they started.
3. Ranks that import distkeras watch the launcher's pid and start time
   themselves (`distkeras.distributed.lifeline`) and exit when it is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

LIFELINE_ENV = "DISTKERAS_LIFELINE"
WATCHDOG = Path(__file__).with_name("watchdog.py")
ORPHAN_GRACE_S = 2.0
_PR_SET_PDEATHSIG = 1


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def parent_death_preexec(sig: int) -> Callable[[], None] | None:
    """A `preexec_fn` making the child get `sig` when this process (its parent) dies.

    Linux only (None elsewhere). The signal is tied to the thread that forks
    the child, so call `Popen` from the main thread. A parent that died
    between fork and `prctl` is caught by comparing the parent pid.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "prctl"):
        return None
    parent = os.getpid()
    prctl = libc.prctl

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os.kill(os.getpid(), int(sig))

    return set_death_signal


def make_token() -> str:
    """This launcher's `DISTKERAS_LIFELINE` value: `pid:start time:boot id`."""
    from distkeras.distributed.lifeline import make_token as _make  # noqa: PLC0415

    return _make(os.getpid())


class Lifeline:
    """The launcher's end of its job's lifeline (a token and a watchdog process).

    Use as a context manager around the job: leaving the block normally tells
    the watchdog that the launcher ended the job itself.

    Args:
        grace: Seconds the watchdog waits after SIGTERM before SIGKILL.
        watchdog: Start the watchdog process (Linux only).
        leftover: A folder of the launch (mpirun's private session base) the
            watchdog removes after ending the job of a killed launcher.
    """

    def __init__(
        self, grace: float = ORPHAN_GRACE_S, watchdog: bool = True, leftover: str | None = None
    ):
        self.token = make_token()
        self.grace = grace
        self.leftover = leftover
        self.process: subprocess.Popen | None = None
        self._write_end: int | None = None
        if watchdog and os.path.isdir("/proc/self"):
            self._start_watchdog()

    @property
    def env(self) -> dict[str, str]:
        """The variables that tie a process to this launch."""
        return {LIFELINE_ENV: self.token}

    @property
    def pids(self) -> set[int]:
        """The watchdog's pid (the launcher's job cleanup must leave it alone)."""
        return {self.process.pid} if self.process is not None else set()

    def _start_watchdog(self) -> None:
        read_end, write_end = os.pipe()  # not inheritable: only the watchdog gets read_end
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WATCHDOG), str(read_end), self.token,
                 f"{self.grace:g}", *([self.leftover] if self.leftover else [])],
                pass_fds=(read_end,),
                env={},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            os.close(write_end)
            print(
                f"distkeras-run: warning: no watchdog ({e}); a killed launcher may leave "
                "processes behind",
                file=sys.stderr,
            )
        else:
            self._write_end = write_end
        finally:
            os.close(read_end)

    def close(self) -> None:
        """Tells the watchdog that the launcher ended the job itself, and reaps it."""
        if self._write_end is not None:
            with contextlib.suppress(OSError):
                os.write(self._write_end, b"done")
            os.close(self._write_end)
            self._write_end = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.process = None

    def __enter__(self) -> Lifeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
