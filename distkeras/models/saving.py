"""Weight files and whole-model files (config + weights + compile config + optimizer state).

Weight paths are structural, as in Keras 3: a layer is named by its class
(`dense`, `dense_1`, ...) in the order its parent holds it, so a fresh model of
the same architecture loads a file whatever its layer names.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np

from distkeras.layers.core import InputLayer
from distkeras.layers.layer import Layer
from distkeras.saving.file_format import FileFormatError, read_container, write_container
from distkeras.saving.limits import allocation_budget, check_nesting
from distkeras.saving.state_schema import check_rng_states, loads_json
from distkeras.utils.naming import to_snake_case

# In the metadata of every file written since functional models hold their layers in
# Keras 3's order. Files without it were keyed by the earlier (call) order.
LAYER_ORDER = {"layer_order": "keras3"}


def is_legacy_order(header: dict) -> bool:
    """Whether a file's weights, slots and random streams follow the earlier layer order."""
    meta = header.get("metadata") or {}
    return meta.get("layer_order") != LAYER_ORDER["layer_order"]


def _children(layer: Layer, legacy: bool) -> list[Layer]:
    if legacy and hasattr(layer, "_legacy_layers"):
        return layer._legacy_layers()
    return layer._layers


def weight_paths(layer: Layer, prefix: str = "", legacy: bool = False) -> list[tuple[str, Any]]:
    """(structural path, variable) for every weight of `layer` and its sublayers.

    Args:
        layer: The layer or model.
        prefix: Prepended to every path.
        legacy: Number the sublayers of functional models in the order of
            files written before they followed Keras 3's order.
    """
    out: list[tuple[str, Any]] = []
    own = layer._trainable_variables + layer._non_trainable_variables
    for i, v in enumerate(own):
        out.append((f"{prefix}vars/{i}", v))
    used: dict[str, int] = {}
    for child in _children(layer, legacy):
        if isinstance(child, InputLayer):
            continue
        base = to_snake_case(type(child).__name__)
        n = used.get(base, 0)
        used[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        out.extend(weight_paths(child, f"{prefix}layers/{name}/", legacy))
    return out


def _flatten_layers(layer: Layer, legacy: bool) -> list[Layer]:
    """`layer._flatten_layers()`, optionally in the earlier order."""
    if not legacy:
        return layer._flatten_layers()
    out, seen, stack = [], set(), [layer]
    while stack:
        item = stack.pop()
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
            stack.extend(reversed(_children(item, legacy)))
    return out


def trainable_variables_in_order(model: Layer, legacy: bool) -> list:
    """`model.trainable_variables`, optionally in the earlier order."""
    if not legacy:
        return model.trainable_variables
    if not model.trainable:
        return []
    out, seen = [], set()
    for layer in _flatten_layers(model, legacy):
        for v in layer._trainable_variables + layer._non_trainable_variables:
            if id(v) not in seen and v.trainable:
                seen.add(id(v))
                out.append(v)
    return out


def set_rng_states_in_order(model: Layer, states: list, legacy: bool) -> None:
    """`model.set_rng_states(states)`, for states listed in the earlier order when `legacy`."""
    if not legacy:
        model.set_rng_states(states)
        return
    gens = [g for layer in _flatten_layers(model, legacy) for g in layer._seed_generators]
    for g, state in zip(gens, states):
        g.set_state(state)


def reorder_optimizer_store(optimizer: Any, file_order: list, variables: list, store: dict) -> dict:
    """The saved optimizer variables of `file_order`'s slot layout, in `variables`' layout.

    An optimizer lays its slots out in the order of the variables it was built
    on. Two throwaway copies built on stand-ins of `file_order` and of
    `variables` tell, by slot name, where each saved variable goes. A
    custom optimizer whose slot names don't tell them apart keeps the store as
    it is, with a warning.
    """
    if [id(v) for v in file_order] == [id(v) for v in variables]:
        return store
    if sorted(id(v) for v in file_order) != sorted(id(v) for v in variables):
        return store  # not the same variables: the positional checks decide
    from distkeras.backend.autodiff import Variable  # noqa: PLC0415

    stand_in = {}
    for k, v in enumerate(variables):
        probe = Variable(np.zeros(v.shape, dtype=v.dtype), dtype=v.dtype, name=f"v{k}")
        probe.path = f"distkeras_order_probe_{k}"
        stand_in[id(v)] = probe
    names = []
    try:
        for order in (file_order, variables):
            copy = type(optimizer).from_config(optimizer.get_config())
            copy.build([stand_in[id(v)] for v in order])
            names.append([str(v.name) for v in copy._variables])
    except Exception as e:  # noqa: BLE001 - a custom optimizer that cannot be copied
        names = [[], [repr(e)]]
    old, new = names
    if len(set(old)) != len(old) or sorted(old) != sorted(new) or len(old) != len(store):
        warnings.warn(
            f"Optimizer '{optimizer.name}': its state was saved before functional models "
            "followed Keras 3's layer order, and its slots cannot be matched to the "
            "variables by name; they are loaded by position.",
            stacklevel=3,
        )
        return store
    where = {name: i for i, name in enumerate(old)}
    return {str(j): store[str(where[name])] for j, name in enumerate(new)}


def _check_and_assign(
    pairs: list[tuple[str, Any]], arrays: dict, path: str, what: str, assign: bool = True
) -> None:
    expected = dict(pairs)
    missing = [p for p in expected if p not in arrays]
    if missing:
        raise ValueError(
            f"Cannot load {what} from {path!r}: the file has no value for {missing[0]!r} "
            f"({len(missing)} missing). Received: a file with {len(arrays)} arrays"
        )
    extra = [p for p in arrays if p not in expected]
    if extra:
        raise ValueError(
            f"Cannot load {what} from {path!r}: the file has {extra[0]!r}, which this model "
            f"does not have ({len(extra)} unexpected). The architectures differ."
        )
    for p, v in pairs:
        a = arrays[p]
        if tuple(a.shape) != v.shape or a.dtype.name != v.dtype:
            raise ValueError(
                f"Cannot load {what} from {path!r}: {p!r} has shape {tuple(a.shape)} and dtype "
                f"{a.dtype.name} in the file, but shape {v.shape} and dtype {v.dtype} in the model."
            )
    if assign:
        for p, v in pairs:
            v.assign(arrays[p])


def save_weights(
    model: Any,
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
    make_dirs: bool = False,
    communicator: Any = None,
) -> None:
    """Writes the model's weights to `path` (atomically), once per job.

    In a distributed run every rank calls it: rank 0 writes, and every rank
    returns when the file is in place, or raises rank 0's error.

    Args:
        model: A built model.
        path: The file.
        overwrite: False raises `FileExistsError` when `path` exists.
        make_dirs: Create the missing folders of `path` first.
        communicator: The job's communicator; defaults to the model's.
    """
    _ensure_built(model, "save_weights")
    path = os.fspath(path)

    def write() -> None:
        _prepare_path(path, overwrite, make_dirs)
        write_container(
            path,
            [(p, v.numpy()) for p, v in weight_paths(model)],
            kind="weights",
            metadata={"model_class": type(model).__name__, **LAYER_ORDER},
        )

    _write_once(model, communicator, write, f"save_weights({path!r})")


def _communicator_of(model: Any, given: Any) -> Any:
    """`given`, else the model's communicator (the process-wide one)."""
    if given is not None:
        return given
    find = getattr(model, "_communicator", None)
    if callable(find):
        return find()
    from distkeras import distributed  # noqa: PLC0415

    return distributed.model_communicator()


def _prepare_path(path: str, overwrite: bool, make_dirs: bool) -> None:
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False")
    folder = os.path.dirname(path)
    if make_dirs and folder:
        os.makedirs(folder, exist_ok=True)


def _write_once(model: Any, communicator: Any, write: Any, what: str) -> None:
    """Runs `write` on the coordinator only; every rank returns when the file is durable.

    `write_container` fsyncs the file and renames it into place before rank 0
    answers the broadcast that the other ranks wait in, so no rank returns
    before the file can be loaded (one file per save, however many ranks).
    """
    from distkeras.distributed.coordinator import on_coordinator  # noqa: PLC0415

    comm = _communicator_of(model, communicator)
    outcome = on_coordinator(comm, write, what)
    if outcome["what"] != what:
        warnings.warn(
            f"{what} on rank {comm.rank}: in a distributed run only the coordinator "
            f"writes, and rank 0 ran {outcome['what']}. Give every rank the same path.",
            stacklevel=3,
        )


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Loads weights written by `save_weights` or `save`, checking every path, shape and dtype."""
    _ensure_built(model, "load_weights")
    header, arrays = read_container(path)
    if header.get("kind") not in ("weights", "model", "checkpoint"):
        raise FileFormatError(f"{os.fspath(path)!r} holds {header.get('kind')!r}, not weights")
    model_arrays = {k[len("model/") :]: a for k, a in arrays.items() if k.startswith("model/")}
    if header.get("kind") == "weights":
        model_arrays = arrays
    pairs = weight_paths(model, legacy=is_legacy_order(header))
    _check_and_assign(pairs, model_arrays, os.fspath(path), "weights")


def _ensure_built(model: Any, what: str) -> None:
    if not model.built:
        raise ValueError(
            f"{what} needs a built model (call it on data, give the first layer an "
            "input_shape, or call build()). Received: an unbuilt model"
        )


def save_model(
    model: Any,
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
    make_dirs: bool = False,
    communicator: Any = None,
) -> None:
    """Writes config, weights, compile config, optimizer state and RNG states to one file.

    In a distributed run every rank calls it: the optimizer's sharded slots
    are gathered first (a collective), then rank 0 writes, and every rank
    returns when the file is in place, or raises rank 0's error.

    Args:
        model: A built model.
        path: The file.
        overwrite: False raises `FileExistsError` when `path` exists.
        make_dirs: Create the missing folders of `path` first.
        communicator: The job's communicator; defaults to the model's.
    """
    from distkeras.saving import serialize_keras_object  # noqa: PLC0415

    _ensure_built(model, "save")
    path = os.fspath(path)
    opt = getattr(model, "optimizer", None)
    if opt is not None and hasattr(opt, "sync_shards"):
        opt.sync_shards()  # every rank: the slots each rank updated are made whole

    def write() -> None:
        _prepare_path(path, overwrite, make_dirs)
        config = serialize_keras_object(model)  # includes compile_config once compiled
        arrays = [(f"model/{p}", v.numpy()) for p, v in weight_paths(model)]
        if opt is not None and getattr(opt, "built", False):
            store: dict = {}
            opt.save_own_variables(store)
            arrays += [(f"optimizer/vars/{k}", store[k]) for k in sorted(store, key=int)]
        write_container(
            path,
            arrays,
            kind="model",
            config=config,
            metadata={"rng_states": json.dumps(model.rng_states()), **LAYER_ORDER},
        )

    _write_once(model, communicator, write, f"save({path!r})")


def load_model(
    path: str | os.PathLike,
    custom_objects: dict | None = None,
    compile: bool = True,  # noqa: A002 - Keras's argument name
    safe_mode: bool = True,
) -> Any:
    """Rebuilds a model saved by `model.save(path)`.

    Nothing the file names is imported or run in safe mode (see SECURITY.md),
    and the model is refused before its weights are allocated if they would
    exceed what the file holds.

    Args:
        path: The file.
        custom_objects: Extra classes/functions by name.
        compile: Restore the compile config and optimizer state.
        safe_mode: False lets Lambda layers holding Python bytecode, or
            functions of modules the file names, load (trusted files only).

    Raises:
        FileFormatError: for a file that is not a valid model file, naming it.
    """
    from distkeras.models import model_from_config  # noqa: PLC0415
    from distkeras.saving.serialization_lib import SafeModeScope  # noqa: PLC0415

    path = os.fspath(path)
    header, arrays = read_container(path)
    if header.get("kind") != "model" or not isinstance(header.get("config"), dict):
        raise FileFormatError(
            f"{path!r} does not hold a whole model (kind={header.get('kind')!r}); "
            "use load_weights for weight files"
        )
    config = dict(header["config"])
    compile_config = config.pop("compile_config", None)
    model_arrays = {k[len("model/") :]: a for k, a in arrays.items() if k.startswith("model/")}
    held = sum(int(a.size) for a in model_arrays.values())
    try:
        check_nesting(config, f"The model config of {path!r}")
        budget = allocation_budget(
            held, repr(path), f"The file holds only {held:,} weight elements."
        )
        with SafeModeScope(safe_mode), budget:
            model = model_from_config(config, custom_objects=custom_objects)
            if not model.built:
                bc = config.get("build_config") or {}
                if isinstance(bc, dict) and "input_shape" in bc:
                    model.build(tuple(bc["input_shape"]))
    except FileFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a crafted config breaks, name the file
        raise FileFormatError(
            f"{path!r} holds a model config that cannot be rebuilt: {type(e).__name__}: {e}"
        ) from e
    legacy = is_legacy_order(header)
    _check_and_assign(weight_paths(model, legacy=legacy), model_arrays, path, "weights")
    states = (header.get("metadata") or {}).get("rng_states")
    if states is not None:  # JSON: PCG64 states are 128-bit integers
        try:
            checked = check_rng_states(
                loads_json(states, "rng_states"), len(model.rng_states()), "rng_states"
            )
        except FileFormatError as e:
            raise FileFormatError(f"{path!r} is not a valid model file: {e}") from e
        set_rng_states_in_order(model, checked, legacy)
    if compile and compile_config:
        try:
            model.compile_from_config(compile_config, custom_objects=custom_objects)
        except Exception as e:  # noqa: BLE001
            raise FileFormatError(
                f"{path!r} holds a compile config that cannot be restored: {type(e).__name__}: {e}"
            ) from e
        opt_arrays = {
            k[len("optimizer/vars/") :]: a
            for k, a in arrays.items()
            if k.startswith("optimizer/vars/")
        }
        if opt_arrays:
            file_order = trainable_variables_in_order(model, legacy)
            load_optimizer_arrays(
                model.optimizer, model.trainable_variables, opt_arrays, path, file_order
            )
    return model


def load_optimizer_arrays(
    optimizer: Any,
    variables: list | None,
    store: dict,
    path: str,
    file_order: list | None = None,
) -> None:
    """Builds `optimizer` for `variables` (unless None) and loads its saved variables.

    A file whose optimizer variables are not named 0..n-1, or whose shapes or
    dtypes differ from the optimizer's, is refused naming the file.

    Args:
        optimizer: The optimizer.
        variables: What to build it on (None: it is built already).
        store: The saved variables, '0', '1', ...
        path: The file (for errors).
        file_order: The trainable variables in the order the saving optimizer
            was built on, when it differs from the optimizer's (files written
            before functional models followed Keras 3's layer order).
    """
    if variables is not None:
        optimizer.build(variables)
    if file_order is not None and optimizer._trainable_variables:
        built_on = optimizer._trainable_variables
        store = reorder_optimizer_store(optimizer, file_order, built_on, store)
    own = list(optimizer._variables)  # (the public property refuses sharded optimizers)
    if len(store) != len(own):
        optimizer.load_own_variables(store)  # Keras warns and skips on a count mismatch
        return
    for i, v in enumerate(own):
        a = store.get(str(i))
        if a is None or tuple(a.shape) != tuple(v.shape) or a.dtype.name != v.dtype:
            got = "nothing" if a is None else f"shape {tuple(a.shape)}, dtype {a.dtype.name}"
            raise FileFormatError(
                f"{path!r}: optimizer variable {i} is {got} in the file, but shape "
                f"{tuple(v.shape)}, dtype {v.dtype} in the optimizer."
            )
    optimizer.load_own_variables({k: np.array(a) for k, a in store.items()})
