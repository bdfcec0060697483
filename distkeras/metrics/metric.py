"""The `Metric` base class: stateful, with sum-reducible state for data-parallel runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distkeras.backend import floatx, standardize_dtype
from distkeras.backend.autodiff import Variable
from distkeras.utils.naming import auto_name, to_snake_case  # noqa: F401 - re-exported

_AGGREGATIONS = ("sum", "mean", "none", "only_first_replica")


class Metric:
    """Base class of stateful metrics, as `keras.metrics.Metric`.

    Subclasses create state with `add_variable` in `__init__`, accumulate it in
    `update_state(...)` and compute the value from it in `result()`.

    Distributed contract: the trainer all-reduces `metric.variables` across
    ranks with the operation named in `metric.variable_aggregations` (`"sum"`
    for every built-in metric, the class-level `reduction`) and only then calls
    `result()`. State must therefore be totals and counts, never averages, so
    that summing the states of ranks that saw disjoint data gives the state of
    one metric that saw all of it.

    Args:
        dtype: Dtype of the state and result (the default float type when omitted).
        name: Name of the metric instance.
    """

    reduction = "sum"

    def __init__(self, dtype: Any = None, name: str | None = None):
        self.name = name or auto_name(self.__class__.__name__)
        self._dtype = standardize_dtype(dtype) if dtype is not None else floatx()
        self._variables: list[Variable] = []
        self._aggregations: list[str] = []
        self._metrics: list[Metric] = []
        self._direction: str | None = None

    def __setattr__(self, key: str, value: Any) -> None:
        if isinstance(value, Metric) and key != "_metrics" and "_metrics" in self.__dict__:
            if value not in self._metrics:
                self._metrics.append(value)
        super().__setattr__(key, value)

    @property
    def dtype(self) -> str:
        """Dtype name of the metric's state and result."""
        return self._dtype

    @property
    def variables(self) -> list[Variable]:
        """All state variables, own first, then those of tracked sub-metrics."""
        out = list(self._variables)
        for m in self._metrics:
            out.extend(m.variables)
        return out

    @property
    def variable_aggregations(self) -> list[str]:
        """How each of `variables` combines across ranks ('sum' for built-ins)."""
        out = list(self._aggregations)
        for m in self._metrics:
            out.extend(m.variable_aggregations)
        return out

    def add_variable(
        self,
        shape: Sequence[int],
        initializer: Any = "zeros",
        dtype: Any = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> Variable:
        """Creates and tracks a non-trainable state variable.

        Args:
            shape: Shape of the variable.
            initializer: 'zeros', 'ones', a number, an initializer name, or a
                callable `(shape, dtype)`.
            dtype: Dtype (the metric's dtype when omitted).
            aggregation: How the variable combines across ranks: 'sum'
                (required for exact distributed results), 'mean', 'none' or
                'only_first_replica'.
            name: Name of the variable.
        """
        if aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"Invalid value for argument `aggregation`. Expected one of {_AGGREGATIONS}. "
                f"Received: aggregation={aggregation!r}"
            )
        dtype = standardize_dtype(dtype) if dtype is not None else self.dtype
        shape = tuple(shape)
        if initializer is None:
            initializer = "zeros"
        from distkeras.initializers import state_variable  # noqa: PLC0415

        var = state_variable(initializer, shape, dtype, name)
        var.path = f"{self.name.replace('/', '>')}/{var.name}"
        self._variables.append(var)
        self._aggregations.append(aggregation)
        return var

    def add_weight(
        self, shape: Sequence[int] = (), initializer: Any = None, dtype: Any = None, name=None
    ) -> Variable:
        """Alias of `add_variable` (Keras 2 name)."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        """Accumulates statistics from one batch."""
        raise NotImplementedError

    def result(self) -> Any:
        """Computes the metric value from the current state."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Sets every state variable back to zero (in place)."""
        for v in self.variables:
            v.data[...] = 0

    def merge_state(self, metrics: Sequence[Metric]) -> None:
        """Adds the states of other metrics of the same kind into this one.

        This is the same reduction the trainer performs across ranks.
        """
        for other in metrics:
            for mine, theirs, agg in zip(
                self.variables, other.variables, self.variable_aggregations
            ):
                if agg != "sum":
                    raise ValueError(
                        f"Metric {self.name!r} has a variable with aggregation={agg!r}; "
                        "only 'sum' variables can be merged."
                    )
                mine.assign_add(theirs.data)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        """The constructor arguments."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        """Creates a metric from `get_config()` output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} name={self.name}>"
