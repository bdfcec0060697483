"""The job cluster/docker/check.sh runs in every container setup: it must print the same weights.

Trains the README's Quick start model (Dense 512 relu, Dropout 0.2, Dense 10
softmax, Adam, global batch 64) on the bundled digits in deterministic mode,
where the summation order and every Dropout mask depend on the global batch,
not on the number of ranks. Rank 0 prints the SHA-256 of the trained weights'
bytes: one process, 2 ranks in one container, 2 containers over ssh (MPI) and
a 2-container Ray cluster all print the same digest.

    python weights_job.py [--epochs 3]
    distkeras-run -np 2 python weights_job.py
"""

from __future__ import annotations

import argparse
import hashlib
import socket

import distkeras as keras
import distkeras.distributed as dist
from distkeras import layers


def main() -> None:
    """Trains, then prints the digest, the accuracy and where each rank ran."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    comm = dist.initialize(deterministic=True)
    print(f"rank {comm.rank} of {comm.size} ({comm.backend}) on {socket.gethostname()}", flush=True)
    keras.utils.set_random_seed(1)
    (x_train, y_train), (x_test, y_test) = keras.datasets.digits.load_data()
    x_train = x_train.reshape(-1, 64).astype("float32") / 16
    x_test = x_test.reshape(-1, 64).astype("float32") / 16
    model = keras.Sequential(
        [
            keras.Input((64,)),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    if dist.is_coordinator():
        print(f"ranks={comm.size} weights_sha256={digest} test_accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
