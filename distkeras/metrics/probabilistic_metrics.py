"""Probabilistic metrics, as `keras.metrics`: crossentropies, KL divergence, Poisson."""

from __future__ import annotations

from typing import Any

# The metric functions are the loss functions, as in Keras: labels and outputs
# whose shapes Keras rejects raise the same ValueError here.
from distkeras.losses import (
    binary_crossentropy,
    categorical_crossentropy,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)
from distkeras.metrics.reduction_metrics import MeanMetricWrapper


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary crossentropy, as `keras.metrics.BinaryCrossentropy`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Squeeze labels toward 0.5 by this amount.
    """

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
    ):
        super().__init__(
            binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self._direction = "down"

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean categorical crossentropy, as `keras.metrics.CategoricalCrossentropy`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Mix labels with the uniform distribution by this amount.
        axis: The class axis.
    """

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
    ):
        super().__init__(
            categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self._direction = "down"

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean crossentropy with integer labels, as `keras.metrics.SparseCategoricalCrossentropy`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        from_logits: Whether `y_pred` holds logits.
        axis: The class axis.
    """

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            axis=axis,
        )
        self.from_logits = from_logits
        self.axis = axis
        self._direction = "down"

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "axis": self.axis,
        }


class KLDivergence(MeanMetricWrapper):
    """Mean Kullback-Leibler divergence, as `keras.metrics.KLDivergence`."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None):
        super().__init__(kl_divergence, name=name, dtype=dtype)
        self._direction = "down"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class Poisson(MeanMetricWrapper):
    """Mean Poisson loss `y_pred - y_true * log(y_pred + eps)`, as `keras.metrics.Poisson`."""

    def __init__(self, name: str = "poisson", dtype: Any = None):
        super().__init__(poisson, name=name, dtype=dtype)
        self._direction = "down"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}
