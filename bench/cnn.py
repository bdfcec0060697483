"""conv32(3x3)-maxpool-conv64(3x3)-maxpool-dense128-dense10 on 28x28x1, batch 128.

Adam, float32, random data, on the machine's cores. Compares distkeras (fit and
train_on_batch) with PyTorch eager and Keras 3 on its torch backend, in one run,
round-robin; each figure is the best (and median) of the rounds.

    python bench/cnn.py [--steps 10] [--rounds 5] [--variants before,exported] [--processes 3]

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

BATCH, SIDE, CLASSES = 128, 28, 10


def distkeras_model():
    from distkeras.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from distkeras.models import Sequential

    model = Sequential(
        [
            Conv2D(32, 3, activation="relu", input_shape=(SIDE, SIDE, 1)),
            MaxPooling2D(),
            Conv2D(64, 3, activation="relu"),
            MaxPooling2D(),
            Flatten(),
            Dense(128, activation="relu"),
            Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def torch_step(torch, x, y):
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128),
        nn.ReLU(),
        nn.Linear(128, CLASSES),
    )
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y.astype("int64"))
    return torch_adam_step(torch, net, nn.CrossEntropyLoss(), xt, yt)


def keras_model(keras):
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def build(name: str, args: argparse.Namespace):
    """Contender `name` as (call, samples per call), in this (its own) process."""
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, SIDE, SIDE, 1), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    return framework_contender(
        name, x, y, args.steps, BATCH, distkeras_model, torch_step, keras_model, shuffle=False
    )


def main() -> None:
    step_bench_main(
        __file__,
        build,
        ["distkeras train_on_batch", "distkeras fit", "pytorch eager"],
        ["keras3[torch] train_on_batch", "keras3[torch] fit"],
        f"CNN conv32-pool-conv64-pool-dense128-dense10, {SIDE}x{SIDE}x1, batch {BATCH}, "
        "Adam, float32",
        ("pytorch eager", "keras3[torch] fit", "keras3[torch] train_on_batch"),
        steps=10,
        rounds=5,
        warmup=1,
    )


if __name__ == "__main__":
    main()
