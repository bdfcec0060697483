"""MNIST from local files (never downloaded).

Put either `mnist.npz` (arrays `x_train`, `y_train`, `x_test`, `y_test`, as
Keras caches it) or the four IDX files of the original distribution
(`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each optionally gzipped) into one folder: the `path`
argument, else `$DISTKERAS_DATA_DIR/mnist`, else `~/.distkeras/datasets/mnist`.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def default_dir() -> str:
    """The folder searched when no `path` is given."""
    root = os.environ.get("DISTKERAS_DATA_DIR")
    if root:
        return os.path.join(root, "mnist")
    return os.path.join(os.path.expanduser("~"), ".distkeras", "datasets", "mnist")


def load_data(
    path: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads MNIST from local files.

    Args:
        path: A folder holding `mnist.npz` or the four IDX files, or the path of
            an `.npz` file. Defaults to `$DISTKERAS_DATA_DIR/mnist`, else
            `~/.distkeras/datasets/mnist`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images of shape
        `(n, 28, 28)` and uint8 labels of shape `(n,)`.

    Raises:
        FileNotFoundError: if the files are not there (the message says which
            files to put where).
    """
    folder = os.fspath(path) if path is not None else default_dir()
    if os.path.isfile(folder):
        return _load_npz(folder)
    npz = os.path.join(folder, "mnist.npz")
    if os.path.isfile(npz):
        return _load_npz(npz)
    found, missing = {}, []
    for key, name in IDX_FILES.items():
        file = _find_idx(folder, name)
        if file is None:
            missing.append(name)
        else:
            found[key] = file
    if missing:
        raise FileNotFoundError(
            f"MNIST not found in {folder!r} (missing: {', '.join(missing)}). distkeras never "
            "downloads data: put either 'mnist.npz' (arrays x_train, y_train, x_test, y_test) "
            "or the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz) in that folder, "
            "or pass load_data(path=...) or set DISTKERAS_DATA_DIR (files then go in "
            "$DISTKERAS_DATA_DIR/mnist)."
        )
    arrays = {key: read_idx(file) for key, file in found.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise ValueError(
                f"MNIST {split} images and labels differ in length. Received: "
                f"{len(arrays[f'x_{split}'])} images, {len(arrays[f'y_{split}'])} labels"
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def read_idx(filename: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzipped if its name ends in `.gz`) into a NumPy array."""
    filename = os.fspath(filename)
    opener = gzip.open if filename.endswith(".gz") else open
    with opener(filename, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{filename} is not an IDX file. Received: header={raw[:4]!r}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{filename} is truncated or padded: shape {shape} needs "
            f"{count * dtype.itemsize} bytes of data. Received: {len(raw) - header} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header, count=count).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(folder: str, name: str) -> str | None:
    # Also accept the "train-images.idx3-ubyte" spelling some mirrors use.
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        file = os.path.join(folder, candidate)
        if os.path.isfile(file):
            return file
    return None


def _load_npz(filename: str):
    with np.load(filename, allow_pickle=False) as data:
        missing = [k for k in IDX_FILES if k not in data.files]
        if missing:
            raise ValueError(
                f"{filename} lacks the arrays {missing}. Received: keys={sorted(data.files)}"
            )
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
