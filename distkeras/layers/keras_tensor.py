"""Symbolic tensors traced through layers and ops to build models (Functional API).

A `KerasTensor` holds a shape, a dtype and the call that produced it. Layers
and every public `distkeras.ops` function accept it and return new symbolic
tensors, recording a graph node instead of computing; its Python operators
are those ops, as in Keras 3. The ops floor cannot see this class, so it is
registered there when this module is imported (see `distkeras/ops/symbolic.py`).
"""

from __future__ import annotations

import itertools
from typing import Any

from distkeras import ops
from distkeras.backend import standardize_dtype
from distkeras.ops.symbolic import register_symbolic_type

_NAMES = itertools.count()


def _auto_tensor_name() -> str:
    n = next(_NAMES)
    return "keras_tensor" if n == 0 else f"keras_tensor_{n}"


class KerasTensor:
    """A placeholder with a shape, a dtype and the layer call that produced it.

    Calling a layer or an op of `distkeras.ops` on it returns another
    `KerasTensor` whose shape and dtype are inferred without data.

    Args:
        shape: Shape including the batch axis (None for unknown sizes).
        dtype: Dtype name.
        history: (layer, node_index, tensor_index) of the producing call.
        name: Optional name (`keras_tensor_N` when omitted).
    """

    # NumPy defers its binary operators to ours (`array + x` calls `x.__radd__`).
    __array_ufunc__ = None

    def __init__(self, shape: Any, dtype: Any = None, history: Any = None, name: str | None = None):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = standardize_dtype(dtype)
        self._keras_history = history
        self.name = name or _auto_tensor_name()
        self._keras_mask: KerasTensor | None = None  # the symbolic mask (mask_propagation.py)
        self._mask_of: KerasTensor | None = None  # set on a mask: the tensor it masks

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    # ------------------------------------------------------------ methods
    def reshape(self, *newshape: Any) -> KerasTensor:
        """Symbolic `ops.reshape` (one tuple or several ints; -1 infers a size)."""
        if len(newshape) == 1 and isinstance(newshape[0], (tuple, list)):
            newshape = tuple(newshape[0])
        return ops.reshape(self, tuple(newshape))

    def squeeze(self, axis: Any = None) -> KerasTensor:
        """Symbolic `ops.squeeze`."""
        return ops.squeeze(self, axis=axis)

    def astype(self, dtype: Any) -> KerasTensor:
        """Symbolic `ops.cast`."""
        return ops.cast(self, dtype)

    @property
    def T(self) -> KerasTensor:  # noqa: N802 - NumPy's name
        """Symbolic `ops.transpose` (all axes reversed)."""
        return ops.transpose(self)

    # ------------------------------------------------------------ no values
    def _no_value(self, what: str) -> ValueError:
        return ValueError(
            "A KerasTensor is symbolic: a placeholder for a shape and a dtype with no "
            f"numerical value, so it cannot be converted to {what}. Use it as input to a "
            f"layer or a `distkeras.ops` function. Received: {self!r}"
        )

    def __int__(self) -> int:
        raise self._no_value("an int")

    def __float__(self) -> float:
        raise self._no_value("a float")

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise self._no_value("a NumPy array")

    def __iter__(self):
        raise NotImplementedError("Iterating over a symbolic KerasTensor is not supported.")

    def __bool__(self) -> bool:
        raise TypeError("A symbolic KerasTensor cannot be used as a boolean.")

    # ------------------------------------------------------------ operators
    def __add__(self, other: Any) -> KerasTensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> KerasTensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> KerasTensor:
        return ops.subtract(self, other)

    def __rsub__(self, other: Any) -> KerasTensor:
        return ops.subtract(other, self)

    def __mul__(self, other: Any) -> KerasTensor:
        return ops.multiply(self, other)

    def __rmul__(self, other: Any) -> KerasTensor:
        return ops.multiply(other, self)

    def __matmul__(self, other: Any) -> KerasTensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> KerasTensor:
        return ops.matmul(other, self)

    def __truediv__(self, other: Any) -> KerasTensor:
        return ops.true_divide(self, other)

    def __rtruediv__(self, other: Any) -> KerasTensor:
        return ops.true_divide(other, self)

    def __floordiv__(self, other: Any) -> KerasTensor:
        return ops.floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> KerasTensor:
        return ops.floor_divide(other, self)

    def __mod__(self, other: Any) -> KerasTensor:
        return ops.mod(self, other)

    def __rmod__(self, other: Any) -> KerasTensor:
        return ops.mod(other, self)

    def __pow__(self, other: Any) -> KerasTensor:
        return ops.power(self, other)

    def __rpow__(self, other: Any) -> KerasTensor:
        return ops.power(other, self)

    def __neg__(self) -> KerasTensor:
        return ops.negative(self)

    def __pos__(self) -> KerasTensor:
        return self

    def __abs__(self) -> KerasTensor:
        return ops.absolute(self)

    def __round__(self, ndigits: int | None = None) -> KerasTensor:
        return ops.round(self, decimals=ndigits or 0)

    # Keras 3 leaves `==` as identity (KerasTensors are dict keys); `!=` is an op.
    def __ne__(self, other: Any) -> KerasTensor:  # type: ignore[override]
        return ops.not_equal(self, other)

    __hash__ = object.__hash__

    def __lt__(self, other: Any) -> KerasTensor:
        return ops.less(self, other)

    def __le__(self, other: Any) -> KerasTensor:
        return ops.less_equal(self, other)

    def __gt__(self, other: Any) -> KerasTensor:
        return ops.greater(self, other)

    def __ge__(self, other: Any) -> KerasTensor:
        return ops.greater_equal(self, other)

    def __and__(self, other: Any) -> KerasTensor:
        return ops.logical_and(self, other)

    def __rand__(self, other: Any) -> KerasTensor:
        return ops.logical_and(other, self)

    def __or__(self, other: Any) -> KerasTensor:
        return ops.logical_or(self, other)

    def __ror__(self, other: Any) -> KerasTensor:
        return ops.logical_or(other, self)

    def __xor__(self, other: Any) -> KerasTensor:
        return ops.logical_xor(self, other)

    def __rxor__(self, other: Any) -> KerasTensor:
        return ops.logical_xor(other, self)

    def __invert__(self) -> KerasTensor:
        return ops.logical_not(self)

    def __getitem__(self, key: Any) -> KerasTensor:
        return ops.getitem(self, key)


def is_keras_tensor(x: Any) -> bool:
    """True when `x` is a symbolic `KerasTensor`."""
    return isinstance(x, KerasTensor)


def _record_op(name: str, args: tuple, kwargs: dict) -> Any:
    from distkeras.layers.op_layer import OpLayer  # noqa: PLC0415 - op_layer imports layer.py

    return OpLayer(name)(*args, **kwargs)


register_symbolic_type(KerasTensor, _record_op)


class Node:
    """One call of a layer on symbolic inputs."""

    def __init__(self, layer: Any, inputs: Any, args: tuple = (), kwargs: dict | None = None):
        self.layer = layer
        self.inputs = inputs
        self.args = args
        self.kwargs = kwargs or {}
        self.outputs: list[KerasTensor] = []

    @property
    def input_tensors(self) -> list[KerasTensor]:
        return list(self.inputs) if isinstance(self.inputs, (list, tuple)) else [self.inputs]
