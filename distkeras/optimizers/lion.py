"""Lion."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer, check_range


class Lion(Optimizer):
    """Lion (evolved sign momentum), as `keras.optimizers.Lion`.

    `w -= lr * sign(m * beta_1 + g * (1 - beta_1))`, then
    `m = m * beta_2 + g * (1 - beta_2)` (Keras 3 and the paper: the step
    interpolates with `beta_1`, the momentum decays with `beta_2`).

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        beta_1: Interpolation factor of the update direction, in (0, 1].
        beta_2: Decay rate of the momentum.
        **kwargs: Base optimizer arguments.
    """

    _num_scratch = 2

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
                f"degenerates to SignSGD. Received: beta_1={beta_1}"
            )
        check_range("beta_2", beta_2, 0.0, 1.0)
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")

    def _update(self, p, g, slots, scratch, lr) -> None:
        xp = current_module()
        m = slots[0]
        t1, t2 = scratch[0], scratch[1]
        xp.multiply(m, self.beta_1, out=t1)
        xp.multiply(g, 1 - self.beta_1, out=t2)
        xp.add(t1, t2, out=t1)
        xp.sign(t1, out=t1)
        xp.multiply(t1, lr, out=t1)
        xp.subtract(p, t1, out=p)
        xp.multiply(m, self.beta_2, out=m)
        xp.multiply(g, 1 - self.beta_2, out=t2)
        xp.add(m, t2, out=m)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return config
