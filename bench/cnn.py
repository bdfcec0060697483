"""conv32(3x3)-maxpool-conv64(3x3)-maxpool-dense128-dense10 on 28x28x1, batch 128.

Adam, float32, random data, 2 threads. Compares distkeras (fit and
train_on_batch) with PyTorch eager and Keras 3 on its torch backend, in one run,
round-robin; each figure is the best of the rounds.

    python bench/cnn.py [--threads 2] [--steps 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_rates, optional, pin_threads  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    pin_threads(args.threads)
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((BATCH, SIDE, SIDE, 1), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    steps = args.steps
    samples = BATCH * steps

    def repeat(step):
        def run():
            for _ in range(steps):
                step()

        return run

    contenders = {}
    model = distkeras_model()
    contenders["distkeras train_on_batch"] = (repeat(lambda: model.train_on_batch(x, y)), samples)
    xs = np.concatenate([x] * steps)
    ys = np.concatenate([y] * steps)
    model2 = distkeras_model()
    contenders["distkeras fit"] = (
        lambda: model2.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
        samples,
    )
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(args.threads)
        contenders["pytorch eager"] = (repeat(torch_step(torch, x, y)), samples)
    os.environ["KERAS_BACKEND"] = "torch"
    keras = optional("keras")
    if keras is not None:
        km = keras_model(keras)
        contenders["keras3[torch] train_on_batch"] = (
            repeat(lambda: km.train_on_batch(x, y)),
            samples,
        )
        contenders["keras3[torch] fit"] = (
            lambda: km.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
            samples,
        )
    rates = interleaved_rates(contenders, rounds=args.rounds, warmup=1, lead_in=True)

    print(
        f"\nCNN conv32-pool-conv64-pool-dense128-dense10, {SIDE}x{SIDE}x1, batch {BATCH}, "
        f"Adam, float32, {args.threads} threads"
    )
    print(f"{'':32s}{'samples/s':>12s}")
    for k, v in rates.items():
        print(f"{k:32s}{v:12.0f}")
    best = max(rates["distkeras fit"], rates["distkeras train_on_batch"])
    print("\nratios:")
    for peer in ("pytorch eager", "keras3[torch] fit", "keras3[torch] train_on_batch"):
        if peer in rates:
            print(f"  best distkeras / {peer:30s}{best / rates[peer]:.2f}x")
            print(f"  distkeras fit / {peer:31s}{rates['distkeras fit'] / rates[peer]:.2f}x")


if __name__ == "__main__":
    main()
