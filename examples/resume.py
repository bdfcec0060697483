"""Fault-tolerant training with `callbacks.BackupAndRestore`: crash, rerun, carry on exactly.

    python examples/resume.py --crash-at 120   # trains, "crashes" at step 120 (exit 1)
    python examples/resume.py                  # resumes from the last backup, finishes

`BackupAndRestore(backup_dir, save_freq=10)` writes the whole training state
every 10 batches (weights, Adam's slots and step count, the epoch and the step
within it, the shuffling seed, the epoch's metric accumulators and every random
stream, so Dropout draws the same masks). With `--crash-at N` a callback raises
after optimizer step N, as a killed job would stop; with N = 120 the latest
backup is from step 110, in the middle of the third epoch. Running the
script again finds the backup, prints where it resumed, and trains to the end;
the backups are deleted once training ends.

The resumed run ends with bitwise the same weights and test accuracy as a run
that was never interrupted (tests/examples/test_examples.py checks both with
`--weights-out`): Dense(64, relu) -> Dropout(0.2) -> Dense(10, softmax) on the
bundled 8x8 UCI digits, Adam, 10 epochs of 45 steps, 95.0% test accuracy with
the defaults, in a few seconds. Under `distkeras-run -np N` the ranks share
the backup folder and resume together.

    python examples/resume.py [--backup-dir DIR] [--crash-at N] [--epochs 10] [--weights-out F]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

import numpy as np

import distkeras
from distkeras import callbacks, layers
from distkeras.models import Input, Sequential
from distkeras.utils import set_random_seed

DEFAULT_BACKUP_DIR = os.path.join(tempfile.gettempdir(), "distkeras_resume_example")


class SimulatedCrash(RuntimeError):
    """Raised by `CrashAt` in place of a real failure (a killed process, a lost node)."""


class CrashAt(callbacks.Callback):
    """Raises `SimulatedCrash` after optimizer step `step` (0 never)."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.step and int(self.model.optimizer.iterations.numpy()) == self.step:
            raise SimulatedCrash(f"Simulated crash after step {self.step}")


class ReportResume(callbacks.Callback):
    """Prints, once, where training starts: from scratch or from a backup."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if getattr(self, "reported", False):
            return
        self.reported = True
        step = int(self.model.optimizer.iterations.numpy())
        if self.is_coordinator:
            if step:
                # A mid-epoch resume does not call on_epoch_begin again: count from the steps.
                epoch = step // self.params["steps"] + 1
                print(f"Resumed from a backup at step {step} (epoch {epoch}, batch {batch})")
            else:
                print("No backup found: training from scratch")


def main(argv: Sequence[str] | None = None) -> float:
    """Trains (resuming from a backup if one exists); returns the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backup-dir", default=DEFAULT_BACKUP_DIR)
    parser.add_argument("--crash-at", type=int, default=0, help="raise after this step")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--save-freq", type=int, default=10, help="batches between backups")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weights-out", default=None, help="write the final weights (.npz)")
    args = parser.parse_args(argv)

    set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype("float32") / 16.0
    x_test = x_test.reshape(len(x_test), -1).astype("float32") / 16.0
    model = Sequential(
        [
            Input((64,)),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
        callbacks=[
            ReportResume(),
            CrashAt(args.crash_at),
            callbacks.BackupAndRestore(args.backup_dir, save_freq=args.save_freq),
        ],
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if distkeras.distributed.is_coordinator():
        steps = int(model.optimizer.iterations.numpy())
        print(f"Finished after {steps} steps")
        print(f"Test accuracy: {accuracy:.4f}")
        if args.weights_out:
            np.savez(args.weights_out, *model.get_weights())
    return float(accuracy)


if __name__ == "__main__":
    try:
        main()
    except SimulatedCrash as crash:
        sys.exit(f"{crash}; run the script again (without --crash-at) to resume.")
