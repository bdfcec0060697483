"""Adamax."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer, check_range


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm), as `keras.optimizers.Adamax`.

    `m += (g - m) * (1 - beta_1)`; `u = max(beta_2 * u, |g|)`;
    `w -= lr * m / ((1 - beta_1**t) * (u + epsilon))` with `t = iterations + 1`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        beta_1: Decay rate of the first moment.
        beta_2: Decay rate of the infinity norm.
        epsilon: Small constant for numerical stability.
        **kwargs: Base optimizer arguments.
    """

    _num_scratch = 2

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_range("beta_1", beta_1, 0.0, 1.0)
        check_range("beta_2", beta_2, 0.0, 1.0)
        check_range("epsilon", epsilon)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._m, self._u = self.add_optimizer_variables(var_list, ["momentum", "norm"])

    def _prepare_step(self, lr: float, step: int) -> tuple:
        return lr, 1.0 - self.beta_1**step

    def _update(self, p, g, slots, scratch, coef) -> None:
        xp = current_module()
        lr, correction = coef
        m, u = slots[0], slots[1]
        t1, t2 = scratch[0], scratch[1]
        xp.subtract(g, m, out=t1)
        xp.multiply(t1, 1 - self.beta_1, out=t1)
        xp.add(m, t1, out=m)
        xp.multiply(u, self.beta_2, out=u)
        xp.absolute(g, out=t1)
        xp.maximum(u, t1, out=u)
        xp.add(u, self.epsilon, out=t2)
        xp.multiply(t2, correction, out=t2)
        xp.multiply(m, lr, out=t1)
        xp.divide(t1, t2, out=t1)
        xp.subtract(p, t1, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
