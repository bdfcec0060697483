"""conv32(3x3)-maxpool-conv64(3x3)-maxpool-dense128-dense10 on 28x28x1, batch 128.

Adam, float32, random data, on the machine's cores. Compares distkeras (fit and
train_on_batch) with PyTorch eager and Keras 3 on its torch backend, in one run,
round-robin; each figure is the best (and median) of the rounds.

    python bench/cnn.py [--steps 10] [--rounds 5] [--variants before,exported]

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
from common import process_rates, report, serve, torch_threads, with_variants  # noqa: E402

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
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y.astype("int64"))
    lossf = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), yt)
        loss.backward()
        opt.step()

    return step


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
    steps = args.steps
    samples = BATCH * steps
    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)

    def repeat(step):
        def run():
            for _ in range(steps):
                step()

        return run

    if name == "distkeras train_on_batch":
        model = distkeras_model()
        return repeat(lambda: model.train_on_batch(x, y)), samples
    if name == "distkeras fit":
        model = distkeras_model()
        return (
            lambda: model.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
            samples,
        )
    if name == "pytorch eager":
        import torch  # noqa: PLC0415

        torch.set_num_threads(torch_threads())
        return repeat(torch_step(torch, x, y)), samples
    os.environ["KERAS_BACKEND"] = "torch"
    import keras  # noqa: PLC0415

    km = keras_model(keras)
    if name == "keras3[torch] train_on_batch":
        return repeat(lambda: km.train_on_batch(x, y)), samples
    return (
        lambda: km.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
        samples,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--variants", default="before", help="of distkeras: before,exported,blas1 or ''"
    )
    ap.add_argument("--no-keras", action="store_true", help="leave Keras 3 out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        serve(lambda name: build(name, args), args.worker, warmup=1)
        return
    names = ["distkeras train_on_batch", "distkeras fit", "pytorch eager"]
    if not args.no_keras:
        names += ["keras3[torch] train_on_batch", "keras3[torch] fit"]
    variants = [v for v in args.variants.split(",") if v]
    rates = process_rates(__file__, with_variants(names, variants), rounds=args.rounds)
    print(
        f"\nCNN conv32-pool-conv64-pool-dense128-dense10, {SIDE}x{SIDE}x1, batch {BATCH}, "
        f"Adam, float32, {torch_threads()} threads (NumPy first, one process per contender)"
    )
    report(rates, ("pytorch eager", "keras3[torch] fit", "keras3[torch] train_on_batch"))


if __name__ == "__main__":
    main()
