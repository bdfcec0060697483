"""A custom training loop: GradientTape, optimizer.apply_gradients and a metric, by hand.

What `model.fit` does, written out as in the TensorFlow/Keras guide "Writing a
training loop from scratch": for each epoch, shuffle the bundled 8x8 UCI
digits, and for each batch

    with distkeras.GradientTape() as tape:
        probs = model(x, training=True)
        loss = loss_fn(y, probs) + sum(model.losses)
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    train_acc.update_state(y, probs)

then report the epoch's accuracy (`result()`, `reset_state()`) and evaluate on
the test split with a second metric object. The model is
Dense(64, relu, L2 1e-4) -> Dropout(0.1) -> Dense(10, softmax), Adam(1e-3).
With the defaults it reaches 96.1% test accuracy (at least 93% is checked by
tests/examples/test_examples.py) in a few seconds.

    python examples/custom_training_loop.py [--epochs 15] [--batch-size 32] [--seed 1]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

import distkeras
from distkeras import layers, losses, metrics, optimizers, regularizers
from distkeras.models import Input, Sequential
from distkeras.utils import set_random_seed


def main(argv: Sequence[str] | None = None) -> float:
    """Trains with a hand-written loop and returns the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype("float32") / 16.0
    x_test = x_test.reshape(len(x_test), -1).astype("float32") / 16.0

    model = Sequential(
        [
            Input((64,)),
            layers.Dense(64, activation="relu", kernel_regularizer=regularizers.L2(1e-4)),
            layers.Dropout(0.1),
            layers.Dense(10, activation="softmax"),
        ]
    )
    loss_fn = losses.SparseCategoricalCrossentropy()
    optimizer = optimizers.Adam(learning_rate=1e-3)
    train_acc = metrics.SparseCategoricalAccuracy()
    test_acc = metrics.SparseCategoricalAccuracy()
    rng = np.random.default_rng(args.seed)

    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        losses_seen = []
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            x, y = x_train[batch], y_train[batch]
            with distkeras.GradientTape() as tape:
                probs = model(x, training=True)
                loss = loss_fn(y, probs)
                if model.losses:  # the kernel's L2 penalty
                    loss = loss + distkeras.ops.sum(distkeras.ops.stack(model.losses))
            grads = tape.gradient(loss, model.trainable_weights)
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
            train_acc.update_state(y, probs)
            losses_seen.append(float(loss.numpy()))
        print(
            f"Epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses_seen):.4f}, "
            f"training accuracy {float(train_acc.result()):.4f}"
        )
        train_acc.reset_state()

    for start in range(0, len(x_test), 256):
        probs = model(x_test[start : start + 256], training=False)
        test_acc.update_state(y_test[start : start + 256], probs)
    accuracy = float(test_acc.result())
    print(f"Optimizer steps: {int(optimizer.iterations.numpy())}")
    print(f"Test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
