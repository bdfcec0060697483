"""Stand-in data for the Keras guides, built from NumPy alone.

Each function returns small data of the shapes and dtypes a guide uses
(scaled down so that a test runs in seconds) and is deterministic, so the
reference scripts under `reference/` (run once with real Keras 3) and the
tests see exactly the same arrays. Nothing here imports distkeras or Keras.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

_DIGITS = os.path.join(
    os.path.dirname(__file__), "..", "..", "distkeras", "datasets", "data", "digits.csv.gz"
)


def digits(test_split: float = 0.2, seed: int = 113):
    """The bundled 8x8 digits split as `distkeras.datasets.digits.load_data` does."""
    with gzip.open(_DIGITS, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    order = np.random.RandomState(seed).permutation(len(table))
    x = table[order, :64].reshape(-1, 8, 8)
    y = table[order, 64]
    n_train = int(len(table) * (1.0 - test_split))
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def digits_flat():
    """Stand-in for MNIST flattened to 784 floats: digits as (n, 64) float32 in [0, 1]."""
    (x_train, y_train), (x_test, y_test) = digits()
    x_train = x_train.reshape(-1, 64).astype("float32") / 16.0
    x_test = x_test.reshape(-1, 64).astype("float32") / 16.0
    return (x_train, y_train.astype("int64")), (x_test, y_test.astype("int64"))


def digits_images(scale: int = 1):
    """Stand-in for MNIST images (n, 28, 28, 1): digits as (n, 8*scale, 8*scale, 1) float32."""
    (x_train, y_train), (x_test, y_test) = digits()
    block = np.ones((scale, scale), dtype="float32")

    def prep(x):
        x = x.astype("float32") / 16.0
        if scale > 1:
            x = np.stack([np.kron(img, block) for img in x])
        return x[..., None]

    return (prep(x_train), y_train.astype("int64")), (prep(x_test), y_test.astype("int64"))


def binary_table(n: int = 600, features: int = 10, seed: int = 0, positive_rate: float = 0.5):
    """A tabular binary task: x float32 (n, features), labels int64 of shape (n,).

    The label is a noisy linear threshold; `positive_rate` sets the share of 1s
    (small values give the imbalanced set of the fraud example).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features,))
    score = x @ w + 0.3 * rng.normal(size=n)
    threshold = np.quantile(score, 1.0 - positive_rate)
    return x, (score > threshold).astype("int64")


def int_sequences(n: int = 400, maxlen: int = 20, vocab: int = 100, seed: int = 0):
    """Stand-in for IMDB: int32 token ids (n, maxlen), 0-padded, labels int64 (n,).

    Tokens 2..11 are "positive" and 12..21 "negative" words; the label says
    which kind appears more often, so a sequence model can learn it.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(2, vocab, size=(n, maxlen)).astype("int32")
    lengths = rng.integers(maxlen // 2, maxlen + 1, size=n)
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    pos = ((x >= 2) & (x < 12)).sum(axis=1)
    neg = ((x >= 12) & (x < 22)).sum(axis=1)
    y = (pos > neg).astype("int64")
    y[pos == neg] = rng.integers(0, 2, size=int((pos == neg).sum()))
    return x, y


_POSITIVE = ["great", "wonderful", "loved", "superb", "fun"]
_NEGATIVE = ["awful", "boring", "hated", "dull", "bad"]
_NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "and", "a", "story", "it"]


def review_texts(n: int = 300, seed: int = 0):
    """Stand-in for the IMDB review texts: Python strings (n,) and labels int64 (n,)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        mood = _POSITIVE if label else _NEGATIVE
        words = list(rng.choice(_NEUTRAL, size=int(rng.integers(4, 12))))
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(mood)))
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return np.array(texts), np.array(labels, dtype="int64")


