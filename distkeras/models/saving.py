"""Weight files and whole-model files (config + weights + compile config + optimizer state).

Weight paths are structural, as in Keras 3: a layer is named by its class
(`dense`, `dense_1`, ...) in the order its parent holds it, so a fresh model of
the same architecture loads a file whatever its layer names.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from distkeras.layers.core import InputLayer
from distkeras.layers.layer import Layer
from distkeras.saving.file_format import FileFormatError, read_container, write_container
from distkeras.utils.naming import to_snake_case


def weight_paths(layer: Layer, prefix: str = "") -> list[tuple[str, Any]]:
    """(structural path, variable) for every weight of `layer` and its sublayers."""
    out: list[tuple[str, Any]] = []
    own = layer._trainable_variables + layer._non_trainable_variables
    for i, v in enumerate(own):
        out.append((f"{prefix}vars/{i}", v))
    used: dict[str, int] = {}
    for child in layer._layers:
        if isinstance(child, InputLayer):
            continue
        base = to_snake_case(type(child).__name__)
        n = used.get(base, 0)
        used[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        out.extend(weight_paths(child, f"{prefix}layers/{name}/"))
    return out


def _check_and_assign(pairs: list[tuple[str, Any]], arrays: dict, path: str, what: str) -> None:
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
    for p, v in pairs:
        v.assign(arrays[p])


def save_weights(model: Any, path: str | os.PathLike) -> None:
    """Writes the model's weights to `path` (atomically)."""
    _ensure_built(model, "save_weights")
    pairs = weight_paths(model)
    write_container(
        path,
        [(p, v.numpy()) for p, v in pairs],
        kind="weights",
        metadata={"model_class": type(model).__name__},
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
    _check_and_assign(weight_paths(model), model_arrays, os.fspath(path), "weights")


def _ensure_built(model: Any, what: str) -> None:
    if not model.built:
        raise ValueError(
            f"{what} needs a built model (call it on data, give the first layer an "
            "input_shape, or call build()). Received: an unbuilt model"
        )


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Writes config, weights, compile config, optimizer state and RNG states to one file."""
    from distkeras.saving import serialize_keras_object  # noqa: PLC0415

    _ensure_built(model, "save")
    config = serialize_keras_object(model)  # includes compile_config once compiled
    arrays = [(f"model/{p}", v.numpy()) for p, v in weight_paths(model)]
    opt = getattr(model, "optimizer", None)
    if opt is not None and getattr(opt, "built", False):
        store: dict = {}
        opt.save_own_variables(store)
        arrays += [(f"optimizer/vars/{k}", store[k]) for k in sorted(store, key=int)]
    write_container(
        path,
        arrays,
        kind="model",
        config=config,
        metadata={"rng_states": json.dumps(model.rng_states())},
    )


def load_model(
    path: str | os.PathLike,
    custom_objects: dict | None = None,
    compile: bool = True,  # noqa: A002 - Keras's argument name
    safe_mode: bool = True,
) -> Any:
    """Rebuilds a model saved by `model.save(path)`.

    Args:
        path: The file.
        custom_objects: Extra classes/functions by name.
        compile: Restore the compile config and optimizer state.
        safe_mode: False lets Lambda layers holding Python bytecode load.
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
    try:
        with SafeModeScope(safe_mode):
            model = model_from_config(config, custom_objects=custom_objects)
    except (KeyError, TypeError, AttributeError) as e:
        raise FileFormatError(f"{path!r} holds a malformed model config: {e!r}") from e
    if not model.built:
        bc = config.get("build_config") or {}
        if "input_shape" in bc:
            model.build(tuple(bc["input_shape"]))
    model_arrays = {k[len("model/") :]: a for k, a in arrays.items() if k.startswith("model/")}
    _check_and_assign(weight_paths(model), model_arrays, path, "weights")
    states = (header.get("metadata") or {}).get("rng_states")
    if isinstance(states, str):  # JSON: PCG64 states are 128-bit integers
        model.set_rng_states(json.loads(states))
    if compile and compile_config:
        model.compile_from_config(compile_config, custom_objects=custom_objects)
        opt_arrays = {
            k[len("optimizer/vars/") :]: a
            for k, a in arrays.items()
            if k.startswith("optimizer/vars/")
        }
        if opt_arrays:
            model.optimizer.build(model.trainable_variables)
            model.optimizer.load_own_variables({k: np.array(a) for k, a in opt_arrays.items()})
    return model
