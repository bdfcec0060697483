"""Stand-in data and weights for "Working with RNNs", built from NumPy alone.

Shared by `test_working_with_rnns.py` and `reference/ref_working_with_rnns.py`
so that distkeras and Keras 3 see the same arrays.
"""

from __future__ import annotations

import numpy as np

from tests.keras_guides import _data


def weights_like(weights, seed: int = 0, scale: float = 0.4):
    """Normal(0, scale) float32 arrays of the shapes of `weights`, biases included.

    Nonzero biases, unlike `_data.initial_weights`, so that every gate's bias
    takes part in a comparison of outputs.
    """
    rng = np.random.default_rng(seed)
    return [(scale * rng.normal(size=np.shape(w))).astype("float32") for w in weights]


def sequences(batch: int = 2, steps: int = 3, features: int = 4, seed: int = 0):
    """Float32 sequences (batch, steps, features) in [0, 1), like the guide's paragraphs."""
    return np.random.default_rng(seed).random((batch, steps, features)).astype("float32")


def tokens(batch: int = 2, steps: int = 5, vocab: int = 20, seed: int = 0):
    """Int32 token ids (batch, steps) in [1, vocab)."""
    return np.random.default_rng(seed).integers(1, vocab, size=(batch, steps)).astype("int32")


def digit_rows():
    """Stand-in for MNIST read row by row: the bundled 8x8 digits as (n, 8, 8) float32 in [0, 1].

    Each image is a sequence of 8 rows of 8 pixels (the guide: 28 rows of 28).
    """
    (x_train, y_train), (x_test, y_test) = _data.digits()
    return (
        (x_train.astype("float32") / 16.0, y_train.astype("int64")),
        (x_test.astype("float32") / 16.0, y_test.astype("int64")),
    )
