"""Nadam."""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.optimizers.base import Optimizer, check_range


class Nadam(Optimizer):
    """Adam with Nesterov momentum, as `keras.optimizers.Nadam`.

    With `u_t = beta_1 * (1 - 0.5 * 0.96**t)` and `prod_t` the running product
    of the `u`'s: `m_hat = u_{t+1} * m / (1 - prod_t * u_{t+1}) +
    (1 - u_t) * g / (1 - prod_t)`, `v_hat = v / (1 - beta_2**t)`,
    `w -= lr * m_hat / (sqrt(v_hat) + epsilon)`.

    Args:
        learning_rate: Float, schedule or callable. Defaults to 0.001.
        beta_1: Decay rate of the first moment.
        beta_2: Decay rate of the second moment.
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
        dtype = var_list[0].dtype if var_list else None
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )
        self._u_product = self.add_variable((), initializer=1.0, dtype=dtype, name="u_product")

    def _prepare_step(self, lr: float, step: int) -> tuple:
        b1 = self.beta_1
        u_t = b1 * (1.0 - 0.5 * 0.96**step)
        u_t_1 = b1 * (1.0 - 0.5 * 0.96 ** (step + 1))
        self._u_product.assign(float(self._u_product.data) * u_t)
        u_prod = float(self._u_product.data)
        return (
            lr,
            u_t_1,
            1.0 - u_prod * u_t_1,
            1.0 - u_t,
            1.0 - u_prod,
            1.0 - self.beta_2**step,
        )

    def _update(self, p, g, slots, scratch, coef) -> None:
        xp = current_module()
        lr, u_t_1, den_m, one_minus_u_t, den_g, den_v = coef
        m, v = slots[0], slots[1]
        t1, t2 = scratch[0], scratch[1]
        xp.subtract(g, m, out=t1)
        xp.multiply(t1, 1 - self.beta_1, out=t1)
        xp.add(m, t1, out=m)
        xp.square(g, out=t2)
        xp.subtract(t2, v, out=t2)
        xp.multiply(t2, 1 - self.beta_2, out=t2)
        xp.add(v, t2, out=v)
        xp.multiply(m, u_t_1, out=t1)
        xp.divide(t1, den_m, out=t1)
        xp.multiply(g, one_minus_u_t, out=t2)
        xp.divide(t2, den_g, out=t2)
        xp.add(t1, t2, out=t1)
        xp.divide(v, den_v, out=t2)
        xp.sqrt(t2, out=t2)
        xp.add(t2, self.epsilon, out=t2)
        xp.multiply(t1, lr, out=t1)
        xp.divide(t1, t2, out=t1)
        xp.subtract(p, t1, out=p)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
