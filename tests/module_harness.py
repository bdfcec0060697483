"""Shared checks for the identifier-resolved modules (activations, initializers,
regularizers, constraints, losses): config round-trips, identifier lookup, and
value comparison against NumPy references.
"""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from distkeras.backend import to_numpy


def as_numpy(x: Any) -> np.ndarray:
    """Returns a Tensor, array or scalar as a NumPy array."""
    return np.asarray(to_numpy(x))


def assert_values(actual: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-7) -> None:
    """Compares values (Tensor or array) with a NumPy reference, shapes included."""
    got = as_numpy(actual)
    want = np.asarray(expected)
    assert got.shape == want.shape, f"shape {got.shape} != expected {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def json_roundtrip(module: ModuleType, obj: Any) -> Any:
    """serialize -> JSON text -> deserialize through `module`."""
    config = module.serialize(obj)
    return module.deserialize(json.loads(json.dumps(config)))


def assert_config_roundtrip(module: ModuleType, obj: Any) -> Any:
    """Asserts that `obj` survives serialize/JSON/deserialize with an equal config."""
    new = json_roundtrip(module, obj)
    assert type(new) is type(obj)
    assert new.get_config() == obj.get_config()
    assert type(module.get(module.serialize(obj))) is type(obj)
    return new


def assert_unknown_identifier(module: ModuleType, kind: str) -> None:
    """Asserts that unknown names and uninterpretable objects raise ValueError."""
    msg = re.escape(f"Could not interpret {kind} identifier: 'foo'")
    with pytest.raises(ValueError, match=msg):
        module.get("foo")
    with pytest.raises(ValueError, match=f"Could not interpret {kind} identifier"):
        module.get(42)
    with pytest.raises(ValueError):
        module.deserialize("foo")


def assert_get_resolves(module: ModuleType, names: dict[str, type]) -> None:
    """Asserts each name resolves through `get` to an instance of its class."""
    for name, cls in names.items():
        obj = module.get(name)
        assert isinstance(obj, cls), f"{name!r} -> {obj!r}, expected {cls.__name__}"
        assert module.get(cls) is not cls and isinstance(module.get(cls), cls)
        assert module.get(obj) is obj
    assert module.get(None) is None


def _part(x: Any, sl: slice) -> Any:
    return None if x is None else np.asarray(x)[sl]


def assert_metric_state_sums(
    factory: Any, y_true: Any, y_pred: Any, sample_weight: Any, split: int, rtol: float = 1e-6
) -> np.ndarray:
    """Asserts a metric's state is sum-reducible, as the data-parallel trainer needs.

    Two "ranks" update on disjoint slices of the data; their states summed
    variable by variable into a fresh metric (the all-reduce), and merged with
    `merge_state`, must both give the result of one metric that saw all of it.
    Every variable must declare the 'sum' aggregation.

    Returns:
        The whole-data result, as a NumPy array.
    """
    head, tail = slice(None, split), slice(split, None)
    whole, rank0, rank1, reduced = factory(), factory(), factory(), factory()
    whole.update_state(y_true, y_pred, sample_weight=sample_weight)
    rank0.update_state(_part(y_true, head), _part(y_pred, head), _part(sample_weight, head))
    rank1.update_state(_part(y_true, tail), _part(y_pred, tail), _part(sample_weight, tail))
    assert whole.variable_aggregations == ["sum"] * len(whole.variables)
    if len(reduced.variables) != len(whole.variables):  # state built by the first batch
        reduced.update_state(_part(y_true, head), _part(y_pred, head))
        reduced.reset_state()
    for dst, a, b in zip(reduced.variables, rank0.variables, rank1.variables, strict=True):
        dst.assign(a.numpy() + b.numpy())
    expected = as_numpy(whole.result())
    np.testing.assert_allclose(as_numpy(reduced.result()), expected, rtol=rtol, atol=1e-7)
    rank0.merge_state([rank1])
    np.testing.assert_allclose(as_numpy(rank0.result()), expected, rtol=rtol, atol=1e-7)
    return expected
