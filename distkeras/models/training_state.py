"""Everything an exact resume needs, captured into and restored from one container.

A training state holds the weights, the optimizer variables (slots, iteration
count, learning rate), the metric accumulators of the running epoch, every
random stream (the global one and each layer's, per rank), the data cursor
(epoch, next step) and sampler seed, and the state of every callback that has
one (EarlyStopping, ReduceLROnPlateau, History, ...).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from distkeras.backend import to_numpy
from distkeras.backend.random import global_seed_generator
from distkeras.models.saving import (
    LAYER_ORDER,
    _check_and_assign,
    is_legacy_order,
    load_optimizer_arrays,
    set_rng_states_in_order,
    trainable_variables_in_order,
    weight_paths,
)
from distkeras.saving.file_format import FileFormatError
from distkeras.saving.state_schema import (
    RNG_STATE,
    Int,
    ListOf,
    Record,
    Str,
    check_fields,
    check_rng_states,
    loads_json,
)


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


def _join_arrays(value: Any, arrays: dict, field: str) -> Any:
    """Puts the file's arrays back where `_split_arrays` left references to them."""
    if isinstance(value, dict):
        if "__array__" in value:
            ref = value["__array__"]
            if len(value) != 1 or not isinstance(ref, str) or ref not in arrays:
                raise FileFormatError(f"field {field!r}: refers to a missing array {ref!r:.80}")
            return np.array(arrays[ref])
        return {k: _join_arrays(v, arrays, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, arrays, f"{field}[{i}]") for i, v in enumerate(value)]
    return value


# The training cursor and bookkeeping a backup's metadata holds (checked before use).
_CURSOR = {
    "epoch": Int(0, 2**62),
    "step": Int(0, 2**62),
    "seed": Int(0, 2**64 - 1),
    "world_size": Int(1, 2**24),
    "global_step": Int(0, 2**62),
    "num_metric_vars": Int(0, 2**31),
    "rng": ListOf(Str(1 << 24), max_len=2**24),
    "callbacks": Str(1 << 30),
}
_RNG = Record({"global": RNG_STATE, "layers": ListOf(RNG_STATE)})
_METRICS = re.compile(r"^metrics/rank(\d{1,8})$")


def cursor(header: dict, path: str) -> dict:
    """The checked cursor fields of a backup (epoch, step, seed, ...).

    Raises:
        FileFormatError: for a missing or mistyped field, naming the file.
    """
    meta = header.get("metadata") or {}
    try:
        return check_fields(
            _CURSOR,
            {k: meta[k] for k in _CURSOR if k in meta},
            "metadata",
            optional=("global_step", "num_metric_vars", "rng"),
        )
    except FileFormatError as e:
        raise FileFormatError(f"{path!r} is not a valid distkeras checkpoint: {e}") from e


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
        {
            "class": type(cb).__name__,
            "state": _split_arrays(cb.get_state(), f"callbacks/{i}", arrays),
        }
        for i, cb in enumerate(callbacks)
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
        **LAYER_ORDER,
    }
    return arrays, meta


def restore(model: Any, callbacks: list, header: dict, arrays: dict, comm: Any, path: str) -> dict:
    """Loads weights, optimizer state, RNG streams and callback states; returns the metadata.

    Everything is checked against its schema first (cursor, random streams,
    callback fields, metric accumulators, shapes); a tampered or corrupt file
    is refused with `FileFormatError` naming it and the field. Metric
    accumulators are returned under 'metric_flat' for the trainer to apply
    once its metrics exist.
    """
    meta = dict(header.get("metadata") or {})
    meta.update(cursor(header, path))
    model_arrays = {k[len("model/") :]: a for k, a in arrays.items() if k.startswith("model/")}
    legacy = is_legacy_order(header)
    pairs = weight_paths(model, legacy=legacy)
    _check_and_assign(pairs, model_arrays, path, "checkpoint", assign=False)
    try:
        rng, cb_states, metric_flat = _check_state(model, callbacks, meta, arrays, comm)
    except FileFormatError as e:
        raise FileFormatError(f"{path!r} is not a valid distkeras checkpoint: {e}") from e
    _check_and_assign(pairs, model_arrays, path, "checkpoint")
    opt_arrays = {
        k[len("optimizer/vars/") :]: a for k, a in arrays.items() if k.startswith("optimizer/vars/")
    }
    if opt_arrays:
        file_order = trainable_variables_in_order(model, legacy)
        load_optimizer_arrays(
            model.optimizer, model.trainable_variables, opt_arrays, path, file_order
        )
    if rng is not None:
        global_seed_generator().set_state(rng["global"])
        set_rng_states_in_order(model, rng["layers"], legacy)
    for cb, state in cb_states:
        cb.set_state(state)
    meta["metric_flat"] = metric_flat
    return meta


