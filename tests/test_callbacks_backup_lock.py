"""One job per backup folder: `BackupAndRestore` locks its folder while `fit` runs.

A second job on a live job's folder refuses, naming the folder, the host and the
pid; a lock left by a dead job (pid gone, pid reused, or a machine that stopped
refreshing it) is taken over with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from distkeras import callbacks, layers
from distkeras.distributed import lifeline
from distkeras.models import Sequential
from distkeras.saving.folder_lock import LOCK_NAME, STALE_AFTER_S, FolderLock, FolderLockedError

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "tests" / "launcher" / "scripts" / "backup_job.py"


def _fit(backup_dir, epochs=2, extra=(), **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model = Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = callbacks.BackupAndRestore(backup_dir, save_freq=2, **kwargs)
    return model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[*extra, backup])


def _job_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_"))}
    env.pop(lifeline.LIFELINE_ENV, None)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _write_lock(folder: Path, **fields) -> Path:
    """A lock file as a job with `fields` (default: this process) would leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start_time": lifeline.process_start_time(os.getpid()),
        "boot_id": lifeline.boot_id(),
        "job": "",
        "since": time.time(),
        "owner": "test",
    }
    record.update(fields)
    path = folder / LOCK_NAME
    path.write_text(json.dumps(record))
    return path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _wait_for(path: Path, proc: subprocess.Popen, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not path.exists():
        out = proc.communicate(timeout=30)[0] if proc.poll() is not None else ""
        pytest.fail(f"the holding job did not start: {out}")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_second_job_refuses_a_live_jobs_folder_then_takes_it_over_once_it_is_killed(tmp_path):
    backup = tmp_path / "backup"
    first = subprocess.Popen(
        [sys.executable, str(JOB), str(backup), str(tmp_path / "first"), "hold"],
        env=_job_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(tmp_path / "first.ready", first)
        with pytest.raises(FolderLockedError) as info:
            _fit(backup)
        message = str(info.value)
        assert repr(str(backup)) in message
        assert f"pid {first.pid} on host {socket.gethostname()!r}" in message
        assert (backup / LOCK_NAME).exists()  # the live job's lock is left alone
        first.kill()  # the supervisor's kill -9: the lock stays behind, stale
        first.communicate(timeout=30)
        with pytest.warns(UserWarning, match=f"pid {first.pid} .*no longer running"):
            history = _fit(backup)
        assert len(history.history["loss"]) == 2
        assert not backup.exists()  # delete_checkpoint=True: lock and folder removed
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=30)


@pytest.mark.parametrize(
    "fields,why",
    [
        ({"pid": "dead"}, "is no longer running"),
        ({"pid": "parent", "start_time": "wrong"}, "now belongs to another process"),
        ({"host": "elsewhere", "mtime": -2 * STALE_AFTER_S}, "was not refreshed"),
        ({"boot_id": "before-a-reboot", "mtime": -2 * STALE_AFTER_S}, "was not refreshed"),
    ],
    ids=["pid-gone", "pid-reused", "other-host-silent", "rebooted-silent"],
)
def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, fields, why):
    backup = tmp_path / "backup"
    fields = dict(fields)
    mtime = fields.pop("mtime", 0.0)
    if fields.get("pid") == "dead":
        fields["pid"] = _dead_pid()
    if fields.get("pid") == "parent":
        fields["pid"] = os.getppid()
        fields["start_time"] = lifeline.process_start_time(os.getppid()) + 1
    path = _write_lock(backup, **fields)
    if mtime:
        os.utime(path, (time.time() + mtime, time.time() + mtime))
    with pytest.warns(UserWarning, match=f"Taking over the lock of the backup folder.*{why}"):
        history = _fit(backup, delete_checkpoint=False)
    assert len(history.history["loss"]) == 2
    assert sorted(p.name for p in backup.iterdir() if p.name.endswith(".dkc"))
    assert not path.exists()  # released at the end of fit


@pytest.mark.parametrize("fields", [{"host": "elsewhere"}, {"pid": "parent"}])
def test_a_live_lock_is_refused_naming_the_folder_host_and_pid(tmp_path, fields):
    backup = tmp_path / "backup"
    if fields.get("pid") == "parent":  # a live process on this machine
        fields = {"pid": os.getppid(), "start_time": lifeline.process_start_time(os.getppid())}
    path = _write_lock(backup, **fields)
    before = path.read_bytes()
    with pytest.raises(FolderLockedError) as info:
        _fit(backup)
    message = str(info.value)
    record = json.loads(before)
    assert repr(str(backup)) in message
    assert f"pid {record['pid']} on host {record['host']!r}" in message
    assert path.read_bytes() == before
    assert not any(p.name.endswith(".dkc") for p in backup.iterdir())  # nothing written


def test_a_rank_restarted_by_the_same_launch_takes_its_lock_back_quietly(tmp_path, monkeypatch):
    monkeypatch.setenv(lifeline.LIFELINE_ENV, "123:456:launch-of-this-job")
    backup = tmp_path / "backup"
    _write_lock(backup, host="elsewhere", job="123:456:launch-of-this-job")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(backup)


def test_the_lock_is_released_after_fit_and_after_an_error(tmp_path):
    backup = tmp_path / "backup"

    class Boom(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _fit(backup, extra=[Boom()])
    assert not (backup / LOCK_NAME).exists()
    assert any(p.name.endswith(".dkc") for p in backup.iterdir())  # the backup stays
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stale lock to take over
        _fit(backup, delete_checkpoint=False)
    assert not (backup / LOCK_NAME).exists()
    assert any(p.name.endswith(".dkc") for p in backup.iterdir())


def test_a_stale_lock_replaced_meanwhile_by_a_live_one_is_not_removed(tmp_path):
    """Two jobs racing for one stale lock: the loser must not delete the winner's lock."""
    folder = tmp_path / "backup"
    stale = _write_lock(folder, pid=_dead_pid()).read_bytes()
    parent = os.getppid()
    live = _write_lock(folder, pid=parent, start_time=lifeline.process_start_time(parent))
    winner = live.read_bytes()
    FolderLock(folder)._remove_if_unchanged(stale)  # what the loser judged stale is gone
    assert live.read_bytes() == winner
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]
    with pytest.raises(FolderLockedError):
        FolderLock(folder).acquire()


def test_release_leaves_a_lock_this_process_no_longer_owns(tmp_path):
    folder = tmp_path / "backup"
    lock = FolderLock(folder)
    lock.acquire()
    taken = _write_lock(folder, owner="someone-else")
    lock.release()
    assert taken.exists()


MPIRUN_OK = shutil.which("mpirun") is not None


@pytest.mark.skipif(not MPIRUN_OK, reason="needs mpirun")
def test_every_rank_of_a_second_mpi_job_refuses(tmp_path):
    backup = tmp_path / "backup"
    held = FolderLock(backup, "backup folder")
    held.acquire()  # this test process plays the live job
    try:
        env = _job_env()
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        env["DISTKERAS_COLLECTIVE_TIMEOUT"] = "60"
        proc = subprocess.run(
            [sys.executable, "-m", "launcher", "-np", "2", str(JOB), str(backup),
             str(tmp_path / "second")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 3, proc.stdout + proc.stderr
        for rank in (0, 1):
            message = (tmp_path / f"second.refused.{rank}").read_text()
            assert f"pid {os.getpid()} on host {socket.gethostname()!r}" in message
    finally:
        held.release()
    assert not (backup / LOCK_NAME).exists()


def test_a_folder_that_cannot_be_created_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match="Cannot lock the backup folder"):
        _fit(tmp_path / "file" / "backup")
