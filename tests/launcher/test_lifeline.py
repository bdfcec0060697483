"""No process of a job outlives `distkeras-run`, even when it is killed with SIGKILL.

Every process of a job is found by a unique marker in its environment (the
launcher's environment is inherited by mpirun, the ranks, Ray's processes and
its workers); whatever a failing test leaves behind is killed in a `finally`.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from distkeras.distributed import lifeline
from launcher.lifeline import Lifeline, parent_death_preexec
from tests.launcher.test_run import ROOT, SCRIPTS, launcher_env, needs_mpi, wait_for

FOREVER = SCRIPTS / "forever.py"
linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="needs ray (pip install 'distkeras[ray]')"
)


def processes_with_env(entry: str) -> list[int]:
    """Pids of live (not zombie) processes whose environment holds `entry` (KEY=VALUE)."""
    found = []
    needle = entry.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != b"Z":
            found.append(int(name))
    return found


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every descendant of `root` (some programs, like Ray's
    agents through setproctitle, overwrite the environment that holds the marker)."""
    parents = {}
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                parents[int(name)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, stack = {}, [root]
    while stack:
        pid = stack.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                start = lifeline.process_start_time(child)
                if start is not None:
                    found[child] = start
                    stack.append(child)
    return found


def _left(entry: str, tree: dict[int, int]) -> list[int]:
    alive = {pid for pid, start in tree.items() if lifeline.process_alive(pid, start)}
    return sorted(alive | set(processes_with_env(entry)))


def _kill_all(entry: str, tree: dict[int, int]) -> list[int]:
    left = _left(entry, tree)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _start(tmp_path: Path, launcher_args: list[str], script_args: list[str], ranks: int):
    """Starts `distkeras-run ... forever.py` and waits until `ranks` ranks are up."""
    entry = f"DISTKERAS_TEST_MARKER={uuid.uuid4().hex}"
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "tmp").mkdir()  # mpirun's session base goes to TMPDIR (Ray's sockets: too long)
    tmpdir = {} if "ray" in launcher_args else {"TMPDIR": str(tmp_path / "tmp")}
    log = open(tmp_path / "launcher.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", *launcher_args, "python", str(FOREVER), str(out),
         *script_args],
        cwd=ROOT,
        env=launcher_env(**tmpdir, **dict([entry.split("=", 1)])),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    up = wait_for(lambda: len(list(out.glob("ready.*"))) >= ranks or proc.poll() is not None, 240)
    return proc, entry, up and proc.poll() is None


def _kill_launcher_and_check(
    tmp_path, launcher_args, script_args, ranks, sig: int = signal.SIGKILL
) -> None:
    proc, entry, up = _start(tmp_path, launcher_args, script_args, ranks)
    tree: dict[int, int] = {}
    try:
        log = (tmp_path / "launcher.log").read_text
        assert up, "the ranks did not start: " + log()
        rank_pids = {int(p.read_text()) for p in (tmp_path / "out").glob("ready.*")}
        tree = descendants(proc.pid)
        before = set(processes_with_env(entry)) | set(tree)
        assert {proc.pid, *rank_pids} <= before, (before, rank_pids)
        bases = lambda: list((tmp_path / "tmp").glob("distkeras-mpi-*"))  # noqa: E731
        mpirun = ranks > 1 and "ray" not in launcher_args
        assert len(bases()) == (1 if mpirun else 0), bases()  # mpirun's private base
        proc.send_signal(sig)  # SIGKILL: the launcher runs no code of its own
        proc.wait(timeout=30)
        wait_for(lambda: not _left(entry, tree), 30)
        left = _left(entry, tree)
        assert left == [], f"processes left behind {left} of {sorted(before)}; log: {log()}"
        assert wait_for(lambda: not bases(), 30), f"the watchdog left {bases()}; log: {log()}"
    finally:
        _kill_all(entry, tree)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@needs_mpi
@linux_only
@pytest.mark.parametrize(
    "script_args",
    [["ignore"], ["ignore", "distkeras"]],
    ids=["ranks-ignore-sigterm", "ranks-import-distkeras"],
)
def test_kill_9_of_the_launcher_leaves_no_rank(tmp_path, script_args):
    _kill_launcher_and_check(tmp_path, ["-np", "2"], script_args, ranks=2)


@needs_mpi
@linux_only
def test_a_launcher_ended_by_a_signal_it_does_not_handle_leaves_no_rank(tmp_path):
    _kill_launcher_and_check(tmp_path, ["-np", "2"], ["ignore"], ranks=2, sig=signal.SIGUSR1)


@linux_only
def test_kill_9_of_the_launcher_ends_a_single_process(tmp_path):
    _kill_launcher_and_check(tmp_path, ["-np", "1"], ["ignore"], ranks=1)


@needs_ray
@linux_only
def test_kill_9_of_the_launcher_ends_ray_and_its_workers(tmp_path):
    _kill_launcher_and_check(tmp_path, ["--backend", "ray", "-np", "2"], [], ranks=2)


# ------------------------------------------------------------ each layer alone


