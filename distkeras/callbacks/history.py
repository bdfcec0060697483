"""`History`: records the epoch logs of `fit` (returned by `model.fit`)."""

from __future__ import annotations

from distkeras.callbacks.callback import Callback
from distkeras.saving.state_schema import AnyOf, Array, DictOf, Float, Int, ListOf, Optional


class History(Callback):
    """Records every epoch's logs into `history`.

    Added automatically to every `fit` call; the trainer returns it and sets it
    as `model.history`.

    Attributes:
        history: Dict mapping each metric name to its list of per-epoch values.
        epoch: List of the epoch indices recorded in this `fit` call.
    """

    batch_decisions = False  # its batch hooks never stop training or change the rate

    _state_schema = {
        "history": DictOf(ListOf(Optional(AnyOf(Array(), Float())))),
        "epoch": ListOf(Int()),
    }

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
