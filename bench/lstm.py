"""Embedding(10000, 64) - LSTM(64) - Dense(1, sigmoid) on random int sequences.

Sequence length 80, batch 64, binary crossentropy, Adam, float32, on the
machine's cores. Compares distkeras (train_on_batch and fit) with PyTorch eager
(nn.Embedding + nn.LSTM + nn.Linear) and Keras 3 on its torch backend, run
round-robin; prints samples/s and ratios.

    python bench/lstm.py [--steps 10] [--rounds 7] [--variants before,exported]

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
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.from_numpy(x.astype("int64"))
    yt = torch.from_numpy(y.astype("float32"))
    lossf = nn.BCELoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), yt)
        loss.backward()
        opt.step()

    return step


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
    steps = args.steps
    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)

    def repeat(step):
        def run():
            for _ in range(steps):
                step()

        return run

    if name == "distkeras train_on_batch":
        model = distkeras_model()
        return repeat(lambda: model.train_on_batch(x, y)), BATCH * steps
    if name == "distkeras fit":
        model = distkeras_model()
        return (
            lambda: model.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
            BATCH * steps,
        )
    if name == "pytorch eager":
        import torch  # noqa: PLC0415

        torch.set_num_threads(torch_threads())
        return repeat(torch_step(torch, x, y)), BATCH * steps
    os.environ["KERAS_BACKEND"] = "torch"
    import keras  # noqa: PLC0415

    km = keras_model(keras)
    return repeat(lambda: km.train_on_batch(x, y)), BATCH * steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--variants", default="before", help="of distkeras: before,exported,blas1 or ''"
    )
    ap.add_argument("--no-keras", action="store_true", help="leave Keras 3 out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        serve(lambda name: build(name, args), args.worker, warmup=3)
        return
    names = ["distkeras train_on_batch", "distkeras fit", "pytorch eager"]
    if not args.no_keras:
        names.append("keras3[torch] train_on_batch")
    variants = [v for v in args.variants.split(",") if v]
    rates = process_rates(__file__, with_variants(names, variants), rounds=args.rounds)
    print(
        f"\nEmbedding({VOCAB}, {EMBED})-LSTM({UNITS})-Dense(1), seq {SEQ}, batch {BATCH}, "
        f"Adam, float32, {torch_threads()} threads (NumPy first, one process per contender)"
    )
    report(rates, ("pytorch eager", "keras3[torch] train_on_batch"))


if __name__ == "__main__":
    main()
