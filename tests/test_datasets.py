"""Tests for distkeras.datasets: the bundled digits and the local MNIST loader."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from distkeras.datasets import digits, mnist


# -- digits --------------------------------------------------------------------
def _fingerprint(x, y):
    return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]


def _full_table():
    with gzip.open(digits._DATA_FILE, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.int64)


def test_digits_shapes_and_values():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    for arr in (x_train, y_train, x_test, y_test):
        assert arr.dtype == np.uint8
    assert x_train.max() == 16 and x_train.min() == 0
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_digits_split_is_a_partition_of_the_file():
    (x_train, y_train), (x_test, y_test) = digits.load_data(test_split=0.5)
    assert len(x_train) == 898 and len(x_test) == 899
    rows = np.concatenate(
        [
            np.concatenate([x_train.reshape(-1, 64), y_train[:, None]], axis=1),
            np.concatenate([x_test.reshape(-1, 64), y_test[:, None]], axis=1),
        ]
    ).astype(np.int64)
    table = _full_table()
    # Same multiset of rows: compare after a lexicographic sort.
    np.testing.assert_array_equal(rows[np.lexsort(rows.T[::-1])], table[np.lexsort(table.T[::-1])])


def test_digits_split_is_fixed():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    # Recorded once; the split must be the same on every call and machine.
    assert y_test[:12].tolist() == [8, 0, 8, 9, 8, 8, 0, 4, 3, 6, 1, 0]
    assert _fingerprint(x_test, y_test) == "246c4934d19c0bcf"
    assert _fingerprint(x_train, y_train) == "ffbdb8ec6df1a7b2"
    (_, _), (x_other, y_other) = digits.load_data(seed=7)
    assert _fingerprint(x_other, y_other) != "246c4934d19c0bcf"


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_digits_rejects_bad_split(bad):
    with pytest.raises(ValueError, match=f"test_split={bad}"):
        digits.load_data(test_split=bad)


# -- mnist ---------------------------------------------------------------------
def _idx_bytes(arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def _fake_mnist(rng):
    return {
        "x_train": rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=(5,), dtype=np.uint8),
        "x_test": rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=(3,), dtype=np.uint8),
    }


def _write_idx(folder, arrays, gz=False, dotted=False):
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in mnist.IDX_FILES.items():
        if dotted:
            name = name.replace("-idx", ".idx")
        data = _idx_bytes(arrays[key])
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(data)
        else:
            (folder / name).write_bytes(data)


def _assert_same(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    got_arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, got in got_arrays.items():
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])


@pytest.mark.parametrize("gz, dotted", [(False, False), (True, False), (False, True)])
def test_mnist_reads_idx_files(tmp_path, gz, dotted):
    arrays = _fake_mnist(np.random.default_rng(0))
    _write_idx(tmp_path, arrays, gz=gz, dotted=dotted)
    _assert_same(mnist.load_data(tmp_path), arrays)


def test_mnist_reads_npz_and_env_dir(tmp_path, monkeypatch):
    arrays = _fake_mnist(np.random.default_rng(1))
    (tmp_path / "mnist").mkdir()
    np.savez(tmp_path / "mnist" / "mnist.npz", **arrays)
    monkeypatch.setenv("DISTKERAS_DATA_DIR", str(tmp_path))
    _assert_same(mnist.load_data(), arrays)
    _assert_same(mnist.load_data(tmp_path / "mnist" / "mnist.npz"), arrays)


def test_mnist_default_dir_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DISTKERAS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    arrays = _fake_mnist(np.random.default_rng(2))
    _write_idx(tmp_path / ".distkeras" / "datasets" / "mnist", arrays)
    _assert_same(mnist.load_data(), arrays)


def test_mnist_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "never downloads" in message
    for name in mnist.IDX_FILES.values():
        assert name in message
    assert "mnist.npz" in message and "DISTKERAS_DATA_DIR" in message
    # With some files present, the message names the missing ones.
    arrays = _fake_mnist(np.random.default_rng(3))
    _write_idx(tmp_path, arrays)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing: t10k-labels-idx1-ubyte\)"):
        mnist.load_data(tmp_path)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        mnist.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(_idx_bytes(np.zeros((4, 2)))[:-1])
    with pytest.raises(ValueError, match="Received: 7 bytes"):
        mnist.read_idx(short)


def test_read_idx_other_dtypes(tmp_path):
    arr = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    path = tmp_path / "ints"
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x0C, 2) + struct.pack(">2I", 2, 3) + arr.tobytes())
    out = mnist.read_idx(path)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
