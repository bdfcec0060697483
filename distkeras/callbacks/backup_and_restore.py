"""`BackupAndRestore`: checkpoints that resume a killed run exactly, mid-epoch included."""

from __future__ import annotations

import os
from typing import Any

from distkeras.callbacks.callback import Callback
from distkeras.saving.checkpoint_manager import CheckpointManager


class BackupAndRestore(Callback):
    """Backs up the whole training state and restores it when `fit` starts again.

    The state is everything an uninterrupted run would carry on with: weights,
    optimizer slots and iteration count, the epoch and the step within it, the
    sampler's seed, the running epoch's metric accumulators, every random
    stream (global, per layer, per rank) and the state of the other callbacks.
    Rerunning the same script after a crash gives bitwise the same final
    weights and History as a run that was never interrupted.

    Args:
        backup_dir: Folder of the checkpoints (shared by all ranks).
        save_freq: 'epoch' or an integer number of batches between backups.
        delete_checkpoint: Remove the backups when training finishes.
        keep: How many of the newest backups to keep.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: Any = "epoch",
        delete_checkpoint: bool = True,
        keep: int = 2,
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

    # Called by the trainer before on_train_begin.
    def load(self) -> tuple[str, dict, dict] | None:
        """The newest readable backup as (path, header, arrays), or None."""
        return self.manager.restore()

    def _save(self, epoch: int, next_step: int) -> None:
        arrays, meta = self.model._capture_training_state(epoch, next_step)
        if self.is_coordinator:
            self.manager.save(int(meta["global_step"]), arrays, meta)
        comm = getattr(self, "_communicator", None)
        if comm is not None and comm.size > 1:
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
        if self.delete_checkpoint and self.is_coordinator:
            self.manager.delete_all()
