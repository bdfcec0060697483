"""RMSprop."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer, check_range


class RMSprop(Optimizer):
    """RMSprop, as `keras.optimizers.RMSprop`.

    `v = rho * v + (1 - rho) * g**2`; `inc = lr * g / sqrt(v + epsilon)` (with
    `centered`, `v - a**2 + epsilon` where `a` averages `g` the same way); then
    `w -= inc`, or with momentum `mom = momentum * mom + inc; w -= mom`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        rho: Discounting factor of the squared-gradient average.
        momentum: Momentum factor (0 for none).
        epsilon: Small constant for numerical stability.
        centered: Normalize by the estimated gradient variance.
        **kwargs: Base optimizer arguments.
    """

    _num_scratch = 2

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_range("rho", rho, 0.0, 1.0)
        check_range("momentum", momentum, 0.0, 1.0, high_closed=True)
        check_range("epsilon", epsilon)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = bool(centered)

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")

    def _update(self, p, g, slots, scratch, lr) -> None:
        xp = current_module()
        rho = self.rho
        v = slots[0]
        t1, t2 = scratch[0], scratch[1]
        xp.multiply(v, rho, out=v)
        xp.square(g, out=t1)
        xp.multiply(t1, 1 - rho, out=t1)
        xp.add(v, t1, out=v)
        if self.centered:
            a = slots[-1]
            xp.multiply(a, rho, out=a)
            xp.multiply(g, 1 - rho, out=t1)
            xp.add(a, t1, out=a)
            xp.square(a, out=t1)
            xp.subtract(v, t1, out=t1)
            xp.add(t1, self.epsilon, out=t1)
        else:
            xp.add(v, self.epsilon, out=t1)
        xp.sqrt(t1, out=t1)
        xp.multiply(g, lr, out=t2)
        xp.divide(t2, t1, out=t2)
        if self.momentum > 0:
            mom = slots[1]
            xp.multiply(mom, self.momentum, out=mom)
            xp.add(mom, t2, out=mom)
            xp.subtract(p, mom, out=p)
        else:
            xp.subtract(p, t2, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config