def wave_series(n: int = 300, length: int = 64, seed: int = 0):
    """Stand-in for FordA: float32 series (n, length, 1), labels int64 (n,) in {0, 1}.

    Class 0 is a slow noisy sine, class 1 a fast one.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    t = np.arange(length)
    freq = np.where(y == 1, 0.35, 0.12)[:, None] * (1 + 0.2 * rng.random((n, 1)))
    phase = rng.random((n, 1)) * 2 * np.pi
    x = np.sin(freq * t + phase) + 0.3 * rng.normal(size=(n, length))
    return x[..., None].astype("float32"), y.astype("int64")


def regression(n: int = 1000, features: int = 32, seed: int = 0):
    """x float32 (n, features) and y float32 (n, 1): a noisy linear target."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    w = rng.normal(size=(features, 1)) / np.sqrt(features)
    y = (x @ w + 0.05 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def initial_weights(weights, seed: int = 0, keep_vectors: bool = False):
    """Fixed starting weights of the shapes of `weights` (a model's `get_weights()`).

    Glorot-uniform for kernels, zeros for vectors (or, with `keep_vectors`, the
    vectors as given: BatchNormalization's ones and zeros): setting them in
    both Keras and distkeras takes the random initialization out of the comparison.
    """
    rng = np.random.default_rng(seed)
    out = []
    for w in weights:
        shape = np.shape(w)
        if len(shape) < 2:
            out.append(np.array(w) if keep_vectors else np.zeros(shape, dtype="float32"))
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        limit = np.sqrt(6.0 / ((shape[-2] + shape[-1]) * receptive))
        out.append(rng.uniform(-limit, limit, size=shape).astype("float32"))
    return out


JENA_COLUMNS = [
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
]


def jena_climate(n: int = 3000, seed: int = 0):
    """Stand-in for the Jena climate CSV: columns "Date Time" (strings) and `JENA_COLUMNS`.

    One row per 10 minutes, as in the original: daily cycles of temperature and
    related quantities plus a slow random-walk pressure and noise. Returned as
    a dict of column name -> array (str or float64), in the CSV's column order,
    ready for `pandas.DataFrame`.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    day = np.sin(2 * np.pi * t / 144.0)
    pressure = 990.0 + np.cumsum(rng.normal(scale=0.05, size=n))
    temp = 8.0 + 6.0 * day + 0.02 * (pressure - 990.0) * 10 + rng.normal(scale=0.5, size=n)
    rh = 75.0 - 15.0 * day + rng.normal(scale=3.0, size=n)
    vpmax = 6.1 * np.exp(17.6 * temp / (temp + 243.0))
    vpact = vpmax * rh / 100.0
    wv = np.abs(2.0 + rng.normal(scale=1.0, size=n))
    cols = {
        "p (mbar)": pressure,
        "T (degC)": temp,
        "Tpot (K)": temp + 273.15 + 0.1 * (1000.0 - pressure),
        "Tdew (degC)": temp - (100.0 - rh) / 5.0,
        "rh (%)": rh,
        "VPmax (mbar)": vpmax,
        "VPact (mbar)": vpact,
        "VPdef (mbar)": vpmax - vpact,
        "sh (g/kg)": 622.0 * vpact / pressure,
        "H2OC (mmol/mol)": 1000.0 * vpact / pressure,
        "rho (g/m**3)": 100.0 * pressure / (0.287 * (temp + 273.15)) / 1000.0 * 1000.0,
        "wv (m/s)": wv,
        "max. wv (m/s)": wv * 1.6,
        "wd (deg)": rng.uniform(0.0, 360.0, size=n),
    }
    minutes = t * 10
    stamps = [
        f"{1 + (m // 1440) % 28:02d}.01.2009 {(m // 60) % 24:02d}:{m % 60:02d}:00" for m in minutes
    ]
    return {"Date Time": np.array(stamps), **{k: cols[k].astype("float64") for k in JENA_COLUMNS}}


def pet_images(n_per_class: int = 40, size: int = 24, seed: int = 0):
    """Stand-in for the Cats vs Dogs photos: uint8 RGB images (n, size, size, 3), labels int64.

    Label 0 ("Cat") images have horizontal stripes, label 1 ("Dog") vertical
    ones, each with a random colour, phase and noise (a mirror image keeps
    its class, as a flipped photo does).
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    grid = np.arange(size, dtype="float64")
    for label in (0, 1):
        for _ in range(n_per_class):
            period = rng.uniform(4.0, 7.0)
            wave = np.sin(2 * np.pi * grid / period + rng.uniform(0, 2 * np.pi))
            pattern = np.tile(wave[:, None], (1, size)) if label == 0 else np.tile(wave, (size, 1))
            colour = rng.uniform(60, 200, size=3)
            img = colour + 50.0 * pattern[..., None] + rng.normal(scale=12.0, size=(size, size, 3))
            images.append(np.clip(img, 0, 255).astype("uint8"))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype="int64")
