"""Global seeding, as `keras.utils.set_random_seed`."""

from __future__ import annotations

import random

import numpy as np

from distkeras.backend.random import set_global_seed


def set_random_seed(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global generator and distkeras's streams.

    After this call, layers and initializers created without an explicit seed
    draw their seeds from a fresh global stream, so a script that calls
    `set_random_seed(s)` first builds the same model every time.

    Args:
        seed: Integer, the random seed to use.

    Raises:
        ValueError: if `seed` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"Expected `seed` argument to be an integer. Received: seed={seed!r} "
            f"(of type {type(seed)})"
        )
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"Expected `seed` to be a non-negative integer. Received: seed={seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    set_global_seed(seed)
