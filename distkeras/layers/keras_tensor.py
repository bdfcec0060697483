"""Symbolic tensors traced through layers to build models (Functional API)."""

from __future__ import annotations

from typing import Any

from distkeras.backend import standardize_dtype


class KerasTensor:
    """A placeholder with a shape, a dtype and the layer call that produced it.

    Args:
        shape: Shape including the batch axis (None for unknown sizes).
        dtype: Dtype name.
        history: (layer, node_index, tensor_index) of the producing call.
        name: Optional name.
    """

    def __init__(self, shape: Any, dtype: Any = None, history: Any = None, name: str | None = None):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = standardize_dtype(dtype)
        self._keras_history = history
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


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
