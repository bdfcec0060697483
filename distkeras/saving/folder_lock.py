"""A lock file that keeps a second job out of a folder a live job writes.

`BackupAndRestore` takes it in its backup folder on the coordinator. The file
(`distkeras.lock`) records the holder's host, pid, process start time, boot id,
launch token and start date. A job that finds it:

- refuses with `FolderLockedError` (naming the folder, the host and the pid)
  while the holder runs: on this machine, the same pid with the same start time
  is alive; on another machine, the holder refreshes the file's modification
  time every `HEARTBEAT_S` seconds and the lock counts as held until it has not
  been refreshed for `STALE_AFTER_S` seconds (10 minutes; more than clock skew
  between hosts and a stalled file server, less than a supervisor's patience);
- takes it over with a warning when the holder is dead: on this machine (same
  host name and boot id), its pid is gone or names another process; elsewhere
  (another host, or this host before a reboot), the file was not refreshed for
  `STALE_AFTER_S`;
- takes it over silently when it belongs to the same launch (a rank restarted by
  the same `distkeras-run`) or to this very process.

The file appears atomically with its content (written aside, then hard-linked
into place); a stale one is moved aside and checked before it is removed, so two
jobs racing for a stale lock cannot both win.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from typing import Any

from distkeras.distributed.lifeline import (
    LIFELINE_ENV,
    boot_id,
    process_alive,
    process_start_time,
)

LOCK_NAME = "distkeras.lock"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0
_ATTEMPTS = 5


class FolderLockedError(RuntimeError):
    """Another live job holds the folder's lock."""


def _this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "start_time": process_start_time(pid),
        "boot_id": boot_id(),
        "job": os.environ.get(LIFELINE_ENV, ""),
        "since": time.time(),
        "owner": uuid.uuid4().hex,
    }


def _describe(record: dict) -> str:
    since = record.get("since")
    when = ""
    if isinstance(since, (int, float)):
        when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
    return f"pid {record.get('pid')} on host {record.get('host')!r}{when}"


class FolderLock:
    """The lock of one folder, held by this process between `acquire` and `release`.

    Args:
        directory: The folder (created if missing).
        what: What the folder is, for messages ('backup folder').
        stale_after: Seconds without a refresh after which a lock from another
            machine counts as abandoned.
        heartbeat: Seconds between refreshes while held.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        what: str = "folder",
        stale_after: float = STALE_AFTER_S,
        heartbeat: float = HEARTBEAT_S,
    ):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, LOCK_NAME)
        self.what = what
        self.stale_after = float(stale_after)
        self.heartbeat = float(heartbeat)
        self.record: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """True between a successful `acquire` and `release`."""
        return self.record is not None

    def _read(self) -> tuple[bytes, dict | None] | None:
        """(raw bytes, record or None if unreadable), or None when there is no lock file."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(raw.decode())
        except (UnicodeDecodeError, ValueError):
            return raw, None
        return raw, record if isinstance(record, dict) else None

    def _create(self, record: dict) -> bool:
        """Creates the lock file with `record` in one step; False if it exists."""
        data = json.dumps(record).encode()
        aside = f"{self.path}.{record['owner']}"
        with open(aside, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(aside, self.path)
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: exclusive create
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)
        return True

    def _remove_if_unchanged(self, raw: bytes) -> None:
        """Removes the lock file if it still holds `raw` (what was judged stale)."""
        aside = f"{self.path}.stale-{uuid.uuid4().hex}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside, "rb") as f:
                moved = f.read()
            if moved != raw:  # someone took the lock meanwhile: put theirs back
                with contextlib.suppress(OSError):
                    os.link(aside, self.path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)

    def _judge(self, record: dict | None, mine: dict) -> tuple[str, str]:
        """('held' | 'stale' | 'ours', why) for the lock file's record."""
        if record is not None:
            if record.get("job") and record.get("job") == mine["job"]:
                return "ours", "same launch"
            same_machine = (
                record.get("host") == mine["host"] and record.get("boot_id") == mine["boot_id"]
            )
            if same_machine:
                pid, start = record.get("pid"), record.get("start_time")
                if not isinstance(pid, int) or isinstance(pid, bool):
                    return "stale", "it names no valid pid"
                if pid == mine["pid"] and start == mine["start_time"]:
                    return "ours", "this process"
                if process_alive(pid, start if isinstance(start, int) else None):
                    return "held", ""
                if isinstance(start, int) and process_alive(pid):
                    return "stale", f"pid {pid} now belongs to another process"
                return "stale", f"process {pid} is no longer running"
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return "stale", "it vanished"
        if age < self.stale_after:
            return "held", ""
        return "stale", f"it was not refreshed for {age:.0f} s (> {self.stale_after:g} s)"

    def _refused(self, record: dict | None) -> FolderLockedError:
        holder = _describe(record) if record else "an unreadable lock file"
        remote = record is None or (record.get("host"), record.get("boot_id")) != (
            socket.gethostname(),
            boot_id(),
        )
        hint = (
            f" A lock from another machine counts as held until it has not been refreshed "
            f"for {self.stale_after:g} s."
            if remote
            else ""
        )
        return FolderLockedError(
            f"The {self.what} {self.directory!r} is in use by another job: {holder} holds "
            f"{self.path!r}. Two jobs writing one {self.what} would overwrite each other's "
            f"files. Stop that job or wait for it to end, or use another folder; if that "
            f"job is dead, delete the lock file.{hint}"
        )

    def acquire(self) -> None:
        """Takes the lock, or raises `FolderLockedError` when a live job holds it."""
        if self.held:
            return
        os.makedirs(self.directory, exist_ok=True)
        mine = _this_process()
        for _ in range(_ATTEMPTS):
            if self._create(mine):
                self.record = mine
                self._start_heartbeat()
                return
            found = self._read()
            if found is None:
                continue  # released meanwhile
            raw, record = found
            verdict, why = self._judge(record, mine)
            if verdict == "held":
                raise self._refused(record)
            if verdict == "stale":
                holder = _describe(record) if record else "an unreadable lock file"
                warnings.warn(
                    f"Taking over the lock of the {self.what} {self.directory!r} left by "
                    f"{holder}: {why}.",
                    stacklevel=3,
                )
            self._remove_if_unchanged(raw)
        found = self._read()
        raise self._refused(found[1] if found else None)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name="distkeras-lock-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if not self._owned():
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def _owned(self) -> bool:
        found = self._read()
        record = found[1] if found else None
        return bool(record and self.record and record.get("owner") == self.record["owner"])

    def release(self) -> None:
        """Removes the lock file if this process still holds it."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._owned():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self.record = None
