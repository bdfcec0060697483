"""Learning-rate scaling for data-parallel training (Goyal et al. 2017; Horovod's `lr * size`).

With N workers the global batch is N times larger, so the rate is scaled up:
linearly (`lr * N`, the rule for SGD) or by the square root (`lr * sqrt(N)`,
often preferred for adaptive optimizers such as Adam). Pair it with
`distkeras.callbacks.LearningRateWarmup` to reach the scaled rate gradually.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SCALING_RULES = ("linear", "sqrt")


def scale_learning_rate(lr: float, world_size: int | None = None, rule: str = "linear") -> float:
    """Scales a single-worker learning rate to `world_size` workers.

    ```python
    opt = optimizers.SGD(dist.scale_learning_rate(0.1))  # 0.1 * number of ranks
    ```

    Args:
        lr: The learning rate tuned for one worker (a non-negative number).
        world_size: Number of workers; defaults to the size of the current
            communicator (`distkeras.distributed.get_communicator().size`).
        rule: `"linear"` (`lr * world_size`) or `"sqrt"` (`lr * sqrt(world_size)`).

    Returns:
        The scaled learning rate, as a Python float.
    """
    if rule not in SCALING_RULES:
        raise ValueError(
            f"Unknown learning-rate scaling rule. Expected one of {SCALING_RULES}. "
            f"Received: rule={rule!r}"
        )
    if isinstance(lr, bool) or not _is_number(lr) or not math.isfinite(float(lr)) or lr < 0:
        raise ValueError(f"`lr` must be a finite non-negative number. Received: lr={lr!r}")
    if world_size is None:
        from distkeras.distributed import get_communicator  # noqa: PLC0415

        world_size = get_communicator().size
    if (
        isinstance(world_size, bool)
        or not isinstance(world_size, (int, np.integer))
        or world_size < 1
    ):
        raise ValueError(
            f"`world_size` must be a positive integer. Received: world_size={world_size!r}"
        )
    factor = float(world_size) if rule == "linear" else math.sqrt(world_size)
    return float(lr) * factor


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) or (
        isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "iuf"
    )
