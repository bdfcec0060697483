"""FTRL-Proximal."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer


class Ftrl(Optimizer):
    """Follow The Regularized Leader, as `keras.optimizers.Ftrl`.

    With `e = -learning_rate_power`, per element:
    `n' = n + g**2`; `sigma = (n'**e - n**e) / lr`;
    `z += g + 2 * l2_shrinkage * w - sigma * w`;
    `w = (clip(z, -l1, l1) - z) / (n'**e / lr + 2 * (l2 + beta / (2 * lr)))`; `n = n'`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        learning_rate_power: How the rate shrinks with the accumulated squared
            gradients, <= 0 (0: a fixed rate).
        initial_accumulator_value: Starting value of the accumulators, >= 0.
        l1_regularization_strength: L1 strength, >= 0.
        l2_regularization_strength: L2 strength, >= 0 (a stabilization penalty).
        l2_shrinkage_regularization_strength: L2 shrinkage applied to the
            gradient (a magnitude penalty), >= 0.
        beta: Adds `beta / (2 * lr)` to the L2 strength.
        **kwargs: Base optimizer arguments.
    """

    _num_scratch = 3

    def __init__(
        self,
        learning_rate: Any = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        checks = (
            ("initial_accumulator_value", initial_accumulator_value, "positive or zero"),
            ("learning_rate_power", -learning_rate_power, "negative or zero"),
            ("l1_regularization_strength", l1_regularization_strength, "positive or zero"),
            ("l2_regularization_strength", l2_regularization_strength, "positive or zero"),
            (
                "l2_shrinkage_regularization_strength",
                l2_shrinkage_regularization_strength,
                "positive or zero",
            ),
            ("beta", beta, "positive or zero"),
        )
        for key, value, expected in checks:
            if value < 0.0:
                received = learning_rate_power if key == "learning_rate_power" else value
                raise ValueError(f"`{key}` needs to be {expected}. Received: {key}={received}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._accumulators, self._linears = self.add_optimizer_variables(
            var_list,
            ["accumulator", "linear"],
            initializer=[float(self.initial_accumulator_value), "zeros"],
        )

    def _prepare_step(self, lr: float, step: int) -> tuple:
        l2 = self.l2_regularization_strength + (self.beta / (2.0 * lr) if self.beta else 0.0)
        return lr, 2.0 * l2

    def _update(self, p, g, slots, scratch, coef) -> None:
        xp = current_module()
        lr, two_l2 = coef
        power = -self.learning_rate_power
        l1 = self.l1_regularization_strength
        shrink = self.l2_shrinkage_regularization_strength
        acc, lin = slots[0], slots[1]
        t1, t2, t3 = scratch[0], scratch[1], scratch[2]
        xp.square(g, out=t1)
        xp.add(t1, acc, out=t1)  # the new accumulator
        xp.power(t1, power, out=t2)
        xp.power(acc, power, out=t3)
        xp.copyto(acc, t1)
        xp.subtract(t2, t3, out=t3)
        xp.divide(t3, lr, out=t3)
        xp.multiply(t3, p, out=t3)  # sigma * w
        if shrink:
            xp.multiply(p, 2.0 * shrink, out=t1)
            xp.add(g, t1, out=t1)
            xp.subtract(t1, t3, out=t3)
        else:
            xp.subtract(g, t3, out=t3)
        xp.add(lin, t3, out=lin)
        xp.divide(t2, lr, out=t2)
        xp.add(t2, two_l2, out=t2)  # the quadratic term
        xp.clip(lin, -l1, l1, out=t1)
        xp.subtract(t1, lin, out=t1)
        xp.divide(t1, t2, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta,
            }
        )
        return config
