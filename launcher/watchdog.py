"""Ends the job of a `distkeras-run` that died, even by SIGKILL.

    python -I -S watchdog.py FD TOKEN [GRACE [FOLDER]]

Started by the launcher (see `launcher.lifeline`), not by users. It blocks
reading the pipe FD, whose write end only the launcher holds. A launcher that
ends normally writes `done` first and this process exits quietly. Meanwhile it
records, once a second, every descendant of the launcher. End of file without
`done` means the launcher was killed: every process of its job (those whose
environment holds `DISTKERAS_LIFELINE=TOKEN`, the recorded descendants, and
their children: mpirun/prterun, the ranks, the Ray processes and workers)
gets SIGTERM, and what is left after GRACE seconds gets SIGKILL, until none is
left. FOLDER (mpirun's private session base, `launcher.sessiondir`) is then
removed.

It imports only the standard library and runs with `-I -S`, so it starts in
milliseconds and holds no module of the job.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import time

LIFELINE_ENV = "DISTKERAS_LIFELINE"
DONE = b"done"
DEFAULT_GRACE_S = 2.0
KILL_DEADLINE_S = 30.0
TRACK_INTERVAL_S = 1.0


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, start time, name) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    name = stat[stat.find(b"(") + 1 : stat.rfind(b")")].decode(errors="replace")
    try:
        return fields[0].decode(), int(fields[19]), name
    except (IndexError, ValueError):
        return None


_HAS_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/PID/task/*/children."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def _children_lister():
    """A function pid -> its children (one scan of every ppid when the kernel lacks
    /proc/PID/task/TID/children, i.e. CONFIG_PROC_CHILDREN)."""
    if _HAS_CHILDREN_FILES:
        return _children
    table: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            table.setdefault(int(stat[stat.rfind(b")") + 2 :].split()[1]), []).append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return lambda pid: table.get(pid, [])


class Job:
    """The processes of one launch: by environment token, and by descent from the launcher.

    Some programs overwrite their environment block (`setproctitle` does, in
    Ray's agents), so the watchdog also records, while the launcher lives, every
    descendant of it (pid and start time, so a reused pid is never taken for one).
    """

    def __init__(self, token: str, launcher: int | None):
        self.entry = f"{LIFELINE_ENV}={token}".encode()
        self.launcher = launcher
        self.me = os.getpid()
        self.known: dict[int, tuple[int, str]] = {}  # pid -> (start time, name)

    def _add_descendants(self, roots: list[int]) -> None:
        stack = list(roots)
        seen = set()
        children = _children_lister()
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            for child in children(pid):
                if child == self.me:
                    continue
                stat = _stat(child)
                if stat is not None and stat[0] != "Z":
                    self.known.setdefault(child, (stat[1], stat[2]))
                stack.append(child)

    def track(self) -> None:
        """Records the launcher's descendants; forgets those that ended."""
        for pid, (start, _) in list(self.known.items()):
            stat = _stat(pid)
            if stat is None or stat[1] != start:
                del self.known[pid]
        if self.launcher is not None:
            self._add_descendants([self.launcher])

    def is_member(self, pid: int) -> bool:
        """True while `pid` is a live process of the job."""
        stat = _stat(pid)
        if stat is None or stat[0] == "Z" or pid == self.me:
            return False
        if pid in self.known and self.known[pid][0] == stat[1]:
            return True
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                return self.entry in f.read().split(b"\0")
        except OSError:
            return False

    def members(self) -> dict[int, str]:
        """pid -> name of every live process of the job (and their children)."""
        found = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and self.is_member(int(name)):
                stat = _stat(int(name))
                if stat is not None:
                    found[int(name)] = stat[2]
        self._add_descendants(list(found))  # children born since the last look
        for pid, (_, name) in self.known.items():
            if pid not in found and self.is_member(pid):
                found[pid] = name
        return found

    def send(self, pid: int, sig: int) -> None:
        """Signals `pid` if it is still in the job (a pidfd guards against pid reuse)."""
        pidfd = None
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(pid)
        try:
            if not self.is_member(pid):
                return
            with contextlib.suppress(OSError):
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, sig)
                else:
                    os.kill(pid, sig)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def end(self, grace: float) -> dict[int, str]:
        """SIGTERM to every process, SIGKILL after `grace` s; returns those signalled."""
        members = self.members()
        ended = dict(members)
        for pid in members:
            self.send(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while members and time.monotonic() < deadline:
            time.sleep(0.1)
            members = self.members()
            ended.update(members)
        deadline = time.monotonic() + KILL_DEADLINE_S
        while members and time.monotonic() < deadline:
            for pid in members:
                self.send(pid, signal.SIGKILL)
            time.sleep(0.05)
            members = self.members()
            ended.update(members)
        return ended


def wait_for_launcher(fd: int, job: Job, interval: float = TRACK_INTERVAL_S) -> bytes:
    """Reads the pipe until end of file, recording the job's processes meanwhile."""
    data = b""
    while True:
        job.track()
        try:
            ready, _, _ = select.select([fd], [], [], interval)
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk


def _launcher_pid(token: str) -> int | None:
    """The launcher's pid from its token `pid:start time:boot id`, if it names a live one."""
    pid, _, rest = token.partition(":")
    start = rest.partition(":")[0]
    if not pid.isdigit() or not start.isdigit():
        return None
    stat = _stat(int(pid))
    return int(pid) if stat is not None and stat[1] == int(start) else None


def main(argv: list[str]) -> int:
    """Waits for the launcher; ends its job unless it said `done`."""
    if len(argv) < 3 or not argv[1].isdigit():
        sys.stderr.write("usage: watchdog.py FD TOKEN [GRACE [FOLDER]]\n")
        return 2
    for name in ("SIGINT", "SIGHUP"):  # a terminal's Ctrl-C or hang-up is the launcher's
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    fd, token = int(argv[1]), argv[2]
    grace = float(argv[3]) if len(argv) > 3 else DEFAULT_GRACE_S
    job = Job(token, _launcher_pid(token))
    if DONE in wait_for_launcher(fd, job):
        return 0
    ended = job.end(grace)
    if len(argv) > 4:  # the job is gone: its session base folder can go too
        shutil.rmtree(argv[4], ignore_errors=True)
    if ended:
        names = ", ".join(f"{name} ({pid})" for pid, name in sorted(ended.items()))
        with contextlib.suppress(OSError):
            sys.stderr.write(
                f"distkeras-run: the launcher (pid {token.split(':')[0]}) was killed; ended the "
                f"{len(ended)} processes of its job: {names}\n"
            )
            sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
