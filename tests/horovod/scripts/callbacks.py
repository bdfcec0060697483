"""Checks hvd.callbacks under `mpirun -n N`: broadcast, metric averaging, LR warm-up.

Each rank prints 'ALL OK rank R' at the end.
"""

from __future__ import annotations

import numpy as np

import distkeras as keras
import distkeras.horovod as hvd


def make_model(seed: int, momentum: float = 0.0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    opt = keras.optimizers.SGD(0.05, momentum=momentum)
    model.compile(optimizer=hvd.DistributedOptimizer(opt), loss="mse", metrics=["mae"])
    return model


def rank_data(r: int, n_samples: int = 32):
    rng = np.random.default_rng(40 + r)
    return rng.standard_normal((n_samples, 3)).astype("float32"), rng.standard_normal(
        (n_samples, 1)
    ).astype("float32")


def broadcast_initial_weights(r: int, n: int) -> None:
    model = make_model(seed=100 + r)  # different initial weights per rank
    initial = [w.numpy().copy() for w in model.weights]
    root_initial = hvd.broadcast_object([w.tolist() for w in initial], root_rank=0)
    assert r == 0 or not all(np.array_equal(a, np.array(b)) for a, b in zip(initial, root_initial))
    at_first_step = []
    probe = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: (
            at_first_step.append([w.numpy().copy() for w in model.weights])
            if b == 0 and not at_first_step
            else None
        )
    )
    x, y = rank_data(r)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0), probe],
    )
    for got, want in zip(at_first_step[0], root_initial):
        np.testing.assert_array_equal(got, np.asarray(want, dtype=got.dtype))
    # Identical replicas from then on: averaged gradients keep them equal.
    flat = np.concatenate([w.numpy().ravel() for w in model.weights])
    everyone = hvd.allgather(flat[None, :])
    assert all(np.array_equal(everyone[0], row) for row in everyone), "replicas differ"


def metric_average(r: int, n: int) -> None:
    model = make_model(seed=5)
    raw = []
    before = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: (logs.update(rank_tag=float(r)), raw.append(dict(logs)))
    )
    x, y = rank_data(r)
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        validation_data=(x[:8], y[:8]),
        callbacks=[
            hvd.callbacks.BroadcastGlobalVariablesCallback(0),
            before,
            hvd.callbacks.MetricAverageCallback(),
        ],
    )
    everyone = hvd.allgather_object(raw)
    for e in range(2):
        for key in ("loss", "mae", "val_loss", "val_mae", "rank_tag"):
            want = np.mean([everyone[q][e][key] for q in range(n)])
            np.testing.assert_allclose(history.history[key][e], want, rtol=1e-6)
    assert history.history["rank_tag"] == [(n - 1) / 2] * 2
    # The per-rank losses did differ (the averaging had something to do).
    assert len({everyone[q][0]["loss"] for q in range(n)}) == n


def warmup(r: int, n: int) -> None:
    model = make_model(seed=3, momentum=0.9)
    target, warm, steps = 0.08, 2, 4
    seen_lr, seen_mom, after_mom = [], [], []
    opt = model.optimizer
    probe = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: (
            seen_lr.append(float(opt.learning_rate)),
            seen_mom.append(float(opt.momentum)),
        ),
    )
    after = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: after_mom.append(opt.momentum)
    )
    x, y = rank_data(r)
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[
            hvd.callbacks.LearningRateWarmupCallback(initial_lr=target, warmup_epochs=warm),
            probe,
            after,
        ],
    )
    # Horovod's documented ramp: lr = target / n * (t * (n - 1) / warm + 1),
    # with t = e + (b + 1) / steps.
    want = []
    for e in range(warm):
        for b in range(steps):
            t = e + (b + 1) / steps
            want.append(target / n * (t * (n - 1) / warm + 1))
    np.testing.assert_allclose(seen_lr[: warm * steps], want, rtol=1e-6)
    assert abs(want[0] - target / n * (1 + (n - 1) / (warm * steps))) < 1e-12
    np.testing.assert_allclose(seen_lr[warm * steps :], [target] * steps, rtol=1e-6)
    np.testing.assert_allclose(history.history["lr"][:warm], [want[steps - 1], target], rtol=1e-6)
    # Momentum correction: scaled by new_lr / old_lr during the batch, restored after it.
    old = [0.05] + want[:-1]
    for k in range(warm * steps):
        np.testing.assert_allclose(seen_mom[k], 0.9 * want[k] / old[k], rtol=1e-5)
    assert after_mom == [0.9] * 3


def main() -> None:
    hvd.init()
    r, n = hvd.rank(), hvd.size()
    broadcast_initial_weights(r, n)
    metric_average(r, n)
    warmup(r, n)
    print(f"ALL OK rank {r}", flush=True)


if __name__ == "__main__":
    main()
