"""The UCI ML handwritten digits (8x8), bundled with the package.

1,797 grayscale images of the digits 0-9, 8x8 pixels with values 0..16, from
the UCI Machine Learning Repository ("Optical Recognition of Handwritten
Digits", the copy scikit-learn ships as `load_digits`). The file
`data/digits.csv.gz` holds one image per row: 64 pixel values in row-major
order, then the label.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

NUM_SAMPLES = 1797
_DATA_FILE = os.path.join(os.path.dirname(__file__), "data", "digits.csv.gz")


def load_data(
    test_split: float = 0.2, seed: int = 113
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads the 8x8 digits, split into a training and a test set.

    The split is fixed: rows are shuffled by `numpy.random.RandomState(seed)`
    (whose stream NumPy keeps stable across versions and platforms), the first
    `int(1797 * (1 - test_split))` shuffled rows form the training set and the
    rest the test set. The defaults give 1,437 training and 360 test images,
    the same on every call and every machine.

    Args:
        test_split: Fraction of the data held out for the test set, in [0, 1).
        seed: Seed of the shuffle that decides the split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: `x` uint8 arrays of shape
        `(n, 8, 8)` with values 0..16, `y` uint8 label arrays of shape `(n,)`.
    """
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"test_split must be in [0, 1). Received: test_split={test_split}")
    with gzip.open(_DATA_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    if table.shape != (NUM_SAMPLES, 65):
        raise OSError(
            f"{_DATA_FILE} is damaged: expected {NUM_SAMPLES} rows of 65 values. "
            f"Received: shape={table.shape}"
        )
    order = np.random.RandomState(seed).permutation(NUM_SAMPLES)
    x = table[order, :64].reshape(-1, 8, 8)
    y = table[order, 64]
    n_train = int(NUM_SAMPLES * (1.0 - test_split))
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
