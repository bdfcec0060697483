"""Embedding: integer indices -> dense vectors, with `mask_zero` padding masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras import constraints, initializers, ops, regularizers
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer
from distkeras.ops.rnn import embedding_lookup


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


class Embedding(Layer):
    """Turns non-negative integers (indices) into dense vectors of fixed size.

    Args:
        input_dim: Size of the vocabulary (maximum index + 1).
        output_dim: Dimension of the dense embedding.
        embeddings_initializer: Initializer of the `embeddings` matrix ('uniform').
        embeddings_regularizer: Regularizer of the `embeddings` matrix.
        embeddings_constraint: Constraint of the `embeddings` matrix.
        mask_zero: Whether index 0 is padding to be masked out; the output mask is
            `inputs != 0` (so index 0 cannot be used in the vocabulary).
        weights: Optional initial embeddings matrix `(input_dim, output_dim)`.
        input_length: Accepted for Keras 2 compatibility and ignored.

    Input shape: integer `(batch_size, ...)`. Output shape: `(batch_size, ..., output_dim)`.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        **kwargs: Any,
    ):
        kwargs.pop("input_length", None)
        super().__init__(**kwargs)
        self.input_dim = _positive_int("input_dim", input_dim)
        self.output_dim = _positive_int("output_dim", output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        if weights is not None:
            self.build(None)
            if not (isinstance(weights, (list, tuple)) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        return embedding_lookup(self.embeddings, inputs)

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if not self.mask_zero:
            return None
        if isinstance(inputs, KerasTensor):  # a symbolic mask, recorded as an op
            return ops.not_equal(inputs, 0)
        data = inputs.data if isinstance(inputs, Tensor) else current_module().asarray(inputs)
        return Tensor(data != 0)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return (*tuple(input_shape), self.output_dim)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero,
            }
        )
        return cfg
