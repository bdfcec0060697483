"""Learning-rate callbacks: `LearningRateScheduler` and `ReduceLROnPlateau`.

Both set `model.optimizer.learning_rate` on every rank; the trainer then
broadcasts rank 0's value so replicas cannot drift.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from distkeras.backend import to_numpy
from distkeras.callbacks.callback import Callback, infer_mode, print_msg
from distkeras.saving.state_schema import Float, Int


def get_learning_rate(optimizer: Any) -> float:
    """Returns the optimizer's current learning rate as a Python float."""
    if not hasattr(optimizer, "learning_rate"):
        raise ValueError(
            f'Optimizer must have a "learning_rate" attribute. Received: optimizer={optimizer!r}'
        )
    lr = optimizer.learning_rate
    try:
        return float(lr)
    except TypeError:
        return float(to_numpy(lr))


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch from `schedule`.

    Args:
        schedule: Function `(epoch, lr) -> new_lr` taking the 0-based epoch index
            and the current learning rate (a one-argument `schedule(epoch)` is
            accepted too) and returning a float.
        verbose: 0 (quiet) or 1 (prints each update).

    The learning rate in effect is added to the epoch logs as `learning_rate`.
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(f"schedule must be callable. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = get_learning_rate(optimizer)
        try:
            new_lr = self.schedule(epoch, lr)
        except TypeError:  # older one-argument schedules
            new_lr = self.schedule(epoch)
        if isinstance(new_lr, np.ndarray) and new_lr.ndim == 0:
            new_lr = new_lr[()]
        if not isinstance(new_lr, (float, np.floating)):
            raise ValueError(
                "The output of the `schedule` function should be a float. "
                f"Received: learning_rate={new_lr!r}"
            )
        optimizer.learning_rate = float(new_lr)
        if self.verbose > 0 and self.is_coordinator:
            print_msg(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{float(new_lr)}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(self.model.optimizer)


class ReduceLROnPlateau(Callback):
    """Reduces the learning rate when a metric has stopped improving.

    Args:
        monitor: Quantity to be monitored.
        factor: Factor by which the learning rate is reduced
            (`new_lr = lr * factor`); must be below 1.
        patience: Number of epochs with no improvement after which the rate is
            reduced.
        verbose: 0 (quiet) or 1 (prints each update).
        mode: One of `"auto"`, `"min"`, `"max"` (see `EarlyStopping`).
        min_delta: Threshold for measuring a new optimum.
        cooldown: Number of epochs to wait after a reduction before resuming
            normal operation.
        min_lr: Lower bound on the learning rate.

    The learning rate in effect during the epoch is added to the epoch logs as
    `learning_rate`.
    """

    _state_schema = {"wait": Int(), "cooldown_counter": Int(), "best": Float()}

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received: factor={factor}"
            )
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"Learning rate reduction mode {mode} is unknown, fallback to auto mode.",
                stacklevel=2,
            )
            mode = "auto"
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.monitor_op = None
        self._reset()

    def _reset(self) -> None:
        """Resets the wait and cooldown counters and the best value."""
        if self.mode == "auto" and self.model is None:
            self.monitor_op = None  # decided once the model is known
            self.best = 0.0
        elif (self.mode if self.mode != "auto" else infer_mode(self.monitor, self.model)) == "max":
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -float("inf")
        else:
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = float("inf")
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        """Whether the callback is in its post-reduction cooldown."""
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._reset()
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = get_learning_rate(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            if self.is_coordinator:
                warnings.warn(
                    "Learning rate reduction is conditioned on metric "
                    f"`{self.monitor}` which is not available. Available metrics are: "
                    f"{','.join(logs.keys())}.",
                    stacklevel=2,
                )
            return
        current = float(current)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = get_learning_rate(optimizer)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0 and self.is_coordinator:
                        print_msg(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                            f"to {new_lr}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