@linux_only
def test_a_rank_that_imports_distkeras_ends_when_its_launcher_is_gone():
    """Layer 3 alone: no mpirun, no watchdog; the rank's own thread notices."""
    fake_launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        code = "import distkeras, time, sys; print('up', flush=True); time.sleep(120)"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env[lifeline.LIFELINE_ENV] = lifeline.make_token(fake_launcher.pid)
        rank = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert rank.stdout.readline().strip() == b"up"
            fake_launcher.kill()
            fake_launcher.wait()
            _, err = rank.communicate(timeout=60)
        finally:
            if rank.poll() is None:
                rank.kill()
                rank.wait()
        assert rank.returncode == lifeline.EXIT_CODE
        assert f"launched this process (pid {fake_launcher.pid}) is gone" in err.decode()
    finally:
        if fake_launcher.poll() is None:
            fake_launcher.kill()
            fake_launcher.wait()


@linux_only
def test_a_rank_does_not_watch_a_launcher_it_cannot_see():
    """A token naming a dead, reused or foreign process starts no watch (no false alarm)."""
    assert not lifeline.watching()  # so that a False below means: refused
    me = os.getpid()
    start = lifeline.process_start_time(me)
    boot = lifeline.boot_id()
    assert lifeline.parse_token(lifeline.make_token()) == (me, start, boot)
    assert lifeline.process_alive(me, start)
    assert not lifeline.process_alive(me, start + 1)  # same pid, another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not lifeline.process_alive(child.pid)
    for token in (
        f"{os.getppid()}:{lifeline.process_start_time(os.getppid()) + 1}:{boot}",  # pid reused
        f"{os.getppid()}::another-machine",  # another boot id
        "not-a-token",
    ):
        calls = []
        assert not lifeline.watch_launcher({lifeline.LIFELINE_ENV: token}, on_lost=calls.append)
        assert calls == []


FAKE_LAUNCHER = """
import os, subprocess, sys, time
from launcher.lifeline import Lifeline
line = Lifeline(grace=0.5)
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
marked = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, **line.env))
# Its environment names no job (as when a program overwrites it, like setproctitle).
hidden = subprocess.Popen([sys.executable, "-c", code], env={"PATH": os.environ["PATH"]})
print(marked.pid, hidden.pid, flush=True)
if "done" in sys.argv:
    line.close()
    print("closed", flush=True)
time.sleep(120)
"""


@linux_only
@pytest.mark.parametrize("done", [False, True], ids=["launcher-killed", "launcher-ended"])
def test_the_watchdog_ends_the_job_only_when_the_launcher_dies(done):
    """Layer 2 alone: a launcher's children, with or without the token, end when it is killed."""
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE_LAUNCHER, *(["done"] if done else [])],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children = []
    try:
        pids = [int(p) for p in fake.stdout.readline().split()]
        children = [(pid, lifeline.process_start_time(pid)) for pid in pids]
        assert len(children) == 2 and all(lifeline.process_alive(*c) for c in children)
        if done:
            assert fake.stdout.readline().strip() == "closed"  # the watchdog has exited
        else:
            time.sleep(3)  # the watchdog records the launcher's descendants once a second
        fake.kill()
        fake.wait()
        if done:
            assert all(lifeline.process_alive(*c) for c in children)
        else:
            assert wait_for(lambda: not any(lifeline.process_alive(*c) for c in children), 30)
            err = fake.stderr.read()  # the watchdog's report (it shares the stderr pipe)
            assert "was killed; ended the 2 processes of its job" in err, err
    finally:
        for pid, start in children:
            if lifeline.process_alive(pid, start):
                os.kill(pid, signal.SIGKILL)
        if fake.poll() is None:
            fake.kill()
        fake.communicate(timeout=60)


@linux_only
def test_the_first_process_of_the_job_gets_a_signal_when_the_launcher_dies(tmp_path):
    """Layer 1 alone: PR_SET_PDEATHSIG set by `parent_death_preexec` in the launcher."""
    assert parent_death_preexec(signal.SIGTERM) is not None
    pid_file = tmp_path / "child"
    code = (
        "import subprocess, signal, sys, time\n"
        "from launcher.lifeline import parent_death_preexec\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
        "                     preexec_fn=parent_death_preexec(signal.SIGTERM))\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    child, start = None, None
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", 60)
        child = int(pid_file.read_text())
        start = lifeline.process_start_time(child)
        assert lifeline.process_alive(child, start)
        parent.kill()
        parent.wait()
        assert wait_for(lambda: not lifeline.process_alive(child, start), 30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and lifeline.process_alive(child, start):
            os.kill(child, signal.SIGKILL)


def test_a_launcher_that_ends_normally_leaves_its_watchdog_quiet():
    with Lifeline(grace=0.5) as line:
        assert line.env == {lifeline.LIFELINE_ENV: line.token}
        watchdog = line.process
    if watchdog is not None:
        assert watchdog.returncode == 0


@linux_only
@pytest.mark.parametrize("children_files", [True, False], ids=["proc-children", "ppid-scan"])
def test_the_watchdog_records_grandchildren(monkeypatch, children_files):
    """Descent is found through /proc/PID/task/*/children, or a ppid scan without them."""
    from launcher import watchdog

    monkeypatch.setattr(watchdog, "_HAS_CHILDREN_FILES", children_files)
    code = "import subprocess; p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True)"
    child = subprocess.Popen(
        [sys.executable, "-c", code + "; p.wait()"], stdout=subprocess.PIPE, text=True
    )
    grandchild = 0
    try:
        grandchild = int(child.stdout.readline())
        job = watchdog.Job("no-token", os.getpid())
        job.track()
        assert {child.pid, grandchild} <= set(job.known)
        assert job.is_member(grandchild)
    finally:
        if grandchild and lifeline.process_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)  # it holds the pipe that communicate reads
        child.kill()
        child.communicate()
