"""`EarlyStopping`: stops training when a monitored quantity stops improving."""

from __future__ import annotations

import warnings
from typing import Any

from distkeras.callbacks.callback import Callback, infer_mode, print_msg
from distkeras.saving.file_format import FileFormatError
from distkeras.saving.state_schema import Array, Float, Int, ListOf, Optional


class EarlyStopping(Callback):
    """Stops training when a monitored metric has stopped improving.

    Every rank runs the bookkeeping; the trainer broadcasts rank 0's
    `model.stop_training` after the hooks. Only the coordinator prints or warns.

    Args:
        monitor: Quantity to be monitored. Defaults to `"val_loss"`.
        min_delta: Minimum change that counts as an improvement (absolute value).
        patience: Number of epochs with no improvement after which training stops.
        verbose: 0 (silent) or 1 (prints a message when the callback acts).
        mode: One of `"auto"`, `"min"`, `"max"`; `"auto"` infers the direction
            from the monitored name (`loss` is minimized, accuracy-like metrics
            maximized).
        baseline: Value the monitored quantity must improve on; while it does
            not, the wait counter keeps running.
        restore_best_weights: Whether to restore the weights of the best epoch
            when training ends (whether or not it stopped early).
        start_from_epoch: Number of warm-up epochs before monitoring starts.

    Attributes:
        stopped_epoch: Index of the epoch at which training was stopped (0 if not).
        best: Best monitored value seen. `best_epoch`: its epoch index.
        wait: Epochs since the last improvement.
    """

    _state_schema = {
        "wait": Int(),
        "stopped_epoch": Int(),
        "best": Optional(Float()),
        "best_epoch": Int(),
        "best_weights": Optional(ListOf(Array())),
    }

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"EarlyStopping mode {mode} is unknown, fallback to auto mode.", stacklevel=2
            )
            mode = "auto"
        self.mode = mode
        self.monitor_op = None
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self.best = None

    def validate_state(self, state: Any) -> dict:
        """Checks restored state; `best_weights` must match the model's weights."""
        out = super().validate_state(state)
        saved = out.get("best_weights")
        if saved is not None and self.model is not None:
            expected = [(tuple(w.shape), w.dtype.name) for w in self.model.get_weights()]
            if [(tuple(a.shape), a.dtype.name) for a in saved] != expected:
                raise FileFormatError(
                    "field EarlyStopping.best_weights: the shapes and dtypes do not match "
                    "the model's weights"
                )
        return out

    def _set_monitor_op(self) -> None:
        direction = self.mode if self.mode != "auto" else infer_mode(self.monitor, self.model)
        self._sign = 1.0 if direction == "max" else -1.0
        self.monitor_op = (lambda a, b: a > b) if direction == "max" else (lambda a, b: a < b)
        if self.best is None:  # a restored (resumed) best survives
            self.best = -float("inf") if direction == "max" else float("inf")

    def _is_improvement(self, value: float, reference: float) -> bool:
        # Improvement means beating `reference` by more than min_delta.
        return bool(self.monitor_op(value - self._sign * self.min_delta, reference))

    def on_train_begin(self, logs=None):
        # Allows instances to be reused across `fit` calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self.best = None
        if self.monitor_op is not None:
            self._set_monitor_op()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()  # delayed until the model's metrics exist
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first monitored epoch is the best so far.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Only restart the wait if we beat both the baseline and the best.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0 and self.is_coordinator:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0 and self.is_coordinator:
                print_msg(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: dict | None) -> float | None:
        """Returns the monitored value from `logs` (warning if it is missing)."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            if self.is_coordinator:
                warnings.warn(
                    f"Early stopping conditioned on metric `{self.monitor}` which is not "
                    f"available. Available metrics are: {','.join(logs.keys())}",
                    stacklevel=2,
                )
            return None
        return float(value)
