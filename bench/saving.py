"""Time and size to save and load weights: distkeras container vs numpy.savez / numpy.load.

Models: the 784-512-512-10 MLP (670k parameters) and a 10M-parameter MLP.
Both sides write the same arrays to the same disk; distkeras also fsyncs and
renames (atomic) and checksums every array, numpy.savez does neither.

    python bench/saving.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_rates, pin_threads  # noqa: E402


def build(sizes):
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    stack = [Dense(sizes[1], activation="relu", input_shape=(sizes[0],))]
    stack += [Dense(n, activation="relu") for n in sizes[2:]]
    return Sequential(stack)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    pin_threads(2)
    import numpy as np

    folder = tempfile.mkdtemp()
    models = {"mlp 784-512-512-10": (784, 512, 512, 10), "mlp 10M": (1000, 2500, 2500, 1000)}
    print(
        f"{'model':22s}{'params':>12s}{'op':>7s}{'distkeras ms':>14s}{'numpy ms':>10s}"
        f"{'ratio':>8s}{'dk MB':>8s}{'np MB':>8s}"
    )
    for label, sizes in models.items():
        model = build(sizes)
        weights = model.get_weights()
        dk_path = os.path.join(folder, "w.dkw")
        np_path = os.path.join(folder, "w.npz")
        model.save_weights(dk_path)
        np.savez(np_path, *weights)

        def dk_load(model=model, dk_path=dk_path):
            model.load_weights(dk_path)

        def np_load(model=model, np_path=np_path):
            with np.load(np_path) as f:
                model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])

        def np_save_durable(w=weights, p=np_path):
            np.savez(p, *w)
            fd = os.open(p, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        rates = interleaved_rates(
            {
                "dk save": (lambda m=model, p=dk_path: m.save_weights(p), 1),
                "np save+fsync": (np_save_durable, 1),
                "np save": (lambda w=weights, p=np_path: np.savez(p, *w), 1),
                "dk load": (dk_load, 1),
                "np load": (np_load, 1),
            },
            rounds=args.rounds,
            warmup=1,
            prepare=os.sync,  # savez leaves dirty pages that the next fsync would flush
        )
        n = model.count_params()
        for op in ("save", "load"):
            dk, npt = 1e3 / rates[f"dk {op}"], 1e3 / rates[f"np {op}"]
            print(
                f"{label:22s}{n:12,d}{op:>7s}{dk:14.1f}{npt:10.1f}{dk / npt:8.2f}"
                f"{os.path.getsize(dk_path) / 2**20:8.1f}{os.path.getsize(np_path) / 2**20:8.1f}"
            )
        dur = 1e3 / rates["np save+fsync"]
        print(
            f"{'':22s}{'':12s}{'save':>7s}{1e3 / rates['dk save']:14.1f}{dur:10.1f}"
            f"{(1e3 / rates['dk save']) / dur:8.2f}   (numpy = savez + fsync)"
        )
    print("\nratio = distkeras time / numpy time (target <= 1.2); distkeras fsyncs every save")


if __name__ == "__main__":
    main()