def _match_callbacks(callbacks: list, states: list) -> list:
    """(callback, saved state) pairs: the k-th saved state of a class goes to the k-th
    callback of that class in this run (a run may add or drop callbacks). Each state
    is then checked against its callback's schema."""
    if all(isinstance(e, dict) and "class" not in e for e in states):
        return list(zip(callbacks, states))  # a backup of an older release: by position
    by_class: dict[str, list] = {}
    for cb in callbacks:
        by_class.setdefault(type(cb).__name__, []).append(cb)
    pairs = []
    for i, entry in enumerate(states):
        if not isinstance(entry, dict) or set(entry) != {"class", "state"}:
            raise FileFormatError(f"field 'callbacks[{i}]': expected {{'class', 'state'}}")
        name = entry["class"]
        if not isinstance(name, str):
            raise FileFormatError(f"field 'callbacks[{i}].class': expected a string")
        queue = by_class.get(name)
        if queue:
            pairs.append((queue.pop(0), entry["state"]))
    return pairs


def _check_state(model: Any, callbacks: list, meta: dict, arrays: dict, comm: Any) -> tuple:
    """(rng, [(callback, state)], metric_flat), all checked; raises FileFormatError."""
    rng = None
    ranks = meta.get("rng") or []
    if ranks:
        mine = ranks[comm.rank] if comm.rank < len(ranks) else ranks[0]
        rng = _RNG.check(loads_json(mine, "rng"), "rng")
        check_rng_states(rng["layers"], len(model.rng_states()), "rng.layers")
    states = loads_json(meta.get("callbacks", "[]"), "callbacks")
    if not isinstance(states, list):
        raise FileFormatError("field 'callbacks': expected a list")
    cb_states = []
    for i, (cb, state) in enumerate(_match_callbacks(callbacks, states)):
        if state:
            where = f"callbacks[{i}]"
            joined = _join_arrays(state, arrays, where)
            try:
                cb_states.append((cb, cb.validate_state(joined)))
            except FileFormatError as e:
                raise FileFormatError(f"{where} ({type(cb).__name__}): {e}") from e
    saved = {}
    for k, a in arrays.items():
        m = _METRICS.match(k)
        if k.startswith("metrics/") and (m is None or a.ndim != 1 or a.dtype != np.float64):
            raise FileFormatError(f"array {k!r:.80}: not a metric accumulator (1-d float64)")
        if m is not None:
            saved[int(m.group(1))] = np.asarray(a)
    if not saved:
        return rng, cb_states, None
    if sorted(saved) != list(range(len(saved))) or len({a.size for a in saved.values()}) != 1:
        raise FileFormatError("arrays 'metrics/rank*': not one accumulator of one size per rank")
    if int(meta.get("world_size", 1)) == comm.size and len(saved) == comm.size:
        return rng, cb_states, saved[comm.rank]
    # Another world size: sums are what the ranks reduce, so rank 0 takes them all.
    total = np.sum([saved[r] for r in sorted(saved)], axis=0)
    return rng, cb_states, total if comm.rank == 0 else np.zeros_like(total)
