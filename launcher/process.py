"""Runs a plan's command so that every rank ends with it.

The job starts in its own session (and process group). SIGINT, SIGTERM and
SIGHUP sent to the launcher are forwarded to the job's process group (mpirun
passes them on to its ranks); a second signal, or a job still alive after the
grace period, gets SIGKILL for every process left in the job's session and
every descendant of the job. When the job ends, stragglers in its session are
ended too, so no rank outlives the launcher. A launcher that is killed (even by
SIGKILL) is covered by `launcher.lifeline`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from launcher.lifeline import parent_death_preexec

FORWARDED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
GRACE_ENV = "DISTKERAS_RUN_GRACE"
DEFAULT_GRACE_S = 10.0
TIMEOUT_EXIT = 124
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Makes orphaned descendants reparent to this process (Linux), so they can be found."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, session id) for every process visible in /proc."""
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), int(fields[3]))
    return table


def job_processes(
    leader: int, leader_alive: bool = True, adopted_by: int | None = None
) -> set[int]:
    """Live processes of a job: its session, their descendants, and orphans we adopted.

    Args:
        leader: The job's first process (leader of its own session).
        leader_alive: Whether the leader is not yet reaped (its pid is still
            ours, so its descendants may be walked from it).
        adopted_by: This process's pid when it is a subreaper: its children
            are the job's orphans (the leader among them).
    """
    table = _proc_table()
    found = {pid for pid, (_, sid) in table.items() if sid == leader}
    roots = set(found) | ({leader} if leader_alive else set())
    if adopted_by is not None:
        roots |= {pid for pid, (ppid, _) in table.items() if ppid == adopted_by}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in table and pid not in found:
            found.add(pid)
        for child in children.get(pid, ()):
            if child not in found:
                stack.append(child)
    found.discard(os.getpid())
    return {pid for pid in found if pid in table}


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def grace_period(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a signalled job gets before SIGKILL (`DISTKERAS_RUN_GRACE`, default 10)."""
    env = os.environ if environ is None else environ
    try:
        return max(0.0, float(env.get(GRACE_ENV, DEFAULT_GRACE_S)))
    except ValueError:
        return DEFAULT_GRACE_S


class JobRunner:
    """Starts one command in its own session and owns its lifetime.

    Args:
        argv: The command.
        env: Its full environment.
        stdin: Text for its standard input, or None to inherit ours.
        timeout: Seconds before the job is ended (exit code 124), or None.
        grace: Seconds between the forwarded signal and SIGKILL.
        subreaper: Adopt orphaned descendants (only in the `distkeras-run` process).
        death_signal: Signal the job's first process gets when the launcher
            dies, even by SIGKILL (Linux `PR_SET_PDEATHSIG`), or None.
        exclude: Pids the job cleanup leaves alone (the launcher's watchdog).
        router: Reads the job's stderr (and, when its lines carry ranks, its
            stdout) through pipes (`launcher.output.OutputRouter`), or None
            to let the job write to the launcher's own streams.
    """

    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        stdin: str | None = None,
        timeout: float | None = None,
        grace: float = DEFAULT_GRACE_S,
        subreaper: bool = False,
        death_signal: int | None = None,
        exclude: set[int] | None = None,
        router=None,
    ):
        self.argv = list(argv)
        self.env = dict(env)
        self.stdin = stdin
        self.timeout = timeout
        self.grace = grace
        self.subreaper = subreaper and become_subreaper()
        self.death_signal = death_signal
        self.exclude = set(exclude or ())
        self.router = router
        self._signals: list[int] = []

    def _on_signal(self, signum: int, frame) -> None:
        self._signals.append(signum)

    def _members(self, proc: subprocess.Popen) -> set[int]:
        alive = proc.poll() is None
        found = job_processes(proc.pid, alive, os.getpid() if self.subreaper else None)
        return found - self.exclude

    def _stop(self, proc: subprocess.Popen, sig: int) -> None:
        """Forwards `sig` to the job, then SIGKILLs whatever outlives the grace period."""
        _signal_group(proc.pid, sig)
        deadline = time.monotonic() + self.grace
        seen = len(self._signals)
        while proc.poll() is None and time.monotonic() < deadline:
            if len(self._signals) > seen:  # a second Ctrl-C: no more waiting
                break
            time.sleep(0.05)
        self._cleanup(proc, force=True)

    def _cleanup(self, proc: subprocess.Popen, force: bool = False) -> None:
        """Ends every process left in the job (SIGTERM, then SIGKILL after a short wait)."""
        leftover = self._members(proc)
        if not leftover and proc.poll() is not None:
            return
        if not force:
            _kill_all(leftover, signal.SIGTERM)
            deadline = time.monotonic() + min(self.grace, 2.0)
            while leftover and time.monotonic() < deadline:
                time.sleep(0.05)
                _reap(leftover)
                leftover = self._members(proc)
        for _ in range(50):
            if not leftover and proc.poll() is not None:
                break
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGKILL)
            _kill_all(leftover, signal.SIGKILL)
            _reap(leftover)
            time.sleep(0.02)
            proc.poll()
            leftover = self._members(proc)
        proc.wait()

    def run(self) -> int:
        """Runs the job and returns its exit code (128+N after signal N, 124 on timeout)."""
        previous = {}
        for sig in FORWARDED:
            previous[sig] = signal.signal(sig, self._on_signal)
        preexec = None if self.death_signal is None else parent_death_preexec(self.death_signal)
        router = self.router
        pipe_out = router is not None and (router.flavor is not None or router.default_rank == 0)
        try:
            proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.PIPE if self.stdin is not None else None,
                stdout=subprocess.PIPE if pipe_out else None,
                stderr=subprocess.PIPE if router is not None else None,
                start_new_session=True,
                preexec_fn=preexec,
            )
        except BaseException:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            raise
        if router is not None:
            if pipe_out:
                router.pump(os.dup(proc.stdout.fileno()), "stdout")
                proc.stdout.close()
            router.pump(os.dup(proc.stderr.fileno()), "stderr")
            proc.stderr.close()
        try:
            return self._supervise(proc)
        finally:
            if proc.poll() is None:
                self._cleanup(proc, force=True)
            if router is not None:
                router.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self, proc: subprocess.Popen) -> int:
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(self.stdin.encode())
                proc.stdin.close()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                rc = proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is not None:
                self._cleanup(proc)
                return rc if rc >= 0 else 128 - rc
            if self._signals:
                sig = self._signals[0]
                self._stop(proc, sig)
                return 128 + int(sig)
            if deadline is not None and time.monotonic() >= deadline:
                print(
                    f"distkeras-run: the job ran past --timeout {self.timeout:g} s; ending it",
                    file=sys.stderr,
                    flush=True,
                )
                self._stop(proc, signal.SIGTERM)
                return TIMEOUT_EXIT
