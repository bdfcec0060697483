"""Trains a small model with `BackupAndRestore(BACKUP_DIR)`: `backup_job.py BACKUP_DIR OUT [hold]`.

With `hold`, it writes `OUT.ready` after its first step and then waits
forever inside `fit` (holding the backup folder); otherwise it trains and
writes `OUT.done`. A refusal to start is written to `OUT.refused` (the message).
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

from distkeras import callbacks, layers
from distkeras.models import Sequential
from distkeras.saving.folder_lock import FolderLockedError

backup, out = sys.argv[1], Path(sys.argv[2])
hold = "hold" in sys.argv[3:]
rank = os.environ.get("OMPI_COMM_WORLD_RANK", "0")


class Hold(callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if hold:
            Path(f"{out}.ready").write_text(str(os.getpid()))
            while True:
                time.sleep(1)


rng = np.random.default_rng(0)
x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
model = Sequential([layers.Input((3,)), layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
try:
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[Hold(), callbacks.BackupAndRestore(backup, save_freq=2)])  # fmt: skip
except FolderLockedError as e:
    Path(f"{out}.refused.{rank}").write_text(str(e))
    sys.exit(3)
Path(f"{out}.done.{rank}").write_text("ok")
