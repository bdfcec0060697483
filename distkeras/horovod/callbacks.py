"""Horovod's Keras callbacks (`hvd.callbacks`), on distkeras.

Under `hvd.init()` every rank runs its own `fit` (see `_ops`); these
callbacks are where ranks meet besides the optimizer. Every rank must use
them in the same order, as in Horovod.

- `BroadcastGlobalVariablesCallback(root_rank)`: copies the root's model
  and optimizer variables to every rank, once, before the first training
  step (Horovod does it after the first batch, because TensorFlow creates
  the optimizer's slots lazily; distkeras has built them by then, so the
  replicas are identical from the first step on).
- `MetricAverageCallback()`: replaces each value of the epoch logs by its
  average over the ranks, in place, before the callbacks after it (History
  included) see them. Put it before any callback that reads the logs.
- `LearningRateScheduleCallback` / `LearningRateWarmupCallback`: Horovod's
  schedule `lr = initial_lr * multiplier(epoch)`, per epoch (staircase) or
  per batch with a fractional epoch, with momentum correction; the warm-up
  ramps from `initial_lr / size` to `initial_lr` over `warmup_epochs`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from distkeras.callbacks.callback import Callback, print_msg
from distkeras.horovod import _ops


class BroadcastGlobalVariablesCallback(Callback):
    """Broadcasts the root's model and optimizer variables to every rank before training.

    Args:
        root_rank: The rank whose variables every rank takes.
        device: Accepted for compatibility (no effect).
    """

    def __init__(self, root_rank: int = 0, device: str = ""):
        super().__init__()
        if isinstance(root_rank, bool) or not isinstance(root_rank, (int, np.integer)):
            raise ValueError(f"root_rank must be an integer. Received: root_rank={root_rank!r}")
        self.root_rank = int(root_rank)
        self.broadcast_done = False

    def decides_per_batch(self) -> bool:
        return False

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.broadcast_done:
            return
        comm = _ops._comm()
        if not 0 <= self.root_rank < comm.size:
            raise ValueError(
                f"root_rank must be in [0, {comm.size}). Received: root_rank={self.root_rank}"
            )
        model = self.model
        _ops.broadcast_variables(list(model.weights), self.root_rank)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            _ops.broadcast_variables(list(getattr(optimizer, "variables", [])), self.root_rank)
        self.broadcast_done = True


class MetricAverageCallback(Callback):
    """Averages the epoch logs over the ranks, in place (Horovod's `MetricAverageCallback`).

    Args:
        device: Accepted for compatibility (no effect).
    """

    def __init__(self, device: str = ""):
        super().__init__()

    def decides_per_batch(self) -> bool:
        return False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        keys = sorted(k for k, v in logs.items() if np.ndim(v) == 0)
        everyone = _ops.allgather_object(keys)
        if any(k != keys for k in everyone):
            raise ValueError(
                "MetricAverageCallback: the ranks log different metrics. "
                f"Received: keys by rank={everyone}"
            )
        if not keys:
            return
        values = np.array([float(logs[k]) for k in keys], dtype=np.float64)
        _ops.reduce_flat(values, "mean")
        for k, v in zip(keys, values):
            logs[k] = float(v)


class LearningRateScheduleCallback(Callback):
    """Sets `lr = initial_lr * multiplier(epoch)` between `start_epoch` and `end_epoch`.

    Args:
        initial_lr: The base learning rate (required, as in Horovod).
        multiplier: A function of the (fractional) epoch, or a constant `c`
            meaning `c ** epoch`.
        start_epoch: First epoch of the schedule.
        end_epoch: Epoch at which the schedule stops (None: never).
        staircase: Adjust once per epoch (at its first batch); else every batch
            with `epoch + batch / steps_per_epoch`.
        momentum_correction: For the batch after a change, scale the optimizer's
            `momentum` by `new_lr / old_lr` (restored after the batch).
        steps_per_epoch: Batches per epoch (default: `params["steps"]`).
    """

    def __init__(
        self,
        initial_lr: float,
        multiplier: float | Callable[[float], float],
        start_epoch: int = 0,
        end_epoch: int | None = None,
        staircase: bool = True,
        momentum_correction: bool = True,
        steps_per_epoch: int | None = None,
    ):
        super().__init__()
        if initial_lr is None:
            raise ValueError("Parameter `initial_lr` is required. Received: initial_lr=None")
        if callable(multiplier):
            self.multiplier = multiplier
        else:
            self.multiplier = lambda epoch, m=float(multiplier): m**epoch
        self.initial_lr = float(initial_lr)
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.staircase = staircase
        self.momentum_correction = momentum_correction
        self.steps_per_epoch = steps_per_epoch
        self.current_epoch = 0
        self._restore_momentum: float | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.staircase and not self.steps_per_epoch:
            steps = (self.params or {}).get("steps")
            if not steps:
                raise ValueError(
                    "Could not autodetect the number of steps per epoch; pass "
                    f"steps_per_epoch to {type(self).__name__}(). Received: steps_per_epoch=None"
                )
            self.steps_per_epoch = int(steps)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.current_epoch = epoch

    def _in_scope(self) -> bool:
        e = self.current_epoch
        return e >= self.start_epoch and (self.end_epoch is None or e < self.end_epoch)

    def _adjust(self, epoch: float) -> None:
        opt = self.model.optimizer
        old = float(opt.learning_rate)
        new = self.initial_lr * float(self.multiplier(epoch))
        opt.learning_rate = new
        if self.momentum_correction and getattr(opt, "momentum", None) and old > 0:
            self._restore_momentum = float(opt.momentum)
            opt.momentum = self._restore_momentum * new / old

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if not self._in_scope():
            return
        if self.staircase and batch == 0:
            self._adjust(self.current_epoch)
        elif not self.staircase:
            self._adjust(self.current_epoch + float(batch) / self.steps_per_epoch)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._restore_momentum is not None:
            self.model.optimizer.momentum = self._restore_momentum
            self._restore_momentum = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["lr"] = float(self.model.optimizer.learning_rate)


class LearningRateWarmupCallback(LearningRateScheduleCallback):
    """Ramps the learning rate from `initial_lr / size` to `initial_lr` over `warmup_epochs`.

    Batch `b` of epoch `e` trains at `initial_lr / size * (t * (size - 1) / warmup_epochs + 1)`
    with `t = e + (b + 1) / steps_per_epoch`, so the last batch of the warm-up
    runs at `initial_lr` (Goyal et al. 2017, as Horovod).

    Args:
        initial_lr: The learning rate reached at the end of the warm-up (the
            scaled one, e.g. `base_lr * hvd.size()`).
        warmup_epochs: Epochs the ramp lasts.
        momentum_correction: As `LearningRateScheduleCallback`.
        steps_per_epoch: Batches per epoch (default: `params["steps"]`).
        verbose: 1: rank 0 prints when the warm-up ends.
    """

    def __init__(
        self,
        initial_lr: float,
        warmup_epochs: int = 5,
        momentum_correction: bool = True,
        steps_per_epoch: int | None = None,
        verbose: int = 0,
    ):
        def multiplier(epoch: float) -> float:
            n = _ops.size()
            epoch += 1.0 / self.steps_per_epoch
            return 1.0 / n * (epoch * (n - 1) / warmup_epochs + 1)

        super().__init__(
            initial_lr,
            multiplier,
            start_epoch=0,
            end_epoch=warmup_epochs,
            staircase=False,
            momentum_correction=momentum_correction,
            steps_per_epoch=steps_per_epoch,
        )
        self.verbose = verbose

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        if epoch == self.end_epoch - 1 and self.verbose > 0 and _ops.rank() == 0:
            lr = float(self.model.optimizer.learning_rate)
            print_msg(f"\nEpoch {epoch + 1}: finished gradual learning rate warmup to {lr:g}.")
