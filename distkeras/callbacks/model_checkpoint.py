"""`ModelCheckpoint`: saves the model or its weights during training (one file, by rank 0)."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

from distkeras.callbacks.callback import Callback
from distkeras.saving.state_schema import Float, Int


class ModelCheckpoint(Callback):
    """Saves the model (or its weights) every epoch or every N batches, as Keras 3 does.

    Args:
        filepath: Path, formatted with `epoch` (1-based), `batch` and the log
            values, e.g. 'ckpt-{epoch:02d}-{val_loss:.2f}.dkm'.
        monitor: Metric compared when `save_best_only`.
        verbose: 1 prints a line per save.
        save_best_only: Only save when the monitored value improves.
        save_weights_only: Save weights (`save_weights`) instead of the whole model.
        mode: 'auto', 'min' or 'max'.
        save_freq: 'epoch' or an integer number of batches.
        initial_value_threshold: The value the monitor must beat first.
    """

    batch_decisions = False  # its batch hooks never stop training or change the rate

    _state_schema = {"best": Float(), "_batches_seen": Int()}

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: Any = "epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"ModelCheckpoint mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}"
            )
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                "Unrecognized save_freq: expected 'epoch' or a positive integer. "
                f"Received: save_freq={save_freq!r}"
            )
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        if mode == "auto":
            mode = (
                "max"
                if any(k in monitor for k in ("acc", "auc", "precision", "recall", "f1"))
                else "min"
            )
        self.mode = mode
        self.best = initial_value_threshold
        if self.best is None:
            self.best = math.inf if mode == "min" else -math.inf
        self._batches_seen = 0
        self._epoch = 0

    def _improved(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_seen += 1
        if self.save_freq != "epoch" and self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _save(self, epoch: int, batch: int | None, logs: dict) -> None:
        if self.save_best_only:
            current = logs.get(self.monitor)
            comm = self.communicator
            if comm is not None and comm.size > 1:
                # Rank 0's value decides on every rank (batch logs are per rank), so
                # all ranks take part in the save or none does.
                current = comm.broadcast_object(None if current is None else float(current))
            if current is None:
                if self.is_coordinator:
                    warnings.warn(
                        f"Can save best model only with {self.monitor} available, skipping. "
                        f"Available logs: {sorted(logs)}",
                        stacklevel=2,
                    )
                return
            if not self._improved(float(current)):
                if self.verbose and self.is_coordinator:
                    print(
                        f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}"
                    )
                return
            if self.verbose and self.is_coordinator:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                    f"{float(current):.5f}, saving model to {self._path(epoch, batch, logs)}"
                )
            self.best = float(current)
        elif self.verbose and self.is_coordinator:
            print(f"\nEpoch {epoch + 1}: saving model to {self._path(epoch, batch, logs)}")
        # Every rank reaches this point together and saves: the sharded optimizer
        # state is made whole, rank 0 writes, and every rank goes on once the
        # file is in place (models/saving.py).
        from distkeras.models import saving  # noqa: PLC0415

        save = saving.save_weights if self.save_weights_only else saving.save_model
        save(
            self.model,
            self._path(epoch, batch, logs),
            make_dirs=True,
            communicator=self.communicator,
        )

    def _path(self, epoch: int, batch: int | None, logs: dict) -> str:
        try:
            if batch is None or "batch" not in self.filepath:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". '
                f"Reason: missing key {e} in logs {sorted(logs)}"
            ) from e
