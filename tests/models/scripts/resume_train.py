"""Training run for the exact-resume tests: BackupAndRestore plus stateful callbacks.

usage: resume_train.py OUT_PREFIX BACKUP_DIR [dropout|plain]
env: KILL_AT=N (SIGKILL itself after global step N), SAVE_FREQ, DET=1 (deterministic mode),
     SAME_SEED=1 (the same seed on every rank)
"""

import json
import os
import signal
import sys

import numpy as np

import distkeras
from distkeras import callbacks, layers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

out, backup = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "dropout"
comm = distkeras.distributed.initialize(deterministic=os.environ.get("DET") == "1")
# SAME_SEED=1: one seed on every rank (the layers' streams then differ only by the rank
# fit folds into them).
set_random_seed(7 if os.environ.get("SAME_SEED") == "1" else 7 + comm.rank)
rng = np.random.default_rng(0)
x = rng.normal(size=(100, 5)).astype("float32")
y = rng.integers(0, 3, 100)
stack = [layers.Dense(16, activation="relu", input_shape=(5,))]
if mode == "dropout":
    stack.append(layers.Dropout(0.3))
stack.append(layers.Dense(3, activation="softmax"))
model = Sequential(stack)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
kill_at = int(os.environ.get("KILL_AT", "0"))


class Killer(callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if kill_at and self.model._global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


cbs = [
    Killer(),
    callbacks.EarlyStopping(monitor="loss", patience=3, min_delta=1.0),
    callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1.0),
    callbacks.CSVLogger(out + ".csv"),
    callbacks.BackupAndRestore(backup, save_freq=int(os.environ.get("SAVE_FREQ", "2"))),
]
hist = model.fit(x, y, batch_size=16, epochs=6, verbose=0, callbacks=cbs, validation_split=0.1)
np.savez(
    f"{out}.rank{comm.rank}.npz",
    *model.get_weights(),
    history=json.dumps(hist.history),
    epochs=json.dumps(hist.epoch),
)
