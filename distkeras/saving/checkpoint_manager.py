"""A folder of numbered checkpoints with an atomically updated `latest` pointer.

Each checkpoint is one container file (`ckpt-000000001234.dkc`), written to a
temporary file, fsynced and renamed; only then is the pointer file rewritten
the same way. The newest `keep` checkpoints are kept. Restoring tries the
pointer's checkpoint first and falls back, with a warning naming the bad file,
to older ones whose checksums hold.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from typing import Any

from distkeras.saving.file_format import FileFormatError, read_container, write_container
from distkeras.saving.state_schema import json_depth

_PATTERN = re.compile(r"^ckpt-(\d{12})\.dkc$")
POINTER = "latest"


class CheckpointManager:
    """Writes, lists and restores the checkpoints of one directory.

    Args:
        directory: Where checkpoints live (created if missing).
        keep: How many of the newest checkpoints to keep (>= 1).
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3):
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1. Received: keep={keep!r}")
        self.directory = os.fspath(directory)
        self.keep = keep

    def _path(self, number: int) -> str:
        return os.path.join(self.directory, f"ckpt-{int(number):012d}.dkc")

    def checkpoints(self) -> list[tuple[int, str]]:
        """(number, path) of every checkpoint file, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            m = _PATTERN.match(name)
            if m:
                found.append((int(m.group(1)), os.path.join(self.directory, name)))
        return sorted(found)

    def save(self, number: int, arrays: list, metadata: dict) -> str:
        """Writes checkpoint `number`, points `latest` at it, prunes old ones; returns its path."""
        os.makedirs(self.directory, exist_ok=True)
        path = self._path(number)
        write_container(path, arrays, kind="checkpoint", metadata=metadata)
        self._write_pointer(os.path.basename(path))
        for _, old in self.checkpoints()[: -self.keep]:
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
        return path

    def _write_pointer(self, name: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            json.dump({"latest": name}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(self.directory, POINTER))

    def latest_path(self) -> str | None:
        """The checkpoint the pointer names (else the newest file), or None."""
        pointer = os.path.join(self.directory, POINTER)
        try:
            with open(pointer) as f:
                text = f.read(4096)  # a pointer is one short object: read no more, nest no deeper
            data = json.loads(text) if json_depth(text) <= 2 else None
            name = data.get("latest") if isinstance(data, dict) else None
            if isinstance(name, str) and _PATTERN.match(name):
                candidate = os.path.join(self.directory, name)
                if os.path.exists(candidate):
                    return candidate
        except (OSError, ValueError, AttributeError):
            pass
        found = self.checkpoints()
        return found[-1][1] if found else None

    def restore(self) -> tuple[str, dict, dict] | None:
        """(path, header, arrays) of the newest readable checkpoint, or None if there is none.

        A corrupt newer checkpoint is skipped with a warning naming it.
        """
        first = self.latest_path()
        if first is None:
            return None
        ordered = [first] + [p for _, p in reversed(self.checkpoints()) if p != first]
        for path in ordered:
            try:
                header, arrays = read_container(path)
            except (FileFormatError, OSError) as e:
                warnings.warn(
                    f"Skipping unreadable checkpoint {path!r} ({e}); trying an older one.",
                    stacklevel=2,
                )
                continue
            if header.get("kind") != "checkpoint":
                warnings.warn(f"Skipping {path!r}: not a checkpoint file.", stacklevel=2)
                continue
            return path, header, arrays
        return None

    def remove_temporaries(self) -> int:
        """Deletes `.tmp-*` files that a writer killed mid-write left; returns how many.

        Call it only while no checkpoint of this directory is being written.
        """
        if not os.path.isdir(self.directory):
            return 0
        removed = 0
        for name in os.listdir(self.directory):
            if name.startswith(".tmp-"):
                try:
                    os.unlink(os.path.join(self.directory, name))
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def delete_all(self) -> None:
        """Removes every checkpoint and the pointer (the folder stays if it holds other files)."""
        for _, path in self.checkpoints():
            os.unlink(path)
        pointer = os.path.join(self.directory, POINTER)
        if os.path.exists(pointer):
            os.unlink(pointer)
        try:
            os.rmdir(self.directory)
        except OSError:
            pass


def describe(header: dict) -> dict[str, Any]:
    """The metadata of a checkpoint header (empty dict if absent)."""
    meta = header.get("metadata")
    return meta if isinstance(meta, dict) else {}
