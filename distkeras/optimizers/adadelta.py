"""Adadelta."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer, check_range


class Adadelta(Optimizer):
    """Adadelta, as `keras.optimizers.Adadelta`.

    With `rms(x) = sqrt(x + epsilon)`: `ag = rho * ag + (1 - rho) * g**2`;
    `delta = -rms(ad) * g / rms(ag)`; `ad = rho * ad + (1 - rho) * delta**2`;
    `w += lr * delta`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        rho: Decay rate of the running averages.
        epsilon: Small constant for numerical stability.
        **kwargs: Base optimizer arguments.
    """

    _num_scratch = 2

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_range("rho", rho, 0.0, 1.0)
        check_range("epsilon", epsilon)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._accumulated_grads, self._accumulated_delta_vars = self.add_optimizer_variables(
            var_list, ["accumulated_grad", "accumulated_delta_var"]
        )

    def _update(self, p, g, slots, scratch, lr) -> None:
        xp = current_module()
        rho, eps = self.rho, self.epsilon
        ag, ad = slots[0], slots[1]
        t1, t2 = scratch[0], scratch[1]
        xp.multiply(ag, rho, out=ag)
        xp.square(g, out=t1)
        xp.multiply(t1, 1 - rho, out=t1)
        xp.add(ag, t1, out=ag)
        xp.add(ad, eps, out=t1)
        xp.sqrt(t1, out=t1)
        xp.multiply(t1, g, out=t1)
        xp.add(ag, eps, out=t2)
        xp.sqrt(t2, out=t2)
        xp.divide(t1, t2, out=t1)
        xp.negative(t1, out=t1)
        xp.multiply(ad, rho, out=ad)
        xp.square(t1, out=t2)
        xp.multiply(t2, 1 - rho, out=t2)
        xp.add(ad, t2, out=ad)
        xp.multiply(t1, lr, out=t1)
        xp.add(p, t1, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
