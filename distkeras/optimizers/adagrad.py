"""Adagrad."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer, check_range


class Adagrad(Optimizer):
    """Adagrad, as `keras.optimizers.Adagrad`.

    `acc += g**2`; `w -= lr * g / sqrt(acc + epsilon)`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        initial_accumulator_value: Starting value of the accumulators.
        epsilon: Small constant for numerical stability.
        **kwargs: Base optimizer arguments.
    """

    _num_scratch = 2

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_range("initial_accumulator_value", initial_accumulator_value)
        check_range("epsilon", epsilon)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(
            var_list, "accumulator", initializer=float(self.initial_accumulator_value)
        )

    def _update(self, p, g, slots, scratch, lr) -> None:
        xp = current_module()
        acc = slots[0]
        t1, t2 = scratch[0], scratch[1]
        xp.square(g, out=t1)
        xp.add(acc, t1, out=acc)
        xp.add(acc, self.epsilon, out=t1)
        xp.sqrt(t1, out=t1)
        xp.multiply(g, lr, out=t2)
        xp.divide(t2, t1, out=t2)
        xp.subtract(p, t2, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}
        )
        return config
