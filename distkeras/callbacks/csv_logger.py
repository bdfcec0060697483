"""`CSVLogger`: streams epoch results to a CSV file (coordinator only)."""

from __future__ import annotations

import collections.abc
import csv
import os
from typing import Any

import numpy as np

from distkeras.callbacks.callback import Callback
from distkeras.saving.file_format import FileFormatError
from distkeras.saving.state_schema import Int


class CSVLogger(Callback):
    """Streams epoch results to a CSV file, as `keras.callbacks.CSVLogger`.

    The first column is `epoch`, then the log keys in sorted order (fixed at the
    first epoch; keys missing later are written as `NA`). 1-D iterables are
    written as `"[a, b, ...]"`. In a distributed run only the coordinator writes.

    Args:
        filename: Path of the CSV file, e.g. `'run/log.csv'`.
        separator: String used to separate fields.
        append: True: append if the file exists (to continue training);
            False: overwrite it.
    """

    batch_decisions = False  # its batch hooks never stop training or change the rate

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys: list[str] | None = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if not self.is_coordinator:
            return
        if self.append or getattr(self, "_resuming", False):  # resumed runs append
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        self._close()
        self.csv_file = open(self.filename, mode, newline="")  # noqa: SIM115
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        if not self.is_coordinator or self.csv_file is None:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            # Reserve columns for validation metrics the model will produce later.
            for name in getattr(self.model, "metrics_names", None) or []:
                if name.startswith("val_") and name not in self.keys:
                    self.keys.append(name)
        if self.writer is None:
            dialect = type("_Dialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=["epoch"] + self.keys, dialect=dialect
            )
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()
        self.writer = None

    def get_state(self) -> dict:
        """The file's length so far (a resumed run cuts rows written after the backup)."""
        if not self.is_coordinator or self.csv_file is None or self.csv_file.closed:
            return {}
        self.csv_file.flush()
        return {"size": os.path.getsize(self.filename)}

    _state_schema = {"size": Int()}

    def set_state(self, state: dict) -> None:
        size = self.validate_state(state).get("size")
        if size is None or not self.is_coordinator or self.csv_file is None:
            return
        self.csv_file.flush()
        if size > os.path.getsize(self.filename):
            raise FileFormatError(
                f"field CSVLogger.size: {size} is beyond the end of {self.filename!r}"
            )
        os.truncate(self.filename, int(size))
        self.csv_file.seek(0, os.SEEK_END)
        self.append_header = int(size) == 0

    def _close(self) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()


def _handle_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value
