"""Everything an exact resume needs, captured into and restored from one container.

A training state holds the weights, the optimizer variables (slots, iteration
count, learning rate), the metric accumulators of the running epoch, every
random stream (the global one and each layer's, per rank), the data cursor
(epoch, next step) and sampler seed, and the state of every callback that has
one (EarlyStopping, ReduceLROnPlateau, History, ...).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from distkeras.backend import to_numpy
from distkeras.backend.random import global_seed_generator
from distkeras.models.saving import _check_and_assign, weight_paths


def _split_arrays(value: Any, prefix: str, arrays: list) -> Any:
    """Replaces NumPy arrays inside plain data by references stored in `arrays`."""
    if isinstance(value, np.ndarray) or hasattr(value, "__array_priority__"):
        path = f"{prefix}/{len(arrays)}"
        arrays.append((path, np.asarray(to_numpy(value))))
        return {"__array__": path}
    if isinstance(value, dict):
        return {k: _split_arrays(v, prefix, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(v, prefix, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join_arrays(value: Any, arrays: dict) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return np.array(arrays[value["__array__"]])
        return {k: _join_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, arrays) for v in value]
    return value


def capture(model: Any, callbacks: list, epoch: int, step: int, seed: int, comm: Any):
    """(arrays, metadata) of the full training state at cursor (epoch, next step)."""
    arrays: list[tuple[str, np.ndarray]] = [
        (f"model/{p}", v.numpy()) for p, v in weight_paths(model)
    ]
    opt = model.optimizer
    if getattr(opt, "built", False):
        store: dict = {}
        opt.save_own_variables(store)
        arrays += [(f"optimizer/vars/{k}", store[k]) for k in sorted(store, key=int)]
    metric_vars = [v for m in model.metrics for v in m.variables]
    # Metric accumulators are per rank (summed across ranks only at epoch end):
    # keep every rank's, gathered exactly (float32 -> float64 is lossless).
    local = np.concatenate(
        [np.ravel(v.numpy()).astype(np.float64) for v in metric_vars] or [np.zeros(0)]
    )
    per_rank = comm.allgather(local[None, :]) if comm.size > 1 else [local[None, :]]
    for r, flat in enumerate(per_rank):
        arrays.append((f"metrics/rank{r}", np.asarray(flat).reshape(-1)))
    cb_states = [
        _split_arrays(cb.get_state(), f"callbacks/{i}", arrays) for i, cb in enumerate(callbacks)
    ]
    rng = json.dumps({"global": global_seed_generator().get_state(), "layers": model.rng_states()})
    per_rank = comm.allgather_object(rng) if comm.size > 1 else [rng]
    meta = {
        "epoch": int(epoch),
        "step": int(step),
        "seed": int(seed),
        "world_size": comm.size,
        "rng": per_rank,
        # JSON keeps inf/nan (EarlyStopping's initial best) that msgpack maps would too,
        # and big integers that msgpack cannot.
        "callbacks": json.dumps(cb_states),
        "num_metric_vars": len(metric_vars),
    }
    return arrays, meta


def restore(model: Any, callbacks: list, header: dict, arrays: dict, comm: Any, path: str) -> dict:
    """Loads weights, optimizer state, RNG streams and callback states; returns the metadata.

    Metric accumulators are returned under 'metric_arrays' for the trainer to
    apply once its metrics exist.
    """
    meta = header.get("metadata") or {}
    model_arrays = {k[len("model/") :]: a for k, a in arrays.items() if k.startswith("model/")}
    _check_and_assign(weight_paths(model), model_arrays, path, "checkpoint")
    opt_arrays = {
        k[len("optimizer/vars/") :]: np.array(a)
        for k, a in arrays.items()
        if k.startswith("optimizer/vars/")
    }
    if opt_arrays:
        model.optimizer.build(model.trainable_variables)
        model.optimizer.load_own_variables(opt_arrays)
    ranks = meta.get("rng") or []
    if ranks:
        mine = ranks[comm.rank] if comm.rank < len(ranks) else ranks[0]
        rng = json.loads(mine)
        global_seed_generator().set_state(rng["global"])
        model.set_rng_states(rng["layers"])
    states = json.loads(meta.get("callbacks", "[]"))
    for cb, state in zip(callbacks, states):
        if state:
            cb.set_state(_join_arrays(state, arrays))
    meta = dict(meta)
    saved = [
        np.asarray(arrays[k])
        for k in sorted(
            (k for k in arrays if k.startswith("metrics/rank")), key=lambda k: int(k[12:])
        )
    ]
    if saved and int(meta.get("world_size", 1)) == comm.size:
        meta["metric_flat"] = saved[comm.rank]
    elif saved:
        # Another world size: sums are what the ranks reduce, so rank 0 takes them all.
        total = np.sum(saved, axis=0)
        meta["metric_flat"] = total if comm.rank == 0 else np.zeros_like(total)
    else:
        meta["metric_flat"] = None
    return meta
