"""Embedding(10000, 64) - LSTM(64) - Dense(1, sigmoid) on random int sequences.

Sequence length 80, batch 64, binary crossentropy, Adam, float32, on the
machine's cores. Compares distkeras (train_on_batch and fit) with PyTorch eager
(nn.Embedding + nn.LSTM + nn.Linear) and Keras 3 on its torch backend, run
round-robin; prints samples/s and ratios.

    python bench/lstm.py [--steps 10] [--rounds 7] [--variants before,exported] [--processes 3]

Each contender runs in its own process started like a user's script (NumPy
imported first, the shell's environment); distkeras also runs as main's code
did before the OpenBLAS re-arm (`[before]`, DISTKERAS_BLAS_TUNE=0).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np  # before distkeras (imported in the contender), as in a user's script

sys.path.insert(0, os.path.dirname(__file__))
from common import framework_contender, step_bench_main, torch_adam_step  # noqa: E402

VOCAB, EMBED, UNITS, SEQ, BATCH = 10000, 64, 64, 80, 64


def distkeras_model():
    from distkeras.layers import LSTM, Dense, Embedding
    from distkeras.models import Sequential

    model = Sequential(
        [
            Embedding(VOCAB, EMBED, input_shape=(SEQ,)),
            LSTM(UNITS),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def torch_step(torch, x, y):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, EMBED)
            self.lstm = nn.LSTM(EMBED, UNITS, batch_first=True)
            self.out = nn.Linear(UNITS, 1)

        def forward(self, ids):
            _, (h, _) = self.lstm(self.embed(ids))
            return torch.sigmoid(self.out(h[-1]))

    net = Net()
    xt = torch.from_numpy(x.astype("int64"))
    yt = torch.from_numpy(y.astype("float32"))
    return torch_adam_step(torch, net, nn.BCELoss(), xt, yt)


def keras_model(keras):
    model = keras.Sequential(
        [
            keras.Input((SEQ,), dtype="int32"),
            keras.layers.Embedding(VOCAB, EMBED),
            keras.layers.LSTM(UNITS),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def build(name: str, args: argparse.Namespace):
    """Contender `name` as (call, samples per call), in this (its own) process."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (BATCH, SEQ)).astype("int32")
    y = rng.integers(0, 2, (BATCH, 1)).astype("float32")
    return framework_contender(
        name, x, y, args.steps, BATCH, distkeras_model, torch_step, keras_model, shuffle=False
    )


def main() -> None:
    step_bench_main(
        __file__,
        build,
        ["distkeras train_on_batch", "distkeras fit", "pytorch eager"],
        ["keras3[torch] train_on_batch"],
        f"Embedding({VOCAB}, {EMBED})-LSTM({UNITS})-Dense(1), seq {SEQ}, batch {BATCH}, "
        "Adam, float32",
        ("pytorch eager", "keras3[torch] train_on_batch"),
        steps=10,
        rounds=7,
        warmup=3,
    )


if __name__ == "__main__":
    main()
