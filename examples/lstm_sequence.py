"""An LSTM reads each handwritten digit row by row and classifies it.

Each 8x8 image of the bundled UCI digits (`distkeras.datasets.digits`) is a
sequence of 8 timesteps (the rows) of 8 features (the pixels of a row, scaled
to [0, 1]); an LSTM(64) summarizes the sequence and a softmax layer names the
digit. With the defaults (seed 1, 20 epochs, batch 32, Adam 5e-3) it reaches
97.8% test accuracy (352 of the 360 held-out images) in a few seconds on a
CPU; `tests/examples/test_lstm_sequence.py` runs it and checks at least 97%.

    python examples/lstm_sequence.py [--epochs 20] [--batch-size 32] [--units 64]

The same script runs data-parallel when launched with `distkeras-run -np N`.
"""

from __future__ import annotations

import argparse

import distkeras
from distkeras import optimizers
from distkeras.layers import LSTM, Dense, Input
from distkeras.models import Sequential
from distkeras.utils import set_random_seed


def load():
    """The digits as (n, 8 timesteps, 8 features) float32 sequences in [0, 1]."""
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
    return (
        (x_train.astype("float32") / 16.0, y_train.astype("int64")),
        (x_test.astype("float32") / 16.0, y_test.astype("int64")),
    )


def main(argv: list[str] | None = None) -> float:
    """Trains, prints and returns the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load()
    model = Sequential(
        [
            Input((8, 8)),
            LSTM(args.units),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizers.Adam(args.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=args.verbose,
        validation_data=(x_test, y_test),
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if distkeras.distributed.is_coordinator():
        print(f"Test loss: {loss:.4f}")
        print(f"Test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
