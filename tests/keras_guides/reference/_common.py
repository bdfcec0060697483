"""Helpers of the reference scripts (run with real Keras 3, never by pytest).

    KERAS_BACKEND=jax /work/kerasref/bin/python -m tests.keras_guides.reference.ref_<guide>

Each script prints the figures the matching test records as constants.
"""

from __future__ import annotations

import numpy as np


def over_seeds(fn, seeds=(1, 2, 3)):
    """Runs `fn(seed)` (returns a dict of floats) per seed; prints mean and spread of each."""
    import keras

    rows = []
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        rows.append(fn(seed))
    for key in rows[0]:
        values = np.array([row[key] for row in rows])
        print(f"{key}: mean={values.mean():.4f} min={values.min():.4f} max={values.max():.4f}")
