"""Checks distkeras.horovod's collectives and DistributedOptimizer; run under `mpirun -n N`.

Each rank prints 'ALL OK rank R' at the end; a failed check raises and the
fail-fast hook ends the job with the traceback.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import distkeras as keras
import distkeras.horovod as hvd
from distkeras.distributed import CollectiveMismatchError


def data(r: int, shape, dtype="float32") -> np.ndarray:
    rng = np.random.default_rng(500 + r)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-50, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def collectives(r: int, n: int) -> None:
    stack = np.stack([data(q, (4, 3)).astype(np.float64) for q in range(n)])
    x = data(r, (4, 3))
    out = hvd.allreduce(x)  # Average by default, a new array
    assert out is not x and out.shape == (4, 3) and out.dtype == np.float32
    assert (x == data(r, (4, 3))).all(), "the input must be left alone"
    np.testing.assert_allclose(out, stack.mean(0), rtol=1e-5)
    np.testing.assert_allclose(hvd.allreduce(x, op=hvd.Sum), stack.sum(0), rtol=1e-5)
    np.testing.assert_allclose(hvd.allreduce(x, average=False), stack.sum(0), rtol=1e-5)
    np.testing.assert_allclose(hvd.allreduce(x, op=hvd.Max), stack.max(0), rtol=1e-6)
    np.testing.assert_allclose(hvd.allreduce(x, op=hvd.Min), stack.min(0), rtol=1e-6)
    got = hvd.allreduce(x, op=hvd.Sum, prescale_factor=2.0, postscale_factor=0.5)
    np.testing.assert_allclose(got, stack.sum(0), rtol=1e-5)
    ints = hvd.allreduce(data(r, (5,), "int64"), op=hvd.Sum)
    assert ints.dtype == np.int64
    assert (ints == sum(data(q, (5,), "int64") for q in range(n))).all()
    # fp16 compression: every contribution rounded to float16 on the wire.
    wire = np.stack([data(q, (4, 3)).astype(np.float16).astype(np.float32) for q in range(n)])
    got = hvd.allreduce(x, compression=hvd.Compression.fp16)
    np.testing.assert_allclose(got, wire.sum(0) / n, rtol=1e-6)
    assert got.dtype == np.float32
    assert float(hvd.allreduce(float(r))) == (n - 1) / 2  # a Python number
    try:
        hvd.allreduce(x, op=hvd.Adasum)
        raise AssertionError("Adasum must be refused")
    except NotImplementedError as e:
        assert "Adasum" in str(e)
    # A size mismatch is reported on every rank (no hang).
    try:
        hvd.allreduce(np.ones(3 + r, dtype="float32"))
        raise AssertionError("a size mismatch must raise")
    except CollectiveMismatchError as e:
        assert "different sizes" in str(e)

    b = hvd.broadcast(data(r, (2, 2)), root_rank=n - 1)
    assert (b == data(n - 1, (2, 2))).all()
    g = hvd.allgather(np.full((r + 1, 2), r, dtype="int32"))  # uneven first dims
    assert g.shape == (n * (n + 1) // 2, 2)
    assert g[:, 0].tolist() == [q for q in range(n) for _ in range(q + 1)]
    obj = hvd.broadcast_object({"epoch": 3, "r": r} if r == 0 else None, root_rank=0)
    assert obj == {"epoch": 3, "r": 0}
    assert hvd.allgather_object({"r": r}) == [{"r": q} for q in range(n)]
    assert hvd.cross_size() == 1 and hvd.cross_rank() == 0 and hvd.is_homogeneous()
    assert hvd.local_rank() == r and hvd.local_size() == n


def join_uneven(r: int, n: int) -> None:
    # Rank q has q + 1 tensors to reduce; the ranks out of data join and shadow the others.
    results = [hvd.allreduce(np.full(3, 10.0 * (q + 1) + r)) for q in range(r + 1)]
    last = hvd.join()
    assert last == n - 1, last
    for q, got in enumerate(results):
        active = [p for p in range(n) if p >= q]  # ranks still reducing in round q
        want = np.mean([10.0 * (q + 1) + p for p in active])
        np.testing.assert_allclose(got, np.full(3, want))


def optimizer_apply(r: int, n: int) -> None:
    grads_of = [np.full((2, 3), float(q + 1), dtype="float32") for q in range(n)]
    mean = sum(grads_of) / n
    for op, want in ((hvd.Average, mean), (hvd.Sum, mean * n)):
        v = keras.Variable(np.zeros((2, 3), dtype="float32"))
        opt = hvd.DistributedOptimizer(keras.optimizers.SGD(0.5), op=op)
        opt.apply([grads_of[r]], [v])
        np.testing.assert_allclose(v.numpy(), -0.5 * want, rtol=1e-6)
    # Two backward passes per step: summed locally (averaged with the flag), then reduced.
    for average_passes in (False, True):
        v = keras.Variable(np.zeros((2, 3), dtype="float32"))
        opt = hvd.DistributedOptimizer(
            keras.optimizers.SGD(1.0),
            backward_passes_per_step=2,
            average_aggregated_gradients=average_passes,
        )
        opt.apply([grads_of[r]], [v])
        assert (v.numpy() == 0).all() and int(opt.iterations.numpy()) == 0
        opt.apply([2 * grads_of[r]], [v])
        total = 3 * mean / (2 if average_passes else 1)
        np.testing.assert_allclose(v.numpy(), -total, rtol=1e-6)
        assert int(opt.iterations.numpy()) == 1


def per_process_models(r: int, n: int) -> None:
    # fit uses this rank's data whole (no sharding) and its logs are its own.
    keras.utils.set_random_seed(1)
    x = data(r, (8 * (r + 1), 4))
    y = data(r, (8 * (r + 1), 1))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=hvd.DistributedOptimizer(keras.optimizers.SGD(0.1)), loss="mse")
    seen = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    # Uneven data: rank q takes q + 1 steps, then joins to shadow the others' steps.
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[counter])
    assert len(seen) == r + 1, seen
    hvd.join()
    # Horovod's checkpoint idiom: rank 0 alone saves (no collective, no hang).
    folder = tempfile.mkdtemp()
    if hvd.rank() == 0:
        model.save(os.path.join(folder, "m.keras"))
        assert os.path.exists(os.path.join(folder, "m.keras"))
    hvd.barrier()
    # Horovod's resume idiom: rank 0 loads, hvd.load_model keeps the optimizer state.
    if hvd.rank() == 0:
        loaded = hvd.load_model(os.path.join(folder, "m.keras"))
        assert loaded.optimizer.__class__.__name__ == "SGD"
        assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())


def main() -> None:
    hvd.init()
    r, n = hvd.rank(), hvd.size()
    assert n == int(os.environ["OMPI_COMM_WORLD_SIZE"]) and r == int(
        os.environ["OMPI_COMM_WORLD_RANK"]
    )
    collectives(r, n)
    join_uneven(r, n)
    optimizer_apply(r, n)
    per_process_models(r, n)
    print(f"ALL OK rank {r}", flush=True)


if __name__ == "__main__":
    main()
