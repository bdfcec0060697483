"""The optimizer's state and config: EMA finalization, saving and loading variables, config.

`OptimizerState` is a mixin of `Optimizer` (base.py); it relies on the
optimizer's attributes (`_variables`, `_ema_slots`, `_flat`, the constructor
arguments) and on `_check_not_sharded` from the flat path (`_flat.py`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from distkeras.backend.autodiff import Variable
from distkeras.optimizers import schedules
from distkeras.saving.serialization_lib import deserialize_keras_object, serialize_keras_object


class OptimizerState:
    """Adds state (save/load) and config methods to `Optimizer`."""

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        """With `use_ema`, overwrites the variables with their moving averages."""
        if self.use_ema:
            for v in var_list:
                v.assign(self._ema_slots[self._index[id(v)]])

    def scale_loss(self, loss: Any) -> Any:
        """Multiplies the loss by `loss_scale_factor` when one is set."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    def save_own_variables(self, store: dict) -> None:
        """Writes every optimizer variable into `store` under '0', '1', ..."""
        self._check_not_sharded()
        for i, v in enumerate(self._variables):
            store[str(i)] = v.numpy().copy()

    def load_own_variables(self, store: dict) -> None:
        """Restores the variables written by `save_own_variables` (in place)."""
        if len(store) != len(self._variables):
            warnings.warn(
                f"Skipping variable loading for optimizer '{self.name}', because it has "
                f"{len(self._variables)} variables whereas the saved optimizer has "
                f"{len(store)} variables.",
                stacklevel=2,
            )
            return
        for i, v in enumerate(self._variables):
            v.assign(store[str(i)])
        for st in self._flat.values():  # every slot is whole again
            st.stale_gather = None

    def get_config(self) -> dict:
        """The constructor arguments, JSON-friendly (a schedule is serialized)."""
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif isinstance(lr, Variable):
            lr = float(lr.data)
        else:
            lr = serialize_keras_object(lr)
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Any:
        """Creates an optimizer from `get_config()` output."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize_keras_object(
                config["learning_rate"],
                module_objects=schedules.ALL_OBJECTS_DICT,
                custom_objects=custom_objects,
                printable_module_name="learning rate schedule",
            )
        return cls(**config)
