"""Trains a small BatchNormalization model in 1 process or under mpirun; saves every weight.

usage: sync_bn_train.py OUT_PREFIX [sync|plain]
"""

import sys

import numpy as np

import distkeras
from distkeras import layers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

out, mode = sys.argv[1], sys.argv[2]
comm = distkeras.distributed.initialize()
set_random_seed(5 + 1000 * comm.rank)  # the initial broadcast must make ranks agree
rng = np.random.default_rng(0)
x = rng.normal(2.0, 3.0, size=(64, 5)).astype("float32")
y = (x[:, 0] + 0.5 * x[:, 1] > 2.5).astype("int64") + (x[:, 2] > 3.0).astype("int64")
sync = mode == "sync"
model = Sequential(
    [
        layers.Dense(8, use_bias=False, input_shape=(5,)),
        layers.BatchNormalization(momentum=0.8, synchronized=sync),
        layers.Activation("tanh"),
        layers.Dense(6, use_bias=False),
        layers.BatchNormalization(momentum=0.7, synchronized=sync, center=False),
        layers.Dense(3, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=16, epochs=3, verbose=0)
np.savez(f"{out}.rank{comm.rank}.npz", *model.get_weights())
