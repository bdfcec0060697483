"""Base `Callback` and `CallbackList`, with the coordinator-only side-effect rule.

All ranks of a data-parallel run execute every hook, so decisions such as
`EarlyStopping`'s wait counter stay identical everywhere; only the coordinator
(rank 0, or the single process when no communicator was set) prints, draws
progress bars or writes files. The trainer hands the communicator in with
`set_communicator` and broadcasts `model.stop_training` and the learning rate
from rank 0 after the hooks run.
"""

from __future__ import annotations

import sys
from typing import Any

from distkeras.saving.state_schema import Spec, check_fields

_HOOKS = (
    "on_batch_begin",
    "on_batch_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)


def print_msg(message: str, line_break: bool = True) -> None:
    """Writes `message` to stdout and flushes (the callbacks' only output path)."""
    sys.stdout.write(message + ("\n" if line_break else ""))
    sys.stdout.flush()


class Callback:
    """Base class for objects that hook into `fit`, `evaluate` and `predict`.

    Subclass it and override the `on_*` methods of interest. `logs` dicts hold
    the metric values so far (validation ones prefixed with `val_`).

    Attributes:
        model: The model being trained (set by `set_model`).
        params: Dict of training parameters (`epochs`, `steps`, `verbose`, ...).
        communicator: The communicator set by the trainer, or None.
    """

    # Whether the batch hooks may set `model.stop_training` or the learning rate.
    # None: yes if the subclass overrides a train-batch hook. Built-ins whose batch
    # hooks never decide say False, and when no callback decides per batch, `fit`
    # broadcasts the coordinator's decisions at epoch ends only (not every step).
    batch_decisions: bool | None = None

    def __init__(self):
        self.params: dict | None = None
        self._model: Any = None
        self._communicator: Any = None

    def decides_per_batch(self) -> bool:
        """True when this callback may change training decisions inside an epoch."""
        if self.batch_decisions is not None:
            return self.batch_decisions
        cls = type(self)
        hooks = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
        return any(
            hook in vars(self) or getattr(cls, hook) is not getattr(Callback, hook)
            for hook in hooks
        )

    def set_params(self, params: dict) -> None:
        """Stores the training parameters."""
        self.params = params

    def set_model(self, model: Any) -> None:
        """Stores the model the callback acts on."""
        self._model = model

    def set_communicator(self, communicator: Any) -> None:
        """Stores the communicator (with `.rank` and `.size`) of a distributed run."""
        self._communicator = communicator

    # State saved by BackupAndRestore: each stateful callback declares the fields it
    # restores and their types; a backup can set nothing else.
    _state_schema: dict[str, Spec] = {}

    def get_state(self) -> dict:
        """This callback's progress as plain data and NumPy arrays (for exact resume)."""
        return {name: getattr(self, name) for name in self._state_schema if hasattr(self, name)}

    def validate_state(self, state: Any) -> dict:
        """Checks restored state against `_state_schema`; returns the values to set.

        Raises:
            FileFormatError: for a field the callback does not declare, or one of
                the wrong type, naming the field.
        """
        return check_fields(self._state_schema, state, type(self).__name__)

    def set_state(self, state: dict) -> None:
        """Restores `get_state` output (called after `on_train_begin` on resume).

        Only the declared fields are set, each checked first.
        """
        for name, value in self.validate_state(state).items():
            setattr(self, name, value)

    @property
    def model(self) -> Any:
        """The model being trained."""
        return getattr(self, "_model", None)

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    @property
    def communicator(self) -> Any:
        """The communicator, or None in a single-process run."""
        return getattr(self, "_communicator", None)

    @property
    def is_coordinator(self) -> bool:
        """True on the rank that performs side effects (rank 0, or no communicator)."""
        comm = self.communicator
        return comm is None or comm.rank == 0

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Backwards-compatible alias called by `on_train_batch_begin`."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Backwards-compatible alias called by `on_train_batch_end`."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the start of an epoch (training only)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the end of an epoch with the epoch's (and validation) metrics."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called at the start of a training batch."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called at the end of a training batch with the running metrics."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called at the start of an evaluation or validation batch."""

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called at the end of an evaluation or validation batch."""

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called at the start of a prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called at the end of a prediction batch."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called at the start of training."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called at the end of training with the last epoch's logs."""

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Called at the start of evaluation or validation."""

    def on_test_end(self, logs: dict | None = None) -> None:
        """Called at the end of evaluation or validation."""

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Called at the start of prediction."""

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Called at the end of prediction."""


def _pythonify_logs(logs: dict) -> dict:
    """Flattens nested dicts and turns array scalars into Python floats."""
    out: dict = {}
    for key, value in sorted(logs.items()):
        if isinstance(value, dict):
            out.update(_pythonify_logs(value))
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        out[key] = value
    return out


class CallbackList(Callback):
    """Calls a list of callbacks together through one set of hooks.

    Args:
        callbacks: List of `Callback` instances (nested lists are flattened).
        add_history: Whether to append a `History` callback if none is present.
        add_progbar: Whether to append a `ProgbarLogger` if none is present.
        model: The model the callbacks act on.
        **params: Training parameters handed to every callback via `set_params`.
    """

    def __init__(
        self,
        callbacks: list[Callback] | None = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ):
        super().__init__()
        self.callbacks: list[Callback] = _flatten(callbacks) if callbacks else []
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    "CallbackList expects `keras.callbacks.Callback` instances. "
                    f"Received: callback={cb!r}"
                )
        self._add_default_callbacks(add_history, add_progbar)
        self.set_model(model)
        self.set_params(params)

    def _add_default_callbacks(self, add_history: bool, add_progbar: bool) -> None:
        from distkeras.callbacks.history import History  # noqa: PLC0415
        from distkeras.callbacks.progbar_logger import ProgbarLogger  # noqa: PLC0415

        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)

    def append(self, callback: Callback) -> None:
        """Adds a callback at the end of the list."""
        self.callbacks.append(callback)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_params(self, params: dict) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model: Any) -> None:
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_communicator(self, communicator: Any) -> None:
        super().set_communicator(communicator)
        for cb in self.callbacks:
            cb.set_communicator(communicator)

    def _call(self, hook: str, *args: Any, logs: dict | None = None) -> None:
        # Batch hooks get `logs` by keyword, the others positionally, as in Keras
        # (LambdaCallback functions rely on it).
        logs = logs if logs is not None else {}
        by_keyword = "batch" in hook
        for cb in self.callbacks:
            if by_keyword:
                getattr(cb, hook)(*args, logs=logs)
            else:
                getattr(cb, hook)(*args, logs)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        # A sorted copy, as Keras 3's CallbackList: `history.history` lists keys sorted.
        self._call("on_epoch_end", epoch, logs=_pythonify_logs(logs or {}))

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)


def _flatten(items: Any) -> list:
    if isinstance(items, (list, tuple)):
        return [x for item in items for x in _flatten(item)]
    return [items]


_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "true_")


def infer_mode(monitor: str, model: Any = None) -> str:
    """Returns 'min' or 'max' for a monitored quantity in `mode='auto'`.

    `loss` (and `val_loss`) are minimized; a metric of the model carrying a
    `_direction` attribute (`"up"` or `"down"`, as Keras metrics do) decides
    for itself; otherwise names containing accuracy-like words (`acc`, `auc`,
    `precision`, `recall`, `f1`, `iou`, ...) are maximized and the rest minimized.
    """
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    for metric in _iter_metrics(getattr(model, "metrics", None) if model is not None else None):
        if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
            return "max" if metric._direction == "up" else "min"
    return "max" if any(word in name for word in _MAXIMIZED) else "min"


def _iter_metrics(metrics: Any):
    try:
        items = list(metrics or ())
    except TypeError:
        return
    for m in items:
        yield m
        inner = getattr(m, "metrics", None)
        if inner is not None and inner is not metrics and isinstance(inner, (list, tuple)):
            yield from _iter_metrics(inner)
