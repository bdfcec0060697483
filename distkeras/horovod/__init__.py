"""A Horovod-compatible API: run `horovod.keras` scripts on distkeras.

```python
import distkeras as keras
import distkeras.horovod as hvd        # was: import horovod.keras as hvd

hvd.init()
opt = keras.optimizers.Adam(0.001 * hvd.size())
opt = hvd.DistributedOptimizer(opt)
model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
callbacks = [
    hvd.callbacks.BroadcastGlobalVariablesCallback(0),
    hvd.callbacks.MetricAverageCallback(),
]
if hvd.rank() == 0:
    callbacks.append(keras.callbacks.ModelCheckpoint("ckpt.weights.h5", save_weights_only=True))
model.fit(x_shard, y_shard, batch_size=64, callbacks=callbacks, verbose=hvd.rank() == 0)
```

Launch with `mpirun -n N`, `distkeras-run -np N` (MPI, or `--backend ray`).

Horovod's model, which `hvd.init()` switches on for the whole process: each
rank is an independent Keras process. `fit` trains on the data this rank is
given, whole, with the batch size it is given (no sharding by rank, no
reduction of the logs), callbacks run on every rank, and `model.save` /
`save_weights` / `ModelCheckpoint` write from the rank that calls them with
no collective, so `if hvd.rank() == 0: model.save(...)` works (every rank
saving the same path would each write it). Ranks meet only in the
`DistributedOptimizer` (gradients averaged before every update), the
callbacks of `hvd.callbacks`, and the collectives (`allreduce`, `broadcast`,
`allgather`, `broadcast_object`, `allgather_object`, `join`, `barrier`).
Without `hvd.init()` distkeras's own data-parallel `fit` applies instead.

Objects travel as msgpack, not pickle: `broadcast_object` carries plain
data. Not offered (a clear error names them): `Adasum`, process sets,
MPI sub-communicators, custom compressors, `alltoall`, `reducescatter`.
"""

from __future__ import annotations

from typing import Any

from distkeras.horovod import callbacks
from distkeras.horovod._ops import (
    Adasum,
    Average,
    Compression,
    Max,
    Min,
    Sum,
    allgather,
    allgather_object,
    allreduce,
    barrier,
    broadcast,
    broadcast_object,
    broadcast_variables,
    cross_rank,
    cross_size,
    grouped_allreduce,
    init,
    is_homogeneous,
    is_initialized,
    join,
    local_rank,
    local_size,
    mpi_threads_supported,
    rank,
    shutdown,
    size,
)
from distkeras.horovod.optimizer import DistributedOptimizer, distribute_in_place


def load_model(
    filepath: str,
    custom_optimizers: list | None = None,
    custom_objects: dict | None = None,
    compression: Any = Compression.none,
) -> Any:
    """Loads a model saved by `model.save` and wraps its optimizer, state kept, in a
    DistributedOptimizer (Horovod's `hvd.load_model`).

    Args:
        filepath: The `.keras` file.
        custom_optimizers: Optimizer classes to register as custom objects.
        custom_objects: Other custom objects, as `load_model`.
        compression: As `DistributedOptimizer`.
    """
    from distkeras.models import load_model as _load  # noqa: PLC0415

    objects = dict(custom_objects or {})
    for cls in custom_optimizers or []:
        objects[cls.__name__] = cls
    model = _load(filepath, custom_objects=objects or None)
    if getattr(model, "optimizer", None) is not None:
        distribute_in_place(model.optimizer, compression)
    return model


def alltoall(*args: Any, **kwargs: Any) -> Any:
    """Not offered."""
    raise NotImplementedError("hvd.alltoall is not offered by distkeras.horovod.")


def reducescatter(*args: Any, **kwargs: Any) -> Any:
    """Not offered."""
    raise NotImplementedError("hvd.reducescatter is not offered by distkeras.horovod.")


__all__ = [
    "Adasum",
    "Average",
    "Compression",
    "DistributedOptimizer",
    "Max",
    "Min",
    "Sum",
    "allgather",
    "allgather_object",
    "allreduce",
    "alltoall",
    "barrier",
    "broadcast",
    "broadcast_object",
    "broadcast_variables",
    "callbacks",
    "cross_rank",
    "cross_size",
    "grouped_allreduce",
    "init",
    "is_homogeneous",
    "is_initialized",
    "join",
    "load_model",
    "local_rank",
    "local_size",
    "mpi_threads_supported",
    "rank",
    "reducescatter",
    "shutdown",
    "size",
]
