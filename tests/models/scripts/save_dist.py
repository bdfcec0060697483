"""Saves a model from every rank of an mpirun job: one file per save, loadable at once.

usage: save_dist.py OUT_DIR

Every rank trains the same model (sharded optimizer slots mid-epoch), saves
mid-epoch from a callback and after fit, then loads each file right after its
save returned (no extra barrier) and checks it against its own model. It also
saves to a per-rank path (only rank 0's is written), to an unwritable path
(every rank must raise), and on rank 0 only (an error, not a hang). Rank r
prints 'rank r OK' at the end and writes its weights and optimizer slots to
OUT_DIR/../rank{r}.npz for the test to compare.
"""

import os
import sys
import warnings

import numpy as np

import distkeras
from distkeras import callbacks, layers
from distkeras.models import Sequential, load_model
from distkeras.utils import set_random_seed

out = sys.argv[1]
comm = distkeras.distributed.initialize()
r = comm.rank
set_random_seed(3 + 1000 * r)  # fit's first broadcast makes the replicas agree
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 6)).astype("float32")
y = rng.integers(0, 3, 96)


def make_model():
    return Sequential(
        [
            layers.Dense(8, activation="tanh", input_shape=(6,)),
            layers.Dense(3, activation="softmax"),
        ]
    )


def same(a_list, b_list):
    return len(a_list) == len(b_list) and all(np.array_equal(a, b) for a, b in zip(a_list, b_list))


model = make_model()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
mid = {}


def save_mid_epoch(batch, logs):
    if model._global_step == 3:  # slots are sharded across the ranks here
        try:
            model.optimizer.variables  # noqa: B018 - the read is what is tested
            print(f"rank {r}: slots whole before the save", flush=True)
        except RuntimeError:
            print(f"rank {r}: slots sharded before the save", flush=True)
        model.save(os.path.join(out, "mid.dkm"))
        mid["slots"] = [v.numpy().copy() for v in model.optimizer.variables]
        mid["weights"] = model.get_weights()
        again = load_model(os.path.join(out, "mid.dkm"))
        assert same(again.get_weights(), mid["weights"]), "mid-epoch weights differ"
        assert same([v.numpy() for v in again.optimizer.variables], mid["slots"]), "slots differ"


model.fit(
    x,
    y,
    batch_size=16,
    epochs=2,
    verbose=0,
    callbacks=[callbacks.LambdaCallback(on_train_batch_end=save_mid_epoch)],
)
# Batch logs are per rank: rank 0's value decides, so every rank saves together.
best = callbacks.ModelCheckpoint(
    os.path.join(out, "best.dkw"),
    monitor="loss",
    save_best_only=True,
    save_weights_only=True,
    save_freq=1,
)
batch_losses = []
track = callbacks.LambdaCallback(
    on_train_batch_end=lambda b, logs: batch_losses.append(logs["loss"])
)
model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[track, best])
print(f"rank {r} best {best.best!r} batch losses {batch_losses!r}", flush=True)

weights = model.get_weights()

model.save(os.path.join(out, "m.dkm"))
loaded = load_model(os.path.join(out, "m.dkm"))  # right after save returned, on every rank
assert same(loaded.get_weights(), weights), f"rank {r}: model file differs"
np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))

model.save_weights(os.path.join(out, "w.dkw"))
fresh = make_model()
fresh.load_weights(os.path.join(out, "w.dkw"))
assert same(fresh.get_weights(), weights), f"rank {r}: weights file differs"

with warnings.catch_warnings(record=True) as caught:  # the m0.dkm / m1.dkm
    warnings.simplefilter("always")
    model.save(os.path.join(out, f"m{r}.dkm"))
for w in caught:
    print(f"rank {r} warned: {w.message}", flush=True)

if r == 0:
    with open(os.path.join(out, "afile"), "w") as f:
        f.write("a file, not a folder")
comm.barrier()
try:
    model.save_weights(os.path.join(out, "afile", "w.dkw"))
    print(f"rank {r} did not raise", flush=True)
except OSError as e:
    print(f"rank {r} raised {type(e).__name__}: {e}", flush=True)
comm.barrier()  # the unwritable save left every rank in step: collectives still work
assert comm.allreduce(np.ones(2)).tolist() == [comm.size] * 2

try:  # Horovod's idiom: only rank 0 saves, the others go on to the next collective
    if r == 0:
        model.save_weights(os.path.join(out, "only0.dkw"))
    else:
        comm.barrier()
    print(f"rank {r} no mismatch", flush=True)
except distkeras.distributed.CollectiveMismatchError as e:
    print(f"rank {r} mismatch, notes: {getattr(e, '__notes__', [])}", flush=True)

np.savez(
    os.path.join(out, "..", f"rank{r}.npz"),
    *weights,
    mid_slots=np.concatenate([s.reshape(-1) for s in mid["slots"]]),
)
print(f"rank {r} OK", flush=True)
