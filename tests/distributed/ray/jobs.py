"""Functions the Ray tests run on workers (importable by the workers: PYTHONPATH is the repo)."""

from __future__ import annotations

import os
import time

import numpy as np

N_SAMPLES, N_FEATURES, N_CLASSES = 103, 6, 3
BIG = 70_001  # float32 elements: past the inline limit, every rank takes every buffer
HUGE = 300_001  # float32 elements: past the direct limit, reduce-scatter + all-gather (3 ranks)


def make_data():
    """dp_train.py's data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype("float32")
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return x, y


def make_model(seed: int, optimizer: str = "adam"):
    """dp_train.py's model; different seeds per rank (the first broadcast makes them agree)."""
    from distkeras import layers
    from distkeras.models import Sequential
    from distkeras.utils import set_random_seed

    set_random_seed(seed)
    model = Sequential(
        [
            layers.Dense(16, activation="tanh", input_shape=(N_FEATURES,)),
            layers.Dense(N_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit(x, y, rank: int = 0, epochs: int = 4):
    model = make_model(3 + 1000 * rank)
    hist = model.fit(x, y, batch_size=20, epochs=epochs, verbose=0)
    return model.get_weights(), hist.history


# --------------------------------------------------------------------------- jobs
def train_job(config):
    """Default-mode fit, then deterministic-mode fit (data arrives as object refs)."""
    import distkeras.distributed as dist

    comm = dist.get_communicator()
    x, y = config["x"], config["y"]
    assert not x.flags.writeable  # zero-copy from the object store
    default = fit(x, y, comm.rank)
    dist.initialize(deterministic=True)  # backend 'auto' resolves to the running Ray one
    det = fit(x, y, comm.rank)
    return {
        "size": comm.size,
        "backend": comm.backend,
        "default": default,
        "det": det,
        "ranks_agree": comm.allgather_object(float(np.sum(det[0][0]))),
    }


def _rank_data(rank: int, n: int, dtype="float32") -> np.ndarray:
    return np.random.default_rng(100 + rank).standard_normal(n).astype(dtype)


def _ordered(parts, fn=np.add):
    out = parts[0].copy()
    for p in parts[1:]:
        out = fn(out, p)
    return out


def collectives_job(config):
    """Every collective on N ranks; returns rank 0's view of each rank's checks."""
    import distkeras.distributed as dist
    from distkeras.distributed.errors import CollectiveMismatchError, CollectiveTimeoutError

    comm = dist.get_communicator()
    r, n = comm.rank, comm.size
    ok: dict[str, object] = {}

    big = _rank_data(r, BIG)
    out = comm.allreduce(big, op="sum")
    ok["sum_big_inplace"] = out is big
    every = _ordered([_rank_data(q, BIG) for q in range(n)])
    ok["sum_big_bitwise"] = bool(np.array_equal(big, every))

    huge = _rank_data(r, HUGE)
    comm.allreduce([huge], op="sum")
    every = _ordered([_rank_data(q, HUGE) for q in range(n)])
    ok["sum_huge_bitwise"] = bool(np.array_equal(huge, every))

    small = [np.arange(5, dtype="int64") * (r + 1), np.full((2, 3), r, "float64")]
    comm.allreduce(small, op="max")
    ok["max_small"] = small[0].tolist() == (np.arange(5) * n).tolist() and small[1].max() == n - 1
    mean = _rank_data(r, HUGE, "float64")
    comm.allreduce([mean], op="mean")
    expect = _ordered([_rank_data(q, HUGE, "float64") for q in range(n)]) / n
    ok["mean_big"] = float(np.abs(mean - expect).max())
    low = np.array([r + 1.0, -r], "float32")
    ok["min_small"] = comm.allreduce(low, op="min").tolist() == [1.0, -(n - 1)]

    half = _rank_data(r, HUGE)
    comm.allreduce(half, op="sum", compression="float16")
    expect = _ordered([_rank_data(q, HUGE).astype("float16").astype("float32") for q in range(n)])
    ok["fp16_bitwise"] = bool(np.array_equal(half, expect))

    flat = np.concatenate([_rank_data(r, BIG), _rank_data(r, 10)])
    handles = [comm.allreduce_async(flat[:BIG]), comm.allreduce_async(flat[BIG:], op="sum")]
    comm.barrier()
    for h in handles:
        h.wait()
    ok["async"] = bool(
        np.array_equal(flat[:BIG], _ordered([_rank_data(q, BIG) for q in range(n)]))
        and np.array_equal(flat[BIG:], _ordered([_rank_data(q, 10) for q in range(n)]))
    )

    arrays = [_rank_data(r, BIG), np.full(3, r, "int32")]
    comm.broadcast(arrays, root=n - 1)
    ok["bcast_arrays"] = bool(
        np.array_equal(arrays[0], _rank_data(n - 1, BIG)) and arrays[1].tolist() == [n - 1] * 3
    )
    ok["bcast_object"] = comm.broadcast({"a": [1, 2], "r": r}, root=1) == {"a": [1, 2], "r": 1}
    parts = comm.allgather(np.full((r + 1, 2), r, "float32"))
    ok["allgather"] = [p.shape for p in parts] == [(q + 1, 2) for q in range(n)] and all(
        (p == q).all() and p.flags.writeable for q, p in enumerate(parts)
    )
    bigparts = comm.allgather(_rank_data(r, BIG))
    ok["allgather_big"] = all(np.array_equal(p, _rank_data(q, BIG)) for q, p in enumerate(bigparts))
    ok["allgather_object"] = comm.allgather_object({"r": r}) == [{"r": q} for q in range(n)]

    try:
        comm.allreduce(np.zeros(4 if r != n - 1 else 5, "float32"))
        ok["mismatch"] = "no error"
    except CollectiveMismatchError as e:
        ok["mismatch"] = (e.disagreeing_ranks, "float32[5]" in str(e))
    ok["after_mismatch"] = comm.allreduce(np.ones(3, "float32")).tolist() == [n] * 3
    ok["topology"] = (comm.local_rank, comm.local_size, comm.backend)
    everyone = comm.allgather_object(ok)

    try:  # the same over the transport of large buffers (shared memory on one node)
        comm.allreduce(np.zeros(BIG if r != n - 1 else BIG + 1, "float32"))
        ok["mismatch_big"] = "no error"
    except CollectiveMismatchError as e:
        ok["mismatch_big"] = (e.disagreeing_ranks, f"float32[{BIG + 1}]" in str(e))
    ok["after_mismatch_big"] = bool((comm.allreduce(np.ones(BIG, "float32")) == n).all())
    ok["transport"] = comm.allreduce_transport
    everyone = comm.allgather_object(ok)

    # Last: rank 1 skips a barrier (or a large all-reduce); the others time out naming it.
    timeout = None
    if r != 1:
        comm.timeout = 1.0
        start = time.monotonic()
        try:
            if config and config.get("timeout_in") == "allreduce":
                comm.allreduce(np.ones(BIG, "float32"))
            else:
                comm.barrier()
        except CollectiveTimeoutError as e:
            timeout = (e.missing_ranks, time.monotonic() - start, str(e))
    return {"ranks": everyone, "timeout": timeout}


def stall_job(config):
    """Rank 1 is 3 s late to a barrier; with a 1 s stall window the others log who is missing."""
    import logging

    import distkeras.distributed as dist

    comm = dist.get_communicator()
    comm.stall_warning = 1.0
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("distkeras.distributed")
    logger.addHandler(handler)
    try:
        comm.barrier()
        if comm.rank == 1:
            time.sleep(3)
        comm.barrier()
        comm.barrier()
    finally:
        logger.removeHandler(handler)
    return comm.allgather_object({"warnings": records, "slowest": comm.slowest_interval})


def shm_stall_job(config):
    """Rank 1 is 3 s late to a large all-reduce (the shared-memory path); with a 1 s
    stall window the others log that rank 1 has not arrived."""
    import logging

    import distkeras.distributed as dist

    comm = dist.get_communicator()
    comm.stall_warning = 1.0
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("distkeras.distributed")
    logger.addHandler(handler)
    big = np.full(HUGE, comm.rank + 1.0, dtype=np.float32)
    try:
        comm.barrier()
        if comm.rank == 1:
            time.sleep(3)
        comm.allreduce([big], op="sum")
        comm.barrier()
    finally:
        logger.removeHandler(handler)
    total = float(sum(range(1, comm.size + 1)))
    return comm.allgather_object(
        {
            "warnings": records,
            "transport": comm.allreduce_transport,
            "correct": bool((big == total).all()),
        }
    )


def failing_job(config):
    """Rank 1 raises in the middle of training; rank 0 is in a collective by then."""
    import distkeras.distributed as dist
    from distkeras import callbacks

    comm = dist.get_communicator()
    x, y = make_data()
    model = make_model(3)

    def boom(batch, logs):
        if comm.rank == 1 and batch == 2:
            raise ValueError("boom on purpose")

    cbs = [callbacks.LambdaCallback(on_train_batch_end=boom)]
    model.fit(x, y, batch_size=20, epochs=50, verbose=0, callbacks=cbs)
    return "finished"


def recovery_job(config):
    """SGD fit with per-epoch checkpoints; rank 1 waits to be killed after epoch 2 of attempt 0."""
    from distkeras import callbacks
    from distkeras.distributed.ray import get_context

    ctx = get_context()
    x, y = make_data()
    model = make_model(3 + 1000 * ctx.rank, optimizer="sgd")
    epochs = config["epochs"]
    ckpt = config["checkpoint_dir"]

    class KillPoint(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if ctx.attempt == 0 and ctx.rank == 1 and epoch == 1:
                path = os.path.join(ckpt, "victim.pid")
                with open(path + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.replace(path + ".tmp", path)
                time.sleep(60)  # the test kills this process

    if config.get("manual"):  # without BackupAndRestore: weights per epoch, SGD is stateless
        saved = sorted(
            int(name.split("-")[1].split(".")[0])
            for name in os.listdir(ckpt)
            if name.startswith("weights-")
        )
        initial = saved[-1] if saved else 0
        if initial:
            if not model.built:
                model(x[:1])
            model.load_weights(os.path.join(ckpt, f"weights-{initial}.dkw"))

        def save(epoch, logs):
            # Every rank calls it: rank 0 writes (atomically; the epoch is in the name)
            # and every rank returns once the file is in place.
            model.save_weights(os.path.join(ckpt, f"weights-{epoch + 1}.dkw"))

        cbs = [callbacks.LambdaCallback(on_epoch_end=save), KillPoint()]
        model.fit(
            x, y, batch_size=20, epochs=epochs, verbose=0, callbacks=cbs, initial_epoch=initial
        )
    else:
        cbs = [callbacks.BackupAndRestore(ckpt), KillPoint()]
        model.fit(x, y, batch_size=20, epochs=epochs, verbose=0, callbacks=cbs)
    return {"weights": model.get_weights(), "attempt": ctx.attempt}
