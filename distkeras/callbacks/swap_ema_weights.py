"""`SwapEMAWeights`: evaluate and predict with the optimizer's moving averages."""

from __future__ import annotations

from typing import Any

from distkeras.callbacks.callback import Callback


class SwapEMAWeights(Callback):
    """Swaps the model's weights with their EMA, as `keras.callbacks.SwapEMAWeights`.

    The optimizer must have been built with `use_ema=True`. Evaluation and
    prediction (including the validation run inside `fit`) then use the
    moving averages, and training resumes from the raw weights. With
    `swap_on_epoch=True` the swap also happens at the end of every epoch (and
    back at the start of the next), so that callbacks such as
    `ModelCheckpoint` see the averages. Every rank swaps: it is state, not a
    side effect.

    Args:
        swap_on_epoch: Also swap at epoch boundaries.
    """

    def __init__(self, swap_on_epoch: bool = False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _pairs(self) -> list[tuple[Any, Any]]:
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if not getattr(optimizer, "use_ema", False):
            raise ValueError(
                "SwapEMAWeights must be used when `use_ema=True` is set on the optimizer. "
                f"Received: use_ema={getattr(optimizer, 'use_ema', None)}"
            )
        return list(zip(optimizer._trainable_variables, optimizer._ema_slots))

    def _swap_variables(self) -> None:
        for var, average in self._pairs():
            raw = var.numpy().copy()
            var.assign(average.data)
            average.assign(raw)

    def _finalize_ema_values(self) -> None:
        # The model holds the averages; make the optimizer's copy agree, so that a
        # later `finalize_variable_values` keeps them.
        for var, average in self._pairs():
            average.assign(var.data)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True
            if self.params and epoch == self.params.get("epochs", 0) - 1:
                self._finalize_ema_values()

    def on_test_begin(self, logs: dict | None = None) -> None:
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True

    def on_test_end(self, logs: dict | None = None) -> None:
        if self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = False

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self.on_test_begin(logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self.on_test_end(logs)
