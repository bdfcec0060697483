"""Stochastic gradient descent with optional (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer


class SGD(Optimizer):
    """Gradient descent with momentum, as `keras.optimizers.SGD`.

    Without momentum: `w -= lr * g`. With momentum:
    `m = momentum * m - lr * g`, then `w += m`, or with Nesterov
    `w += momentum * m - lr * g`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.01.
        momentum: Float in [0, 1].
        nesterov: Use Nesterov momentum.
        **kwargs: Base optimizer arguments (`clipnorm`, `weight_decay`, ...).
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, (int, float))
            or not (0 <= momentum <= 1)
        ):
            raise ValueError(
                f"`momentum` must be a float between [0, 1]. Received: momentum={momentum}"
            )
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self._num_scratch = 2 if self.nesterov and self.momentum != 0 else 1
        self.momentums: list = []

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(var_list, "momentum")

    def _update(self, p, g, slots, scratch, lr) -> None:
        xp = current_module()
        t = scratch[0]
        xp.multiply(g, lr, out=t)
        if not slots:
            xp.subtract(p, t, out=p)
            return
        m = slots[0]
        mu = self.momentum
        xp.multiply(m, mu, out=m)
        xp.subtract(m, t, out=m)
        if self.nesterov:
            u = scratch[1]
            xp.multiply(m, mu, out=u)
            xp.subtract(u, t, out=u)
            xp.add(p, u, out=p)
        else:
            xp.add(p, m, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
