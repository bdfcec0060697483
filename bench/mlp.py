"""784-512-512-10 MLP, batch 128, Adam, float32, random data.

Compares distkeras (fit and train_on_batch) with PyTorch eager, Keras 3 on its
torch backend, and a hand-written NumPy forward/backward (GEMMs + Adam) floor.
Each contender runs in its own process started like a user's script (NumPy
imported first, the shell's environment); distkeras also runs as main's code
did before the OpenBLAS re-arm (`[before]`, DISTKERAS_BLAS_TUNE=0), in the
same run. Prints samples/s and ratios, plus import times.

    python bench/mlp.py [--steps 30] [--rounds 7] [--variants before,exported] [--processes 3]

Contenders run round-robin; each figure is the best (and median) of the rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np  # before distkeras (imported in the contender), as in a user's script

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    framework_contender,
    import_time,
    repeat,
    step_bench_main,
    torch_adam_step,
)

BATCH, IN, HID, OUT = 128, 784, 512, 10


def numpy_floor(x, y):
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
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype("int64"))
    return torch_adam_step(torch, net, nn.CrossEntropyLoss(), xt, yt)


def keras_model(keras):
    model = keras.Sequential(
        [
            keras.Input((IN,)),
            keras.layers.Dense(HID, activation="relu"),
            keras.layers.Dense(HID, activation="relu"),
            keras.layers.Dense(OUT, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def build(name: str, args: argparse.Namespace):
    """Contender `name` as (call, samples per call), in this (its own) process."""
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, IN), dtype=np.float32)
    y = rng.integers(0, OUT, BATCH)
    if name == "numpy floor":
        return repeat(numpy_floor(x, y), args.steps), BATCH * args.steps
    return framework_contender(
        name, x, y, args.steps, BATCH, distkeras_model, torch_step, keras_model
    )


def print_import_times() -> None:
    env = dict(os.environ, KERAS_BACKEND="torch")
    print(f"\nimport distkeras: {import_time('distkeras', env):.3f} s")
    print(f"import numpy, distkeras: {import_time('numpy, distkeras', env):.3f} s")
    # find_spec, not an import: this process has no KERAS_BACKEND, and Keras's default
    # backend (TensorFlow, installed with the dev extra) would take seconds to load here.
    if importlib.util.find_spec("keras") is None:
        print("[peer missing] keras: not installed")
    else:
        print(f"import keras (torch backend): {import_time('keras', env):.3f} s")


def main() -> None:
    step_bench_main(
        __file__,
        build,
        ["numpy floor", "distkeras train_on_batch", "distkeras fit", "pytorch eager"],
        ["keras3[torch] train_on_batch", "keras3[torch] fit"],
        f"MLP {IN}-{HID}-{HID}-{OUT}, batch {BATCH}, Adam, float32",
        ("numpy floor", "pytorch eager", "keras3[torch] fit"),
        steps=30,
        rounds=7,
        warmup=3,
        after=print_import_times,
    )


if __name__ == "__main__":
    main()
