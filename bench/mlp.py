"""784-512-512-10 MLP, batch 128, Adam, float32, random data, 2 threads.

Compares distkeras (fit and train_on_batch) with PyTorch eager, Keras 3 on its
torch backend, and a hand-written NumPy forward/backward (GEMMs + Adam) floor.
Prints samples/s and ratios, plus import times.

    python bench/mlp.py [--threads 2] [--steps 30] [--rounds 7]

Contenders run round-robin; each figure is the best of the rounds.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import import_time, interleaved_rates, optional, pin_threads  # noqa: E402

BATCH, IN, HID, OUT = 128, 784, 512, 10


def numpy_floor(np, x, y):
    """Hand-written forward/backward (GEMMs, relu, softmax-xent) + in-place float32 Adam.

    No autodiff, no framework: the fastest this step can be in NumPy.
    """
    rng = np.random.default_rng(0)
    shapes = [(IN, HID), (HID,), (HID, HID), (HID,), (HID, OUT), (OUT,)]
    params = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    tmp = [np.zeros_like(p) for p in params]
    t = [0]
    onehot = np.eye(OUT, dtype=np.float32)[y]
    f32 = np.float32

    def step():
        w1, b1, w2, b2, w3, b3 = params
        h1 = x @ w1
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ w2
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ w3
        z += b3
        z -= z.max(1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(1, keepdims=True)
        z -= onehot
        z *= f32(1.0 / BATCH)
        g3, gb3 = h2.T @ z, z.sum(0)
        dh2 = z @ w3.T
        dh2 *= h2 > 0
        g2, gb2 = h1.T @ dh2, dh2.sum(0)
        dh1 = dh2 @ w2.T
        dh1 *= h1 > 0
        g1, gb1 = x.T @ dh1, dh1.sum(0)
        t[0] += 1
        lr = f32(1e-3 * np.sqrt(1 - 0.999 ** t[0]) / (1 - 0.9 ** t[0]))
        for p_, g, m_, v_, s_ in zip(params, (g1, gb1, g2, gb2, g3, gb3), m, v, tmp):
            m_ *= f32(0.9)
            np.multiply(g, f32(0.1), out=s_)
            m_ += s_
            v_ *= f32(0.999)
            np.multiply(g, g, out=s_)
            s_ *= f32(0.001)
            v_ += s_
            np.sqrt(v_, out=s_)
            s_ += f32(1e-7)
            np.divide(m_, s_, out=s_)
            s_ *= lr
            p_ -= s_

    return step


def distkeras_model():
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    model = Sequential(
        [
            Dense(HID, activation="relu", input_shape=(IN,)),
            Dense(HID, activation="relu"),
            Dense(OUT, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def torch_step(torch, x, y):
    nn = torch.nn
    net = nn.Sequential(
        nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, HID), nn.ReLU(), nn.Linear(HID, OUT)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype("int64"))
    lossf = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), yt)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    pin_threads(args.threads)
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((BATCH, IN), dtype=np.float32)
    y = rng.integers(0, OUT, BATCH)
    steps = args.steps

    def repeat(step):
        def run():
            for _ in range(steps):
                step()

        return run

    contenders = {"numpy floor": (repeat(numpy_floor(np, x, y)), BATCH * steps)}
    model = distkeras_model()
    contenders["distkeras train_on_batch"] = (
        repeat(lambda: model.train_on_batch(x, y)),
        BATCH * steps,
    )
    xs = np.concatenate([x] * steps)
    ys = np.concatenate([y] * steps)
    model2 = distkeras_model()
    contenders["distkeras fit"] = (
        lambda: model2.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0),
        BATCH * steps,
    )
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(args.threads)
        contenders["pytorch eager"] = (repeat(torch_step(torch, x, y)), BATCH * steps)
    os.environ["KERAS_BACKEND"] = "torch"
    keras = optional("keras")
    if keras is not None:
        km = keras.Sequential(
            [
                keras.Input((IN,)),
                keras.layers.Dense(HID, activation="relu"),
                keras.layers.Dense(HID, activation="relu"),
                keras.layers.Dense(OUT, activation="softmax"),
            ]
        )
        km.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        contenders["keras3[torch] train_on_batch"] = (
            repeat(lambda: km.train_on_batch(x, y)),
            BATCH * steps,
        )
        contenders["keras3[torch] fit"] = (
            lambda: km.fit(xs, ys, batch_size=BATCH, epochs=1, verbose=0),
            BATCH * steps,
        )
    rates = interleaved_rates(contenders, rounds=args.rounds, lead_in=True)

    print(f"\nMLP {IN}-{HID}-{HID}-{OUT}, batch {BATCH}, Adam, float32, {args.threads} threads")
    print(f"{'':32s}{'samples/s':>12s}")
    for k, v in rates.items():
        print(f"{k:32s}{v:12.0f}")
    best = max(rates["distkeras fit"], rates["distkeras train_on_batch"])
    print("\nratios (distkeras best of fit/train_on_batch):")
    print(
        f"  distkeras fit / numpy floor        {rates['distkeras fit'] / rates['numpy floor']:.2f}x"
    )
    print(
        f"  distkeras tob / numpy floor        "
        f"{rates['distkeras train_on_batch'] / rates['numpy floor']:.2f}x"
    )
    if "pytorch eager" in rates:
        r = rates["distkeras fit"] / rates["pytorch eager"]
        print(f"  distkeras fit / pytorch eager      {r:.2f}x")
        print(
            f"  distkeras tob / pytorch eager      "
            f"{rates['distkeras train_on_batch'] / rates['pytorch eager']:.2f}x"
        )
    if "keras3[torch] fit" in rates:
        r = rates["distkeras fit"] / rates["keras3[torch] fit"]
        print(f"  distkeras fit / keras3[torch] fit  {r:.2f}x")
    print(f"  best distkeras / numpy floor       {best / rates['numpy floor']:.2f}x")

    env = dict(os.environ, KERAS_BACKEND="torch")
    t_dk = import_time("distkeras", env)
    print(f"\nimport distkeras: {t_dk:.3f} s")
    if keras is not None:
        print(f"import keras (torch backend): {import_time('keras', env):.3f} s")


if __name__ == "__main__":
    main()
