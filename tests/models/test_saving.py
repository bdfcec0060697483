"""Weight files, whole-model files, JSON round trips, and what bad files do."""

from __future__ import annotations

import json
import os
import struct
import zlib

import msgpack
import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.models import load_model, model_from_json
from distkeras.saving.file_format import MAGIC, FileFormatError, read_container, write_container

ACTS = ["relu", "tanh", "sigmoid", None]


def random_sequential(rng: np.random.Generator, n_in: int):
    stack = [
        layers.Dense(int(rng.integers(2, 9)), activation=ACTS[rng.integers(4)], input_shape=(n_in,))
    ]
    for _ in range(int(rng.integers(0, 3))):
        if rng.random() < 0.3:
            stack.append(layers.Dropout(0.25))
        stack.append(layers.Dense(int(rng.integers(2, 9)), activation=ACTS[rng.integers(4)]))
    stack.append(layers.Dense(3, activation="softmax"))
    return keras.Sequential(stack)


def random_functional(rng: np.random.Generator, n_in: int):
    inp = keras.Input((n_in,))
    tensors = [inp]
    for _ in range(int(rng.integers(1, 4))):
        src = tensors[int(rng.integers(len(tensors)))]
        tensors.append(layers.Dense(int(rng.integers(2, 6)), activation=ACTS[rng.integers(4)])(src))
    if len(tensors) > 2 and rng.random() < 0.5:
        merged = layers.concatenate(tensors[1:])
    else:
        merged = tensors[-1]
    if rng.random() < 0.3:
        merged = layers.Dropout(0.2)(merged)
    a = layers.Dense(3, activation="softmax")(merged)
    b = layers.Dense(3, activation="softmax")(merged)
    return keras.Model(inp, layers.average([a, b]))


@pytest.mark.parametrize("seed", range(12))
def test_random_models_round_trip_json_and_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(2, 6))
    model = (random_sequential if seed % 2 == 0 else random_functional)(rng, n_in)
    x = rng.normal(size=(16, n_in)).astype("float32")
    y = rng.integers(0, 3, 16)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    expected = model.predict(x, verbose=0)

    clone = model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), expected)

    path = tmp_path / "model.dkm"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    model.train_on_batch(x, y)  # Dropout streams, optimizer slots and step count all restored
    loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weight_paths_are_structural(tmp_path):
    a = keras.Sequential([layers.Dense(4, input_shape=(3,), name="first"), layers.Dense(2)])
    b = keras.Sequential([layers.Dense(4, input_shape=(3,), name="other"), layers.Dense(2)])
    a.save_weights(tmp_path / "w")
    _, arrays = read_container(tmp_path / "w")
    assert sorted(arrays) == [
        "layers/dense/vars/0",
        "layers/dense/vars/1",
        "layers/dense_1/vars/0",
        "layers/dense_1/vars/1",
    ]
    b.load_weights(tmp_path / "w")
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_mismatched_architecture_names_the_path(tmp_path):
    keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)]).save_weights(
        tmp_path / "w"
    )
    other = keras.Sequential([layers.Dense(5, input_shape=(3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"'layers/dense/vars/0' has shape \(3, 4\)"):
        other.load_weights(tmp_path / "w")
    deeper = keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2), layers.Dense(1)])
    with pytest.raises(ValueError, match="layers/dense_2/vars/0"):
        deeper.load_weights(tmp_path / "w")


def test_atomic_write_leaves_old_file_on_crash(tmp_path, monkeypatch):
    path = tmp_path / "w"
    write_container(path, [("a", np.ones(3))], kind="weights")
    before = path.read_bytes()

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_container(path, [("a", np.zeros(3))], kind="weights")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # no temporary left behind


def _saved_files(tmp_path):
    model = keras.Sequential(
        [layers.Dense(4, activation="relu", input_shape=(3,)), layers.Dense(2)]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    model.save(tmp_path / "m.dkm")
    model.save_weights(tmp_path / "w.dkw")
    return model


def test_fuzzed_files_fail_cleanly_or_load_correctly(tmp_path):
    model = _saved_files(tmp_path)
    rng = np.random.default_rng(0)
    x = np.ones((2, 3), dtype="float32")
    expected = model.predict(x, verbose=0)
    outcomes = {"error": 0, "ok": 0}
    for name in ("m.dkm", "w.dkw"):
        good = (tmp_path / name).read_bytes()
        for i in range(300):
            data = bytearray(good)
            kind = i % 3
            if kind == 0:
                data = data[: int(rng.integers(0, len(data)))]
            elif kind == 1:
                for _ in range(int(rng.integers(1, 4))):
                    data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
            else:
                pos = int(rng.integers(len(data) + 1))
                data[pos:pos] = (
                    rng.integers(0, 256, int(rng.integers(1, 16))).astype(np.uint8).tobytes()
                )
            bad = tmp_path / f"bad_{name}"
            bad.write_bytes(bytes(data))
            try:
                if name == "m.dkm":
                    out = load_model(bad).predict(x, verbose=0)
                else:
                    clone = keras.Sequential(
                        [layers.Dense(4, activation="relu", input_shape=(3,)), layers.Dense(2)]
                    )
                    clone.load_weights(bad)
                    out = clone.predict(x, verbose=0)
            except (FileFormatError, ValueError):
                outcomes["error"] += 1
                continue
            np.testing.assert_array_equal(out, expected)
            outcomes["ok"] += 1
    assert sum(outcomes.values()) == 600 and outcomes["error"] > 500


def _rewrite_header(path, mutate):
    """Re-encodes a container's header with `mutate` applied, keeping checksums valid."""
    data = bytearray(path.read_bytes())
    (hlen,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    header = msgpack.unpackb(bytes(data[start : start + hlen]), raw=False)
    mutate(header)
    new = msgpack.packb(header, use_bin_type=True)
    body = data[start + hlen + 4 :]
    out = MAGIC + struct.pack("<Q", len(new)) + new + struct.pack("<I", zlib.crc32(new)) + body
    path.write_bytes(out)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda h: h.update(format_version=99), "newer"),
        (lambda h: h.update(arrays="nope"), "malformed header"),
        (lambda h: h["arrays"][0].update(dtype="object"), "invalid dtype"),
        (lambda h: h["arrays"][0].update(shape=[10**6]), "size does not match"),
        (lambda h: h["arrays"][0].pop("crc32"), "malformed array entry"),
        (lambda h: h["config"]["config"].pop("layers"), "layers"),
        (lambda h: h["config"].update(class_name="Sequentiall"), "Sequentiall"),
        (lambda h: h.update(kind="weights"), "does not hold a whole model"),
    ],
)
def test_bad_model_files_raise_clear_errors(tmp_path, mutate, match):
    _saved_files(tmp_path)
    path = tmp_path / "m.dkm"
    _rewrite_header(path, mutate)
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_wrong_magic_and_missing_file(tmp_path):
    (tmp_path / "x").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(FileFormatError, match="wrong magic"):
        load_model(tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")


def test_json_with_wrong_types_and_unknown_classes():
    with pytest.raises(ValueError, match="invalid JSON"):
        model_from_json("{not json")
    with pytest.raises(ValueError, match="class_name"):
        model_from_json(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="Nonexistent"):
        model_from_json(json.dumps({"class_name": "Nonexistent", "config": {}}))
