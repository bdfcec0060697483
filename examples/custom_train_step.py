"""Customizing what happens in `fit`: your own `train_step`, the same on 1 or N ranks.

    python examples/custom_train_step.py                         # one process
    distkeras-run -np 2 python examples/custom_train_step.py     # 2 MPI ranks, same result
    distkeras-run --backend ray -np 2 python examples/custom_train_step.py

As in Keras 3's guide "Customizing what happens in fit()", a `Model`
subclass overrides `train_step(data)` and keeps everything else of `fit`
(callbacks, progress, history, validation, data sharding):

    def train_step(self, data):
        x, y = data
        with distkeras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)   # compiled loss + self.losses
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        for metric in self.metrics:                        # loss tracker, compiled metrics
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

`test_step` is overridden too (with `compute_metrics`), and a metric set as
an attribute (`self.grad_norm`) is tracked by `self.metrics`: it is reset
each epoch, reduced across ranks and logged. Nothing here mentions ranks: in a
data-parallel run `optimizer.apply` is the boundary where the gradients of
all ranks are averaged (weighted by each rank's share of the global batch),
so every replica applies the same update. The communicator is initialized
with `deterministic=True`, which sums the gradients in an order that does not
depend on the number of ranks: the printed weight checksum and accuracy are
bitwise the same on 1 and 2 ranks. The model, Dense(64, relu) -> Dense(10)
on the bundled 8x8 digits, reaches about 95% test accuracy in a few seconds.

    python examples/custom_train_step.py [--epochs 15] [--batch-size 64] [--seed 1]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

import distkeras
import distkeras.distributed as dist
from distkeras import layers, metrics, ops
from distkeras.utils import set_random_seed


class Classifier(distkeras.Model):
    """Dense(64, relu) -> Dense(10, softmax) with its own train and test steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(64, activation="relu")
        self.probs = layers.Dense(10, activation="softmax")
        self.grad_norm = metrics.Mean(name="grad_norm")  # tracked: an attribute metric

    def call(self, x, training=False):
        return self.probs(self.hidden(x))

    def train_step(self, data):
        x, y = data
        with distkeras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))
        for metric in self.metrics:  # "loss", the compiled "accuracy", then grad_norm
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=len(x))
            elif metric is self.grad_norm:
                metric.update_state(norm)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred, training=False)
        self.metrics[0].update_state(loss, sample_weight=len(x))  # the "loss" tracker
        return self.compute_metrics(x, y, y_pred)


def main(argv: Sequence[str] | None = None) -> float:
    """Trains with the custom step; returns the test accuracy (the same on every rank)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    comm = dist.initialize(deterministic=True)  # MPI or Ray under distkeras-run, else local
    set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype("float32") / 16.0
    x_test = x_test.reshape(len(x_test), -1).astype("float32") / 16.0

    model = Classifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)

    checksum = float(sum(np.abs(w).astype("float64").sum() for w in model.get_weights()))
    if dist.is_coordinator():
        print(f"Trained on {comm.size} rank(s) for {len(history.epoch)} epochs")
        print(f"Logged: {sorted(history.history)}")
        print(f"Final training loss: {history.history['loss'][-1]:.4f}")
        print(f"Weight checksum: {checksum:.6f}")
        print(f"Test accuracy: {logs['accuracy']:.4f}")
    return float(logs["accuracy"])


if __name__ == "__main__":
    main()
