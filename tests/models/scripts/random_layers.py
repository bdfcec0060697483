"""The README quick-start model (Dense, Dropout 0.2) trained in 1 process or under mpirun.

usage: random_layers.py OUT_PREFIX [det|default|nan_on_rank1]

- det: deterministic mode (fit, then two train_on_batch); saves each rank's weights
  to OUT_PREFIX.rank{r}.npz.
- default: the same in default mode (masks drawn by each rank's own streams).
- nan_on_rank1: rank 1's copy of x holds a NaN; fit must end every rank.
"""

import sys

import numpy as np

import distkeras
from distkeras import layers
from distkeras.utils import set_random_seed

out, mode = sys.argv[1], sys.argv[2]
comm = distkeras.distributed.initialize(deterministic=mode != "default")
# Different seeds per rank: layer streams differ; the noise must not depend on them.
set_random_seed(3 + 1000 * comm.rank)
(x_train, y_train), _ = distkeras.datasets.digits.load_data()
x_train = x_train.reshape(-1, 64).astype("float32")[:640] / 16
y_train = y_train[:640]
if mode == "nan_on_rank1" and comm.rank == 1:
    x_train[17, 5] = np.nan
model = distkeras.Sequential(
    [
        distkeras.Input((64,)),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
for start in (0, 50):  # the train_on_batch step draws per sample too
    model.train_on_batch(x_train[start : start + 50], y_train[start : start + 50])
np.savez(f"{out}.rank{comm.rank}.npz", *model.get_weights())
