"""Weight constraints, as in `keras.constraints`.

A constraint maps a weight to its projected value (`w -> constraint(w)`); the
optimizer assigns the result back after each update.
"""

from __future__ import annotations

from typing import Any

from distkeras import ops
from distkeras.backend import epsilon
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    get_from_identifier,
    serialize_keras_object,
)


class Constraint:
    """Base class: subclasses implement `__call__(w)` returning the projected weight."""

    def __call__(self, w: Any) -> Any:
        return w

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-friendly dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        """Builds a constraint from `get_config()` output."""
        return cls(**config)


def _norms(w: Tensor, axis: Any) -> Tensor:
    return ops.sqrt(ops.sum(ops.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Rescales slices along `axis` whose L2 norm exceeds `max_value`.

    Args:
        max_value: Maximum norm.
        axis: Axis (or axes) the norm is taken over; 0 for a Dense kernel's
            incoming weights per unit, [0, 1, 2] for a Conv2D kernel.
    """

    def __init__(self, max_value: float = 2, axis: Any = 0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w: Any) -> Tensor:
        w = convert_to_tensor(w)
        norms = _norms(w, self.axis)
        desired = ops.clip(norms, 0.0, self.max_value)
        return ops.multiply(w, ops.divide(desired, ops.add(norms, epsilon())))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Clamps weights to be non-negative."""

    def __call__(self, w: Any) -> Tensor:
        return ops.maximum(w, 0.0)


class UnitNorm(Constraint):
    """Rescales slices along `axis` to unit L2 norm.

    Args:
        axis: Axis (or axes) the norm is taken over.
    """

    def __init__(self, axis: Any = 0):
        self.axis = axis

    def __call__(self, w: Any) -> Tensor:
        w = convert_to_tensor(w)
        return ops.divide(w, ops.add(_norms(w, self.axis), epsilon()))

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Keeps the L2 norm of slices along `axis` within [min_value, max_value].

    The new norm is rate * clip(norm, min_value, max_value) + (1 - rate) * norm.

    Args:
        min_value: Minimum norm.
        max_value: Maximum norm.
        rate: Fraction of the way to move towards the clipped norm.
        axis: Axis (or axes) the norm is taken over.
    """

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0
    ):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w: Any) -> Tensor:
        w = convert_to_tensor(w)
        norms = _norms(w, self.axis)
        desired = ops.add(
            ops.multiply(ops.clip(norms, self.min_value, self.max_value), self.rate),
            ops.multiply(norms, 1.0 - self.rate),
        )
        return ops.multiply(w, ops.divide(desired, ops.add(norms, epsilon())))

    def get_config(self) -> dict:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


# Lower-case aliases exported by Keras 3.
max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

ALL_OBJECTS_DICT: dict[str, type] = {
    "Constraint": Constraint,
    "MaxNorm": MaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
    "MinMaxNorm": MinMaxNorm,
    "constraint": Constraint,
    "max_norm": MaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
}


def serialize(constraint: Constraint) -> dict:
    """Returns the Keras 3 config dict of a constraint."""
    return serialize_keras_object(constraint)


def deserialize(config: dict | str, custom_objects: dict | None = None) -> Constraint:
    """Rebuilds a constraint from `serialize` output or a name."""
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="constraint",
    )


def get(identifier: Any) -> Any:
    """Resolves a constraint identifier.

    Args:
        identifier: None, a name ('max_norm', 'NonNeg', ...), a config dict,
            a class, an instance, or a callable.

    Returns:
        A callable constraint, or None for None.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return None
    return get_from_identifier(identifier, ALL_OBJECTS_DICT, "constraint")
