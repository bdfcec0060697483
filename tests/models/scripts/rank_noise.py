"""Dropout masks each rank draws in default-mode data-parallel training.

usage: rank_noise.py OUT_PREFIX

Every rank uses the same seed and the same data (rows of ones), so the only
thing that can make the masks of rank 0 and rank 1 differ for the same local
row is the rank folded into the layers' random streams. Saves each rank's
recorded training masks (and weights) to OUT_PREFIX.rank{r}.npz.
"""

import sys

import numpy as np

import distkeras
from distkeras import layers

out = sys.argv[1]
comm = distkeras.distributed.initialize()
distkeras.utils.set_random_seed(11)  # the same seed on every rank
masks = []


class RecordingDropout(layers.Dropout):
    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        if training:
            masks.append(np.asarray(outputs.data != 0))
        return outputs


model = distkeras.Sequential(
    [
        distkeras.Input((32,)),
        RecordingDropout(0.5, seed=5),  # a fixed layer seed too
        layers.Dense(1),
    ]
)
model.compile(optimizer="sgd", loss="mse")
x = np.ones((16 * comm.size, 32), dtype="float32")
y = np.zeros((16 * comm.size, 1), dtype="float32")
model.fit(x, y, batch_size=16 * comm.size, epochs=3, shuffle=False, verbose=0)
np.savez(f"{out}.rank{comm.rank}.npz", *model.get_weights(), masks=np.stack(masks))
