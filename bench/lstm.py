"""Embedding(10000, 64) - LSTM(64) - Dense(1, sigmoid) on random int sequences.

Sequence length 80, batch 64, binary crossentropy, Adam, float32, 2 threads.
Compares distkeras (train_on_batch and fit) with PyTorch eager
(nn.Embedding + nn.LSTM + nn.Linear) and Keras 3 on its torch backend, run
round-robin in one process; prints samples/s and ratios.

    python bench/lstm.py [--threads 2] [--steps 10] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_rates, optional, pin_threads  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    pin_threads(args.threads)
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (BATCH, SEQ)).astype("int32")
    y = rng.integers(0, 2, (BATCH, 1)).astype("float32")
    steps = args.steps

    def repeat(step):
        def run():
            for _ in range(steps):
                step()

        return run

    contenders = {}
    model = distkeras_model()
    contenders["distkeras train_on_batch"] = (
        repeat(lambda: model.train_on_batch(x, y)),
        BATCH * steps,
    )
    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
    model2 = distkeras_model()
    contenders["distkeras fit"] = (
        lambda: model2.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
        BATCH * steps,
    )
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(args.threads)
        contenders["pytorch eager"] = (repeat(torch_step(torch, x, y)), BATCH * steps)
    os.environ["KERAS_BACKEND"] = "torch"
    keras = optional("keras")
    if keras is not None:
        km = keras_model(keras)
        contenders["keras3[torch] train_on_batch"] = (
            repeat(lambda: km.train_on_batch(x, y)),
            BATCH * steps,
        )
    rates = interleaved_rates(contenders, rounds=args.rounds, lead_in=True)

    print(
        f"\nEmbedding({VOCAB}, {EMBED})-LSTM({UNITS})-Dense(1), seq {SEQ}, batch {BATCH}, "
        f"Adam, float32, {args.threads} threads"
    )
    print(f"{'':32s}{'samples/s':>12s}")
    for k, v in rates.items():
        print(f"{k:32s}{v:12.0f}")
    best = max(rates["distkeras fit"], rates["distkeras train_on_batch"])
    print("\nratios (distkeras best of fit/train_on_batch):")
    for peer in ("pytorch eager", "keras3[torch] train_on_batch"):
        if peer in rates:
            print(f"  distkeras / {peer:30s}{best / rates[peer]:.2f}x")


if __name__ == "__main__":
    main()
