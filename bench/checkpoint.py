"""Checkpoint cost: write time and size with Adam state, and BackupAndRestore's overhead.

(a) One training-state checkpoint (weights + Adam slots + iteration + metric and
    RNG state) of the 784-512-512-10 MLP and of a 10M-parameter MLP, written by
    BackupAndRestore's machinery, next to numpy.savez of the same arrays.
(b) One epoch of MLP training (60,000 random samples, batch 128, Adam) with and
    without BackupAndRestore(save_freq=100), interleaved; overhead in percent
    (target <= 3%).

    python bench/checkpoint.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import interleaved_rates, pin_threads  # noqa: E402


def mlp(sizes):
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    stack = [Dense(sizes[1], activation="relu", input_shape=(sizes[0],))]
    stack += [Dense(n, activation="relu") for n in sizes[2:-1]]
    stack.append(Dense(sizes[-1], activation="softmax"))
    model = Sequential(stack)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=60000)
    args = ap.parse_args()
    pin_threads(2)
    import numpy as np

    from distkeras import callbacks
    from distkeras.saving.checkpoint_manager import CheckpointManager

    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    print("(a) one checkpoint with Adam state")
    print(
        f"{'model':22s}{'params':>12s}{'ckpt ms':>9s}{'savez ms':>10s}{'ratio':>7s}"
        f"{'ckpt MB':>9s}{'npz MB':>8s}"
    )
    for label, sizes in {
        "mlp 784-512-512-10": (784, 512, 512, 10),
        "mlp 10M": (1000, 2500, 2500, 1000),
    }.items():
        model = mlp(sizes)
        x = rng.random((256, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], 256)
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        model._fit_context = {"callbacks": [], "seed": 0}
        model._global_step = 1
        manager = CheckpointManager(os.path.join(folder, "ckpt"), keep=1)

        def write_ckpt(model=model, manager=manager):
            arrays, meta = model._capture_training_state(1, 0)
            manager.save(1, arrays, meta)

        arrays, _ = model._capture_training_state(1, 0)
        npz = os.path.join(folder, "state.npz")
        rates = interleaved_rates(
            {
                "ckpt": (write_ckpt, 1),
                "savez": (lambda a=arrays, p=npz: np.savez(p, *[v for _, v in a]), 1),
            },
            rounds=args.rounds,
            warmup=1,
            prepare=os.sync,  # savez leaves dirty pages that the next fsync would flush
        )
        ck_size = os.path.getsize(manager.checkpoints()[-1][1]) / 2**20
        print(
            f"{label:22s}{model.count_params():12,d}{1e3 / rates['ckpt']:9.1f}"
            f"{1e3 / rates['savez']:10.1f}{rates['savez'] / rates['ckpt']:7.2f}"
            f"{ck_size:9.1f}{os.path.getsize(npz) / 2**20:8.1f}"
        )

    print("\n(b) one epoch of MLP training, BackupAndRestore(save_freq=100) on vs off")
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    plain, backed = mlp((784, 512, 512, 10)), mlp((784, 512, 512, 10))
    backup_dir = os.path.join(folder, "backup")

    def with_backup():
        cb = callbacks.BackupAndRestore(backup_dir, save_freq=100, delete_checkpoint=True)
        backed.fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=[cb])

    rates = interleaved_rates(
        {
            "off": (lambda: plain.fit(x, y, batch_size=128, epochs=1, verbose=0), args.samples),
            "on": (with_backup, args.samples),
        },
        rounds=args.rounds,
        warmup=1,
    )
    steps = -(-args.samples // 128)
    print(
        f"  off: {rates['off']:9.0f} samples/s   on: {rates['on']:9.0f} samples/s   "
        f"({steps} steps, {steps // 100} backups)"
    )
    print(f"  overhead: {100 * (rates['off'] / rates['on'] - 1):.2f}% (target <= 3%)")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
