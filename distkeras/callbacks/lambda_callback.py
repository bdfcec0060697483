"""`LambdaCallback`: a callback built from plain functions."""

from __future__ import annotations

from collections.abc import Callable

from distkeras.callbacks.callback import _HOOKS, Callback


class LambdaCallback(Callback):
    """Builds a simple callback from functions, as `keras.callbacks.LambdaCallback`.

    The functions are called like the hooks they replace: `on_epoch_begin` and
    `on_epoch_end` get `(epoch, logs)`; `on_train_begin` and `on_train_end` get
    `(logs)`; batch hooks get `(batch, logs=logs)`. They run on every rank of a
    distributed run; guard side effects with `callback.is_coordinator` if needed.

    Args:
        on_epoch_begin: Called at the beginning of every epoch.
        on_epoch_end: Called at the end of every epoch.
        on_train_begin: Called at the beginning of training.
        on_train_end: Called at the end of training.
        on_train_batch_begin: Called at the beginning of every training batch.
        on_train_batch_end: Called at the end of every training batch.
        **kwargs: Any other hook of `Callback`, e.g. `on_test_end=fn`.
    """

    def __init__(
        self,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
        on_train_batch_begin: Callable | None = None,
        on_train_batch_end: Callable | None = None,
        **kwargs: Callable,
    ):
        super().__init__()
        for name in kwargs:
            if name not in _HOOKS:
                raise ValueError(
                    f"LambdaCallback got an unknown hook {name!r}; expected one of "
                    f"{', '.join(_HOOKS)}. Received: {name}={kwargs[name]!r}"
                )
        hooks = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
            **kwargs,
        )
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)
