"""Checkpoints for custom training loops: `save(state, directory)` / `restore(directory, state)`.

Same file format and guarantees as `callbacks.BackupAndRestore`: one msgpack
container per checkpoint with per-array checksums, written atomically, a
`latest` pointer, the newest `keep` kept, and a fall back (with a warning) to
an older checkpoint when the newest is corrupt.

Example:
    state = {"model": model, "optimizer": opt, "step": step}
    distkeras.checkpoint.save(state, "ckpts")
    ...
    restored = distkeras.checkpoint.restore("ckpts", {"model": model, "optimizer": opt})
    step = restored["step"]
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from distkeras.backend import to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.backend.random import global_seed_generator
from distkeras.layers.layer import Layer
from distkeras.models.saving import (
    LAYER_ORDER,
    _check_and_assign,
    is_legacy_order,
    load_optimizer_arrays,
    set_rng_states_in_order,
    trainable_variables_in_order,
    weight_paths,
)
from distkeras.optimizers import Optimizer
from distkeras.saving.checkpoint_manager import CheckpointManager
from distkeras.saving.file_format import FileFormatError
from distkeras.saving.state_schema import RNG_STATE, DictOf, Str, check_rng_states, loads_json


def save(state: dict, directory: str | os.PathLike, step: int | None = None, keep: int = 3) -> str:
    """Writes a checkpoint of `state`; returns its path.

    Args:
        state: Names mapped to models/layers (their weights and RNG streams),
            optimizers (their variables), arrays, or JSON-serializable values.
        directory: The checkpoint folder.
        step: The checkpoint number (the next free one when omitted).
        keep: How many of the newest checkpoints to keep.
    """
    if not isinstance(state, dict) or not state:
        raise ValueError(f"state must be a non-empty dict. Received: state={state!r}")
    manager = CheckpointManager(directory, keep=keep)
    arrays: list[tuple[str, np.ndarray]] = []
    kinds: dict[str, str] = {}
    values: dict[str, Any] = {}
    rng: dict[str, Any] = {"global": global_seed_generator().get_state()}
    for name, obj in state.items():
        if "/" in name:
            raise ValueError(f"State names cannot contain '/'. Received: {name!r}")
        if isinstance(obj, Layer):
            arrays += [(f"{name}/{p}", v.numpy()) for p, v in weight_paths(obj)]
            rng[name] = obj.rng_states()
            kinds[name] = "layer"
        elif isinstance(obj, Optimizer):
            store: dict = {}
            obj.save_own_variables(store)
            arrays += [(f"{name}/vars/{k}", store[k]) for k in sorted(store, key=int)]
            kinds[name] = "optimizer"
        elif isinstance(obj, (np.ndarray, Tensor)):
            arrays.append((name, np.asarray(to_numpy(obj))))
            kinds[name] = "array"
        else:
            try:
                json.dumps(obj)
            except TypeError as e:
                raise TypeError(
                    f"Cannot checkpoint {name!r}: not a model, optimizer, array or JSON value. "
                    f"Received: {type(obj).__name__}"
                ) from e
            values[name] = obj
            kinds[name] = "value"
    if step is None:
        existing = manager.checkpoints()
        step = existing[-1][0] + 1 if existing else 0
    meta = {"kinds": kinds, "values": json.dumps(values), "rng": json.dumps(rng), **LAYER_ORDER}
    return manager.save(int(step), arrays, meta)


def restore(directory: str | os.PathLike, state: dict | None = None) -> dict | None:
    """Loads the newest readable checkpoint; returns {name: value} or None if there is none.

    Models/layers and optimizers given in `state` are restored in place (shapes,
    dtypes and paths checked; an incompatible model is refused naming the first
    mismatching path); arrays and plain values are returned. Optimizers must be
    built (e.g. `optimizer.build(model.trainable_variables)`) first.
    """
    found = CheckpointManager(directory).restore()
    if found is None:
        return None
    path, header, arrays = found
    meta = header.get("metadata") or {}
    state = state or {}
    try:  # nothing from the file is trusted: check it before anything is applied
        kinds = DictOf(Str()).check(meta.get("kinds") or {}, "kinds")
        values = loads_json(meta.get("values", "{}"), "values")
        rng = loads_json(meta.get("rng", "{}"), "rng")
        if not isinstance(values, dict) or not isinstance(rng, dict):
            raise FileFormatError("fields 'values' and 'rng': expected JSON objects")
        for name, kind in kinds.items():
            if kind not in ("value", "array", "layer", "optimizer"):
                raise FileFormatError(f"field 'kinds.{name}': unknown kind {kind!r:.40}")
            if kind == "array" and name not in arrays:
                raise FileFormatError(f"field 'kinds.{name}': the file holds no array {name!r}")
            if kind == "layer" and isinstance(state.get(name), Layer) and name in rng:
                count = len(state[name].rng_states())
                rng[name] = check_rng_states(rng[name], count, f"rng.{name}")
        if "global" in rng:
            rng["global"] = RNG_STATE.check(rng["global"], "rng.global")
    except FileFormatError as e:
        raise FileFormatError(f"{path!r} is not a valid distkeras checkpoint: {e}") from e
    legacy = is_legacy_order(header)
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        prefix = f"{name}/"
        if kind == "value":
            out[name] = values.get(name)
        elif kind == "array":
            out[name] = np.array(arrays[name])
        elif name in state and kind == "layer":
            sub = {k[len(prefix) :]: a for k, a in arrays.items() if k.startswith(prefix)}
            pairs = weight_paths(state[name], legacy=legacy)
            _check_and_assign(pairs, sub, path, f"{name!r}")
            if name in rng:
                set_rng_states_in_order(state[name], rng[name], legacy)  # checked above
            out[name] = state[name]
        elif name in state and kind == "optimizer":
            opt = state[name]
            if not getattr(opt, "built", False):
                raise ValueError(
                    f"Optimizer {name!r} must be built before restoring it (call "
                    "optimizer.build(model.trainable_variables)). Received: an unbuilt optimizer"
                )
            store = {
                k[len(prefix) + 5 :]: np.array(a)
                for k, a in arrays.items()
                if k.startswith(prefix + "vars/")
            }
            load_optimizer_arrays(opt, None, store, path, _file_order(opt, state, legacy))
            out[name] = opt
    if "global" in rng:
        global_seed_generator().set_state(rng["global"])
    return out


def _file_order(optimizer: Any, state: dict, legacy: bool) -> list | None:
    """The variable order a legacy file saved `optimizer`'s slots in, or None.

    An optimizer built on a checkpointed model's `trainable_variables` was, in
    files written before functional models followed Keras 3's layer order,
    built on them in the earlier order.
    """
    if not legacy:
        return None
    built = [id(v) for v in optimizer._trainable_variables]
    for obj in state.values():
        if isinstance(obj, Layer) and [id(v) for v in obj.trainable_variables] == built:
            return trainable_variables_in_order(obj, legacy=True)
    return None
