"""A Horovod Keras script, in the shape of Horovod's Keras MNIST example, on distkeras.

The only changes from a `horovod.tensorflow.keras` script are the two imports:
`import distkeras as keras` and `import distkeras.horovod as hvd`. Each rank
trains on its own shard of the data (`x[rank::size]`) with its own batch size;
`hvd.DistributedOptimizer` averages the gradients, so `-n 2 --batch-size 16`
takes the same steps as one process with `--batch-size 32` (same learning rate).
Runs on the bundled 8x8 digits (about 97% test accuracy with the defaults, on 1
or 2 ranks); `--mnist DIR` reads the MNIST IDX files in DIR (no downloads).
Tested by tests/horovod/test_horovod_mpi.py (2 ranks equal 1 process; rank 0's
checkpoints) and tests/horovod/test_horovod_ray.py.

    mpirun -n 2 python examples/horovod_keras_mnist.py
    distkeras-run -np 2 python examples/horovod_keras_mnist.py
    distkeras-run horovodrun -np 2 -H localhost:2 python examples/horovod_keras_mnist.py
    distkeras-run --backend ray -np 2 python examples/horovod_keras_mnist.py
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import numpy as np

import distkeras as keras
import distkeras.horovod as hvd


def load(mnist_dir: str | None):
    if mnist_dir:
        (x, y), (xt, yt) = keras.datasets.mnist.load_data(path=mnist_dir)
        scale = 255.0
    else:
        (x, y), (xt, yt) = keras.datasets.digits.load_data()
        scale = 16.0
    side = int(round(np.sqrt(x[0].size)))
    x = x.reshape(len(x), side, side, 1).astype("float32") / scale
    xt = xt.reshape(len(xt), side, side, 1).astype("float32") / scale
    return (x, y), (xt, yt)


def main(argv: Sequence[str] | None = None) -> dict:
    """Trains on this rank's shard; returns rank 0's final logs (every rank returns its own)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32, help="per-rank batch size")
    p.add_argument("--lr", type=float, default=0.05, help="per-rank rate, scaled by hvd.size()")
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--no-shuffle", action="store_true")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--mnist", default=None)
    p.add_argument("--checkpoint-dir", default=None, help="rank 0 saves checkpoints here")
    p.add_argument("--dump", default=None, help="each rank writes its weights and logs here")
    args = p.parse_args(argv)

    # Horovod: initialize Horovod.
    hvd.init()
    # Different seeds per rank: BroadcastGlobalVariablesCallback makes the replicas equal.
    keras.utils.set_random_seed(args.seed + hvd.rank())

    (x, y), (x_test, y_test) = load(args.mnist)
    global_batch = args.batch_size * hvd.size()
    n = len(x) // global_batch * global_batch
    # Horovod: each rank reads its own shard of the data.
    x_shard, y_shard = x[:n][hvd.rank() :: hvd.size()], y[:n][hvd.rank() :: hvd.size()]

    model = keras.Sequential(
        [
            keras.Input(shape=x.shape[1:]),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )

    # Horovod: adjust the learning rate based on the number of workers.
    scaled_lr = args.lr * hvd.size()
    opt = keras.optimizers.SGD(scaled_lr, momentum=0.9)
    # Horovod: add the Horovod DistributedOptimizer.
    opt = hvd.DistributedOptimizer(
        opt, backward_passes_per_step=1, average_aggregated_gradients=True
    )
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=opt,
        metrics=["accuracy"],
    )

    callbacks = [
        # Horovod: broadcast initial variable states from rank 0 to all other processes.
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        # Horovod: average metrics among workers at the end of every epoch.
        hvd.callbacks.MetricAverageCallback(),
    ]
    if args.warmup_epochs:
        # Horovod: start at the single-worker rate and ramp up to scaled_lr.
        callbacks.append(
            hvd.callbacks.LearningRateWarmupCallback(
                initial_lr=scaled_lr, warmup_epochs=args.warmup_epochs, verbose=1
            )
        )
    # Horovod: save checkpoints only on worker 0 to prevent other workers from corrupting them.
    if hvd.rank() == 0 and args.checkpoint_dir:
        path = os.path.join(args.checkpoint_dir, "checkpoint-{epoch}.weights.h5")
        callbacks.append(keras.callbacks.ModelCheckpoint(path, save_weights_only=True))

    # Horovod: write logs on worker 0 only.
    verbose = 1 if hvd.rank() == 0 else 0
    history = model.fit(
        x_shard,
        y_shard,
        batch_size=args.batch_size,
        callbacks=callbacks,
        epochs=args.epochs,
        shuffle=not args.no_shuffle,
        verbose=verbose,
    )
    score = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    if hvd.rank() == 0:
        print(f"Test loss: {score['loss']:.4f}  test accuracy: {score['accuracy']:.4f}")
    if args.dump:
        np.savez(
            os.path.join(args.dump, f"weights_rank{hvd.rank()}.npz"),
            *[w.numpy() for w in model.weights],
        )
        with open(os.path.join(args.dump, f"history_rank{hvd.rank()}.json"), "w") as f:
            json.dump({k: [float(v) for v in vs] for k, vs in history.history.items()}, f)
    return score


if __name__ == "__main__":
    main()
