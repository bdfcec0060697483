"""Ends a rank when the `distkeras-run` that launched it is gone.

`distkeras-run` puts `DISTKERAS_LIFELINE=<pid>:<start time>:<boot id>` in the
environment of everything it starts. When `distkeras` is imported in such a
process on the launcher's machine, `watch_launcher` starts a daemon thread that
checks twice a second that this very launcher process still runs (its pid with
the same start time, so a reused pid is not mistaken for it) and otherwise
prints a line on stderr and ends the process with `os._exit`. A rank on another
machine (other boot id) does not watch: its MPI daemon ends it.

The process-identity helpers (start time, boot id) are shared with the
backup folder lock.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

LIFELINE_ENV = "DISTKERAS_LIFELINE"
POLL_INTERVAL_S = 0.5
EXIT_CODE = 1
_watch: dict[str, threading.Thread | None] = {"thread": None}


def boot_id() -> str:
    """An id of this machine's running kernel (changes on reboot); the host name off Linux."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or socket.gethostname()
    except OSError:
        return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return text[text.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks after boot (Linux), or None if unknown.

    Together with the pid it names one process: a pid reused later has
    another start time.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or fields[0] == "Z":
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def process_alive(pid: int, start_time: int | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, if given, started at `start_time`."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None:
        if os.path.isdir("/proc/self"):
            return False  # Linux: no such process
        if os.name != "posix":
            return True  # cannot tell (os.kill would end the process on Windows)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if not fields or fields[0] == "Z":
        return False
    return start_time is None or process_start_time(pid) == start_time


def make_token(pid: int | None = None) -> str:
    """The `DISTKERAS_LIFELINE` value naming process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else int(pid)
    start = process_start_time(pid)
    return f"{pid}:{start if start is not None else ''}:{boot_id()}"


def parse_token(value: str | None) -> tuple[int, int | None, str] | None:
    """`(pid, start_time, boot_id)` from a `DISTKERAS_LIFELINE` value, or None if malformed."""
    if not value:
        return None
    parts = value.strip().split(":", 2)
    if len(parts) != 3 or not parts[0].isdigit() or (parts[1] and not parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1]) if parts[1] else None, parts[2]


def _lost(pid: int) -> None:
    message = (
        f"distkeras: the distkeras-run that launched this process (pid {pid}) is gone; "
        f"ending process {os.getpid()} so that no rank outlives its launcher.\n"
    )
    try:
        os.write(2, message.encode())
    except OSError:
        pass
    os._exit(EXIT_CODE)


def _loop(pid: int, start: int | None, interval: float, on_lost) -> None:
    while process_alive(pid, start):
        time.sleep(interval)
    on_lost(pid)


def watch_launcher(
    environ: Mapping[str, str] | None = None,
    interval: float = POLL_INTERVAL_S,
    on_lost=None,
) -> bool:
    """Starts the thread that ends this process when its launcher is gone.

    Does nothing (returns False) off Linux, without `DISTKERAS_LIFELINE`, when the
    launcher runs on another machine or is not visible from here (another
    PID namespace), or when a watch already runs.

    Args:
        environ: The environment to read (default: `os.environ`).
        interval: Seconds between checks.
        on_lost: Called with the launcher's pid when it is gone (default:
            print a line on stderr and `os._exit(1)`).

    Returns:
        True when a watch was started.
    """
    env = os.environ if environ is None else environ
    token = parse_token(env.get(LIFELINE_ENV))
    if token is None or _watch["thread"] is not None or not os.path.isdir("/proc/self"):
        return False
    pid, start, boot = token
    if boot != boot_id() or pid == os.getpid() or not process_alive(pid, start):
        return False
    thread = threading.Thread(
        target=_loop,
        args=(pid, start, interval, on_lost or _lost),
        name="distkeras-lifeline",
        daemon=True,
    )
    _watch["thread"] = thread
    thread.start()
    return True


def watching() -> bool:
    """True when this process watches its launcher."""
    thread = _watch["thread"]
    return thread is not None and thread.is_alive()
