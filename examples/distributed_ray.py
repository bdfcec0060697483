"""Data-parallel training on Ray: `distkeras.distributed.ray.run(train_fn, num_workers=2)`.

    python examples/distributed_ray.py                       # local Ray cluster, 2 workers
    python examples/distributed_ray.py --address HOST:6379   # an existing Ray cluster

This script is the Ray *driver*: it starts (or connects to) a Ray cluster and
calls `run(train_fn, num_workers=N, config=..., deterministic=True)`. Ray
starts N actors in a placement group; each initializes the Ray communicator
and calls `train_fn(config)`, in which `model.fit` is data-parallel exactly as
under mpirun (rank 0's weights broadcast first, each rank trains on its slice
of every global batch, gradients averaged by an all-reduce through Ray's
object store). Each worker prints its rank (Ray forwards worker output to the
driver, prefixed with the actor's pid); `run` returns rank 0's result, which
the driver prints. Run it directly with python, not under `distkeras-run`:
it starts its own workers (`distkeras-run --backend ray -np N python
script.py` is the way to run a plain training script, such as
examples/mnist_mlp.py, on Ray workers).

The model and data are those of examples/distributed_mpi.py (Dense(64, relu)
-> Dense(10, softmax), Adam, the bundled 8x8 UCI digits, global batch 64), and
the communicator reduces in a world-size independent order, so the printed
weight checksum and the test accuracy (95.8% with the defaults) equal that
script's, on any number of workers; tests/examples/test_examples.py checks it.
Starting Ray takes a few seconds; training takes a few more.

    python examples/distributed_ray.py [--num-workers 2] [--epochs 20] [--address ADDR]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def train_fn(config: dict) -> dict:
    """Runs on every Ray worker: builds, trains and evaluates the model."""
    import numpy as np  # noqa: PLC0415 - imported on the worker

    import distkeras  # noqa: PLC0415
    import distkeras.distributed  # noqa: PLC0415
    from distkeras import layers  # noqa: PLC0415
    from distkeras.distributed.ray import get_context  # noqa: PLC0415
    from distkeras.models import Input, Sequential  # noqa: PLC0415
    from distkeras.utils import set_random_seed  # noqa: PLC0415

    distkeras.distributed.initialize(deterministic=True)  # as run(..., deterministic=True)
    ctx = get_context()
    print(f"Rank {ctx.rank} of {ctx.size} (ray) starting, pid {os.getpid()}", flush=True)

    set_random_seed(config["seed"])
    (x_train, y_train), (x_test, y_test) = distkeras.datasets.digits.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype("float32") / 16.0
    x_test = x_test.reshape(len(x_test), -1).astype("float32") / 16.0
    model = Sequential(
        [Input((64,)), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train, y_train, batch_size=config["batch_size"], epochs=config["epochs"], verbose=0
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    checksum = float(sum(np.abs(w).astype("float64").sum() for w in model.get_weights()))
    return {
        "rank": ctx.rank,
        "size": ctx.size,
        "loss": float(history.history["loss"][-1]),
        "test_loss": float(loss),
        "test_accuracy": float(accuracy),
        "checksum": checksum,
    }


def main(argv: Sequence[str] | None = None) -> float:
    """Trains on Ray workers; returns the test accuracy (rank 0's)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else local)"
    )
    args = parser.parse_args(argv)
    config = {"seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size}

    if os.environ.get("DISTKERAS_RAY_GROUP"):  # a worker of `distkeras-run --backend ray`
        result = train_fn(config)
        if result["rank"] == 0:
            _report(result, args.epochs)
        return result["test_accuracy"]

    try:
        import ray  # noqa: PLC0415

        from distkeras.distributed.ray import run  # noqa: PLC0415
    except ImportError as e:
        sys.exit(f"distributed_ray.py needs Ray and distkeras.distributed.ray.run: {e}")

    started = False
    if not ray.is_initialized():
        address = args.address or os.environ.get("RAY_ADDRESS") or "local"
        if address == "local":  # a fresh local cluster, never a stale one found on disk
            cpus = max(os.cpu_count() or 1, args.num_workers)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False)
        else:
            ray.init(address=address)
        started = True
    try:
        result = run(train_fn, num_workers=args.num_workers, config=config, deterministic=True)
    finally:
        if started:
            ray.shutdown()
    _report(result, args.epochs)
    return result["test_accuracy"]


def _report(result: dict, epochs: int) -> None:
    print(f"Trained on {result['size']} Ray worker(s) for {epochs} epochs")
    print(f"Final training loss: {result['loss']:.4f}")
    print(f"Weight checksum: {result['checksum']:.6f}")
    print(f"Test loss: {result['test_loss']:.4f}")
    print(f"Test accuracy: {result['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
