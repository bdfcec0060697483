"""`LearningRateWarmup`: a per-batch linear learning-rate ramp (Goyal et al. 2017).

Large global batches are trained with a learning rate scaled by the number of
workers (`distkeras.distributed.scale_learning_rate`); starting at that rate
right away often diverges, so it is reached gradually over the first epochs,
as Horovod's `LearningRateWarmupCallback` does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras.callbacks.callback import Callback, print_msg
from distkeras.callbacks.lr import get_learning_rate


def _check_number(name: str, value: Any, allow_none: bool = True, positive: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (float(value) > 0 if positive else value >= 0)
    if not ok:
        need = "a positive number" if positive else "a non-negative number"
        raise ValueError(f"`{name}` must be {need}. Received: {name}={value!r}")


class LearningRateWarmup(Callback):
    """Ramps the learning rate linearly, batch by batch, over the first epochs.

    During warmup the rate used by batch `b` of epoch `e` is

        initial_lr + (target_lr - initial_lr) * (e * steps_per_epoch + b + 1)
                                                / (warmup_epochs * steps_per_epoch)

    so, as in Horovod, the last batch of the last warmup epoch trains at exactly
    `target_lr` (set exactly, not computed). After warmup the callback leaves
    the rate alone, so other schedules may take over. Every rank computes the
    same rate; the trainer broadcasts rank 0's value anyway.

    Args:
        warmup_epochs: Number of epochs (may be fractional) the ramp lasts.
        initial_lr: Rate the ramp starts from. Defaults to `target_lr / size`,
            the size of the communicator the trainer hands in (1 without one):
            the single-worker rate when `target_lr` was scaled linearly.
        target_lr: Rate reached at the end of warmup. Defaults to the
            optimizer's learning rate when training begins.
        steps_per_epoch: Batches per epoch; defaults to `params["steps"]`.
        verbose: 0 (quiet) or 1 (the coordinator prints when warmup ends).

    The learning rate in effect is added to the epoch logs as `learning_rate`.
    """

    def __init__(
        self,
        warmup_epochs: float = 5,
        initial_lr: float | None = None,
        target_lr: float | None = None,
        steps_per_epoch: int | None = None,
        verbose: int = 0,
    ):
        super().__init__()
        _check_number("warmup_epochs", warmup_epochs, allow_none=False, positive=True)
        _check_number("initial_lr", initial_lr)
        _check_number("target_lr", target_lr)
        if steps_per_epoch is not None and (
            isinstance(steps_per_epoch, bool)
            or not isinstance(steps_per_epoch, (int, np.integer))
            or steps_per_epoch < 1
        ):
            raise ValueError(
                "`steps_per_epoch` must be a positive integer or None. "
                f"Received: steps_per_epoch={steps_per_epoch!r}"
            )
        self.warmup_epochs = warmup_epochs
        self.initial_lr = initial_lr
        self.target_lr = target_lr
        self.steps_per_epoch = steps_per_epoch
        self.verbose = verbose
        self._target: float | None = None
        self._initial: float | None = None
        self._steps: int | None = None
        self._epoch = 0
        self._done = False
        self._optimizer_id: int | None = None

    @property
    def world_size(self) -> int:
        """The number of workers: the communicator's size, 1 without one."""
        comm = self.communicator
        return int(comm.size) if comm is not None else 1

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if self._optimizer_id != id(optimizer):
            # Read the default target once per optimizer, so a second `fit` that
            # resumes mid-warmup does not take a ramped rate for the target.
            self._optimizer_id = id(optimizer)
            self._target = (
                float(self.target_lr)
                if self.target_lr is not None
                else get_learning_rate(optimizer)
            )
            self._done = False
        self._initial = (
            float(self.initial_lr)
            if self.initial_lr is not None
            else self._target / self.world_size
        )
        steps = self.steps_per_epoch
        if steps is None:
            steps = (self.params or {}).get("steps")
        if steps is None:
            raise ValueError(
                "LearningRateWarmup needs the number of batches per epoch: pass "
                "`steps_per_epoch` to it (or to `fit`) when the data has no known length. "
                "Received: steps_per_epoch=None"
            )
        self._steps = int(steps)

    def _progress(self, epoch: int, batch: int) -> float:
        return (epoch * self._steps + batch + 1) / (self.warmup_epochs * self._steps)

    def learning_rate_at(self, epoch: int, batch: int) -> float:
        """The warmup rate for batch `batch` of epoch `epoch` (target_lr once warmup ended).

        Only valid once training began (the rates and steps are resolved then).
        """
        progress = self._progress(epoch, batch)
        if progress >= 1:
            return self._target
        return self._initial + (self._target - self._initial) * progress

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self._done:
            return
        lr = self.learning_rate_at(self._epoch, batch)
        self.model.optimizer.learning_rate = lr
        if self._progress(self._epoch, batch) >= 1:
            self._done = True
            if self.verbose > 0 and self.is_coordinator:
                print_msg(
                    f"\nEpoch {self._epoch + 1}: finished gradual learning rate warmup to {lr:g}."
                )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(self.model.optimizer)

    def get_config(self) -> dict:
        """The constructor arguments."""
        return {
            "warmup_epochs": self.warmup_epochs,
            "initial_lr": self.initial_lr,
            "target_lr": self.target_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "verbose": self.verbose,
        }
