"""`BackupAndRestore`: checkpoints that resume a killed run exactly, mid-epoch included."""

from __future__ import annotations

import contextlib
import os
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from distkeras.callbacks.callback import Callback
from distkeras.saving.checkpoint_manager import CheckpointManager
from distkeras.saving.folder_lock import FolderLock, FolderLockedError


class BackupAndRestore(Callback):
    """Backs up the whole training state and restores it when `fit` starts again.

    The state is everything an uninterrupted run would carry on with: weights,
    optimizer slots and iteration count, the epoch and the step within it, the
    sampler's seed, the running epoch's metric accumulators, every random
    stream (global, per layer, per rank) and the state of the other callbacks.
    Rerunning the same script after a crash gives bitwise the same final
    weights and History as a run that was never interrupted.

    By default a backup is written in the background: the state is copied at
    the step boundary and training goes on while one writer thread writes,
    fsyncs and renames the file (at most one backup in flight; the next backup,
    `fit`'s end and the interpreter's exit wait for it). A process killed
    mid-write leaves the previous backup in place, so a restart resumes from
    it. An error while writing is raised at the next backup or at the end of
    training.

    Args:
        backup_dir: Folder of the checkpoints (shared by all ranks).
        save_freq: 'epoch' or an integer number of batches between backups.
        delete_checkpoint: Remove the backups when training finishes.
        keep: How many of the newest backups to keep.
        asynchronous: Write backups in the background (True) or before
            training continues (False).
    """

    batch_decisions = False  # its batch hooks never stop training or change the rate

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: Any = "epoch",
        delete_checkpoint: bool = True,
        keep: int = 2,
        asynchronous: bool = True,
    ):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"Empty `backup_dir` argument passed. Received: {backup_dir!r}")
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument `save_freq`: expected 'epoch' or a positive "
                f"integer. Received: save_freq={save_freq!r}"
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.manager = CheckpointManager(self.backup_dir, keep=keep)
        self.asynchronous = bool(asynchronous)
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self._lock: FolderLock | None = None

    # Called by the trainer before on_train_begin.
    def load(self) -> tuple[str, dict, dict] | None:
        """The newest readable backup as (path, header, arrays), or None.

        The coordinator first takes the folder's lock (every rank raises
        `FolderLockedError` when another live job holds it), then removes the
        temporary files of writes that a killed run left behind (no backup of
        this run is being written yet).
        """
        self.wait()
        self._take_lock()
        try:
            if self.is_coordinator:
                self.manager.remove_temporaries()
            return self.manager.restore()
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        refusal = None  # or [kind, message], the same on every rank
        if self.is_coordinator and self._lock is None:
            lock = FolderLock(self.backup_dir, what="backup folder")
            try:
                lock.acquire()
                self._lock = lock
            except FolderLockedError as e:
                refusal = ["locked", str(e)]
            except OSError as e:
                refusal = ["oserror", f"Cannot lock the backup folder {self.backup_dir!r}: {e}"]
        comm = self.communicator
        if comm is not None and comm.size > 1:
            refusal = comm.broadcast_object(refusal)  # every rank refuses together
        if refusal:
            kind, message = refusal
            raise FolderLockedError(message) if kind == "locked" else OSError(message)

    def _release_lock(self, remove_folder: bool = False) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
            if remove_folder:
                with contextlib.suppress(OSError):
                    os.rmdir(self.backup_dir)

    def wait(self) -> None:
        """Blocks until the backup being written (if any) is on disk; re-raises its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def finish_pending(self) -> None:
        """Waits for the backup being written when fit ends by an exception.

        A failed write is reported as a warning there, so that the exception
        that ended fit is the one that propagates.
        """
        try:
            self.wait()
        except Exception as e:  # noqa: BLE001 - reported, the original error wins
            warnings.warn(f"The last backup could not be written: {e!r}", stacklevel=2)
        finally:
            self._release_lock()

    def _save(self, epoch: int, next_step: int) -> None:
        arrays, meta = self.model._capture_training_state(epoch, next_step)
        if self.is_coordinator:
            number = int(meta["global_step"])
            if not self.asynchronous:
                self.manager.save(number, arrays, meta)
            else:
                self.wait()
                # Copies: training updates weights and optimizer slots in place.
                arrays = [(name, np.array(a, copy=True)) for name, a in arrays]
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(1, thread_name_prefix="distkeras-backup")
                self._pending = self._writer.submit(self.manager.save, number, arrays, meta)
        comm = getattr(self, "_communicator", None)
        if comm is not None and comm.size > 1 and not self.asynchronous:
            comm.barrier()  # every rank sees the new backup before going on

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            return
        if self.model._global_step % self.save_freq == 0:
            epoch, _ = self.model._fit_cursor
            self._save(epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.wait()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self.delete_checkpoint and self.is_coordinator:
            self.manager.delete_all()
        self._release_lock(remove_folder=self.delete_checkpoint)
