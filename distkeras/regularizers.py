"""Weight regularizers, as in `keras.regularizers`.

A regularizer is called on a weight tensor and returns a scalar Tensor built
with `distkeras.ops`, so the penalty is differentiable and can be added to the
training loss.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from distkeras import ops
from distkeras.backend import epsilon
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    get_from_identifier,
    serialize_keras_object,
)


def validate_float_arg(value: Any, name: str) -> float:
    """Returns `value` as a float, or raises ValueError unless it is finite and >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or math.isinf(value)
        or math.isnan(value)
        or value < 0
    ):
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative float. "
            f"Received: {name}={value!r}"
        )
    return float(value)


class Regularizer:
    """Base class: subclasses implement `__call__(x)` and `get_config()`."""

    def __call__(self, x: Any) -> Any:
        return 0.0

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-friendly dict."""
        raise NotImplementedError(f"{self} does not implement get_config()")

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        """Builds a regularizer from `get_config()` output."""
        return cls(**config)


class L1L2(Regularizer):
    """Penalty l1 * sum(|x|) + l2 * sum(x^2).

    Args:
        l1: L1 factor (>= 0).
        l2: L2 factor (>= 0).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = validate_float_arg(0.0 if l1 is None else l1, name="l1")
        self.l2 = validate_float_arg(0.0 if l2 is None else l2, name="l2")

    def __call__(self, x: Any) -> Tensor:
        x = convert_to_tensor(x)
        out = ops.zeros((), dtype=x.dtype)
        if self.l1:
            out = ops.add(out, ops.multiply(ops.sum(ops.absolute(x)), self.l1))
        if self.l2:
            out = ops.add(out, ops.multiply(ops.sum(ops.square(x)), self.l2))
        return out

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """Penalty l1 * sum(|x|).

    Args:
        l1: L1 factor (>= 0).
    """

    def __init__(self, l1: float = 0.01):
        self.l1 = validate_float_arg(0.01 if l1 is None else l1, name="l1")

    def __call__(self, x: Any) -> Tensor:
        return ops.multiply(ops.sum(ops.absolute(x)), self.l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """Penalty l2 * sum(x^2).

    Args:
        l2: L2 factor (>= 0).
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = validate_float_arg(0.01 if l2 is None else l2, name="l2")

    def __call__(self, x: Any) -> Tensor:
        return ops.multiply(ops.sum(ops.square(x)), self.l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Encourages the rows (or columns) of a 2D weight to be orthogonal.

    The penalty is factor * 0.5 * sum(|offdiag(N N^T)|) / num_pairs, N the
    L2-normalized rows (or columns).

    Args:
        factor: Penalty factor (>= 0).
        mode: 'rows' or 'columns'.
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = validate_float_arg(factor, name="factor")
        if mode not in ("rows", "columns"):
            raise ValueError(
                "Invalid value for argument `mode`. Expected one of ('rows', 'columns'). "
                f"Received: mode={mode!r}"
            )
        self.mode = mode

    def __call__(self, x: Any) -> Tensor:
        x = convert_to_tensor(x)
        if x.ndim != 2:
            raise ValueError(
                "Inputs to OrthogonalRegularizer must have rank 2. "
                f"Received: inputs.shape={x.shape}"
            )
        axis = 1 if self.mode == "rows" else 0
        sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
        n = ops.divide(x, ops.sqrt(ops.maximum(sq, epsilon() ** 2)))
        if self.mode == "rows":
            product, size = ops.matmul(n, ops.transpose(n)), x.shape[0]
        else:
            product, size = ops.matmul(ops.transpose(n), n), x.shape[1]
        off_diag = ops.multiply(product, 1.0 - ops.eye(size, dtype=x.dtype).data)
        num_pairs = size * (size - 1.0) / 2.0
        return ops.multiply(ops.sum(ops.absolute(off_diag)), self.factor * 0.5 / num_pairs)

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


# Lower-case aliases exported by Keras 3 (classes, so `l2(1e-4)` builds an L2).
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

ALL_OBJECTS_DICT: dict[str, type] = {
    "Regularizer": Regularizer,
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "regularizer": Regularizer,
    "l1": L1,
    "l2": L2,
    "l1l2": L1L2,
    "l1_l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def serialize(regularizer: Regularizer) -> dict:
    """Returns the Keras 3 config dict of a regularizer."""
    return serialize_keras_object(regularizer)


def deserialize(config: dict | str, custom_objects: dict | None = None) -> Regularizer:
    """Rebuilds a regularizer from `serialize` output or a name."""
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="regularizer",
    )


def get(identifier: Any) -> Any:
    """Resolves a regularizer identifier.

    Args:
        identifier: None, a name ('l2', 'L1L2', ...), a config dict, a class,
            an instance, or a callable.

    Returns:
        A callable regularizer, or None for None.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return None
    return get_from_identifier(identifier, ALL_OBJECTS_DICT, "regularizer")
