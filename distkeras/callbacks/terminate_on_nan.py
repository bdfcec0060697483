"""`TerminateOnNaN`: stops training when the loss becomes NaN or infinite."""

from __future__ import annotations

import math

from distkeras.callbacks.callback import Callback, print_msg


class TerminateOnNaN(Callback):
    """Terminates training when a NaN or infinite loss is encountered.

    By default it sets `model.stop_training = True`, so training ends gracefully
    (every callback's `on_train_end` still runs).

    Args:
        raise_error: If True, raise a `RuntimeError` at once instead.
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isnan(loss) or math.isinf(loss):
            if self.raise_error:
                raise RuntimeError(
                    f"NaN or Inf loss encountered at batch {batch}. "
                    f"Loss value: {loss}. Terminating training immediately."
                )
            if self.is_coordinator:
                print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
