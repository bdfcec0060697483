"""Hinge metrics, as `keras.metrics`: the mean of the per-sample hinge losses."""

from __future__ import annotations

from typing import Any

from distkeras.losses import categorical_hinge, hinge, squared_hinge
from distkeras.metrics.reduction_metrics import MeanMetricWrapper


class _HingeBase(MeanMetricWrapper):
    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class Hinge(_HingeBase):
    """Mean of `max(1 - y_true * y_pred, 0)` ({0, 1} labels become {-1, 1})."""

    def __init__(self, name: str = "hinge", dtype: Any = None):
        super().__init__(fn=hinge, name=name, dtype=dtype)
        self._direction = "down"


class SquaredHinge(_HingeBase):
    """Mean of `max(1 - y_true * y_pred, 0) ** 2` ({0, 1} labels become {-1, 1})."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None):
        super().__init__(fn=squared_hinge, name=name, dtype=dtype)
        self._direction = "down"


class CategoricalHinge(_HingeBase):
    """Mean of `max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`."""

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(fn=categorical_hinge, name=name, dtype=dtype)
        self._direction = "down"
