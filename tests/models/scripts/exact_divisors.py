"""Losses whose divisor depends on the data, trained in 1 process or under mpirun.

usage: exact_divisors.py OUT_PREFIX LOSS MODE

LOSS: mask (an output mask from Masking, sample weights, 'sum_over_batch_size'),
mwsw (the same with reduction='mean_with_sample_weight'), ignore (ignore_class
labels, no mask); with the suffix _plain, without the kernel regularizer (one
output, no `self.losses`: the divisor sum then runs while backward does, and the
gradient is rescaled when it arrives). MODE: det | default. The heavy sample
weights, the padded steps and the ignored labels all sit in the first 12 rows of
each global batch (rank 0's shard on 2 ranks), so per-rank divisors differ from
the global one. Saves each rank's weights, the epoch losses and the evaluate
results to OUT_PREFIX.rank{r}.npz.
"""

import sys

import numpy as np

import distkeras
from distkeras import layers, losses, regularizers
from distkeras.utils import set_random_seed

out, loss_kind, mode = sys.argv[1], sys.argv[2], sys.argv[3]
regularizer = None if loss_kind.endswith("_plain") else regularizers.L2(1e-3)
loss_kind = loss_kind.removesuffix("_plain")
comm = distkeras.distributed.initialize(deterministic=mode == "det")
set_random_seed(7 + 1000 * comm.rank)  # rank 0's initial weights are broadcast
rng = np.random.default_rng(0)
N, T, F, BATCH = 96, 5, 4, 24
x = rng.normal(size=(N, T, F)).astype("float32")
y = rng.integers(1, 3, size=(N, T))
head = (np.arange(N) % BATCH) < 12  # the first 12 rows of every global batch
sw = np.full((N, T), 0.25, dtype="float32")  # per-step weights, as for sequence outputs
sw[head] = rng.uniform(2.0, 6.0, size=(int(head.sum()), T))
if loss_kind == "ignore":
    y[head, 1:] = 0  # most labels of the head rows are ignored
    sw = None
else:
    x[head, 2:] = 0.0  # padded steps: Masking hides them (3 of 5 steps in the head rows)
    x[~head, 4:] = 0.0
model = distkeras.Sequential(
    [
        distkeras.Input((T, F)),
        *([layers.Masking(0.0)] if loss_kind != "ignore" else []),
        layers.Dense(8, activation="tanh", kernel_regularizer=regularizer),
        layers.Dense(3, activation="softmax"),
    ]
)
loss = {
    "mask": losses.SparseCategoricalCrossentropy(),
    "mwsw": losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight"),
    "ignore": losses.SparseCategoricalCrossentropy(ignore_class=0),
}[loss_kind]
model.compile(optimizer="sgd", loss=loss, weighted_metrics=["accuracy"])
history = model.fit(x, y, sample_weight=sw, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
evaluated = model.evaluate(x, y, sample_weight=sw, batch_size=BATCH, verbose=0)
on_batch = model.train_on_batch(x[:BATCH], y[:BATCH], None if sw is None else sw[:BATCH])
np.savez(
    f"{out}.rank{comm.rank}.npz",
    *model.get_weights(),
    loss=np.asarray(history.history["loss"]),
    accuracy=np.asarray(history.history["accuracy"]),
    evaluate=np.asarray(evaluated),
    on_batch=np.asarray(on_batch),
)
