"""Trains a small model the same way in 1 process or under mpirun; saves what each rank saw.

usage: dp_train.py OUT_PREFIX [default|det|early|batchstop|slots|tensorboard]
"""

import json
import sys

import numpy as np

import distkeras
from distkeras import callbacks, layers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

out, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "default")
comm = distkeras.distributed.initialize(deterministic=mode == "det")
# Different seeds per rank: the initial broadcast from rank 0 must make them agree.
set_random_seed(3 + 1000 * comm.rank)
rng = np.random.default_rng(0)
x = rng.normal(size=(103, 6)).astype("float32")
y = rng.integers(0, 3, 103)
model = Sequential(
    [layers.Dense(16, activation="tanh", input_shape=(6,)), layers.Dense(3, activation="softmax")]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
cbs = [callbacks.CSVLogger(out + ".csv")]
if mode == "early":
    cbs.append(callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0))


class RankZeroDecides(callbacks.Callback):
    """Mid-epoch decisions taken on rank 0 only: every rank must follow them."""

    def on_train_batch_end(self, batch, logs=None):
        if comm.rank != 0:
            return
        if self.model._global_step == 3:
            self.model.optimizer.learning_rate = 0.5
        if self.model._global_step == 7:
            self.model.stop_training = True


class ReadsSlotsMidEpoch(callbacks.Callback):
    """With sharded updates the slots are whole only after sync_shards (every rank)."""

    def on_train_batch_end(self, batch, logs=None):
        if self.model._global_step != 2:
            return
        try:
            self.model.optimizer.variables  # noqa: B018 - the read is what is tested
        except RuntimeError as e:
            assert "sync_shards" in str(e), e
            print(f"rank {comm.rank}: sharded slots refused", flush=True)
        self.model.optimizer.sync_shards()
        assert self.model.optimizer.variables  # readable once whole again


if mode == "batchstop":
    cbs.append(RankZeroDecides())
if mode == "slots":
    # Full saves mid-epoch (optimizer state included) on the coordinator: the
    # callback makes the sharded slots whole on every rank first.
    cbs += [ReadsSlotsMidEpoch(), callbacks.ModelCheckpoint(out + ".ckpt.dkm", save_freq=5)]
if mode == "tensorboard":  # every rank runs it; only the coordinator may write
    cbs.append(callbacks.TensorBoard(out + ".tb", histogram_freq=1, update_freq=2))
broadcasts = {"n": 0}
real_broadcast = comm.broadcast


def counting_broadcast(*args, **kwargs):
    broadcasts["n"] += 1
    return real_broadcast(*args, **kwargs)


comm.broadcast = counting_broadcast
hist = model.fit(x, y, batch_size=20, epochs=4, verbose=2, callbacks=cbs)
comm.broadcast = real_broadcast
if mode == "slots":  # outside fit the step is the all-reduce one: slots stay whole
    model.train_on_batch(x[:20], y[:20])
    assert model.optimizer.variables
ev = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
pred = model.predict(x, batch_size=16, verbose=0)
np.savez(
    f"{out}.rank{comm.rank}.npz",
    *model.get_weights(),
    history=json.dumps(hist.history),
    evaluate=json.dumps(ev),
    pred=pred,
    steps=model._global_step,
    lr=float(model.optimizer.learning_rate),
    broadcasts=broadcasts["n"],
    slots=np.concatenate([v.numpy().reshape(-1) for v in model.optimizer.variables[1:]]),
)
