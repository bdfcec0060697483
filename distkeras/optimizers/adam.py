"""Adam and AdamW."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras.backend import current_module, native
from distkeras.optimizers.base import Optimizer, check_range


class Adam(Optimizer):
    """Adam, as `keras.optimizers.Adam`.

    With `t = iterations + 1` and
    `alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)`:
    `m += (g - m) * (1 - beta_1)`, `v += (g**2 - v) * (1 - beta_2)`,
    `w -= alpha * m / (sqrt(v) + epsilon)` (with AMSGrad, `v` is replaced by
    its running maximum). On NumPy float32/float64 arrays the update is one
    compiled pass (`backend/native.py`) with the same roundings as these
    formulas' separate NumPy calls.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        beta_1: Decay rate of the first moment.
        beta_2: Decay rate of the second moment.
        epsilon: Small constant for numerical stability.
        amsgrad: Use the AMSGrad variant.
        **kwargs: Base optimizer arguments (`clipnorm`, `weight_decay`, ...).
    """

    _num_scratch = 2

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
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
        self.amsgrad = bool(amsgrad)

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def _prepare_step(self, lr: float, step: int) -> float:
        return lr * math.sqrt(1.0 - self.beta_2**step) / (1.0 - self.beta_1**step)

    def _update(self, p, g, slots, scratch, alpha) -> None:
        xp = current_module()
        m, v = slots[0], slots[1]
        fused = native.adam_update(p) if xp is np else None
        vhat = slots[2] if self.amsgrad else None
        if fused is not None and fused(
            p, g, m, v, vhat, 1 - self.beta_1, 1 - self.beta_2, self.epsilon, alpha
        ):
            return  # one compiled pass, the same bits as the calls below
        t1, t2 = scratch[0], scratch[1]
        xp.subtract(g, m, out=t1)
        xp.multiply(t1, 1 - self.beta_1, out=t1)
        xp.add(m, t1, out=m)
        xp.square(g, out=t2)
        xp.subtract(t2, v, out=t2)
        xp.multiply(t2, 1 - self.beta_2, out=t2)
        xp.add(v, t2, out=v)
        if self.amsgrad:
            v_hat = slots[2]
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        xp.sqrt(v, out=t2)
        xp.add(t2, self.epsilon, out=t2)
        xp.multiply(m, alpha, out=t1)
        xp.divide(t1, t2, out=t1)
        xp.subtract(p, t1, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay, as `keras.optimizers.AdamW`.

    Before each Adam update, `w -= w * weight_decay * lr`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        weight_decay: Decay rate (required). Defaults to 0.004.
        beta_1: Decay rate of the first moment.
        beta_2: Decay rate of the second moment.
        epsilon: Small constant for numerical stability.
        amsgrad: Use the AMSGrad variant.
        **kwargs: Base optimizer arguments.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            name=name,
            weight_decay=weight_decay,
            **kwargs,
        )
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
