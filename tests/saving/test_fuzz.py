"""Fuzzing the loaders: 1,050 mutated model, weight and checkpoint files per run.

Each mutated file (bit flips, truncations, every header field and array-entry
field edited, config and state nodes replaced by huge shapes, wrong types,
deep nesting, or functions of a planted module and bytecode) must either load
or raise `FileFormatError`/`ValueError` naming the file; no code from the file
may run, and no load may allocate more than `PEAK_BOUND` (measured with
tracemalloc, which sees NumPy's buffers).
"""

from __future__ import annotations

import base64
import json
import marshal
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest

import distkeras as keras
from distkeras import callbacks, layers
from distkeras.distributed.communicator import LocalCommunicator
from distkeras.models import load_model, training_state
from distkeras.saving.file_format import FileFormatError, read_container
from tests.saving.crafting import join_container, split_container

SEED = 20261203
PEAK_BOUND = 64 << 20  # bytes a single load may allocate at its peak
COUNTS = {"model": 500, "weights": 250, "checkpoint": 300}
PLANTED = "dk_fuzz_planted"

ENTRY_FIELDS = ("path", "dtype", "shape", "offset", "nbytes", "crc32")
TOP_FIELDS = ("format_version", "kind", "metadata", "config", "arrays")
HUGE = (2**31, 2**40, 2**62, 2**64 - 1, 10**18)


def _deep(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


def _values(marker: str) -> list:
    """Replacement values: huge, negative, mistyped, deep, and code-naming ones."""
    code = compile(f"open({marker!r}, 'w').close()", "<fuzz>", "exec")
    bytecode = base64.b64encode(marshal.dumps(code)).decode("ascii")
    planted = {"class_name": "function", "module": PLANTED, "config": "boom"}
    lambda_code = {"class_name": "__lambda__", "config": {"code": bytecode}}
    return [
        *HUGE,
        -1,
        -(2**63),
        0,
        True,
        None,
        1.5,
        float("inf"),
        float("nan"),
        "x",
        "",
        b"\x00\x01",
        [],
        {},
        [2**40, 2**40],
        [2**62, 4],
        [1] * 70,
        _deep(150),
        _deep(400),
        planted,
        {"class_name": "Lambda", "config": {"name": "z", "function": planted}},
        {"class_name": "Lambda", "config": {"name": "z", "function": lambda_code}},
        {"class_name": "Dense", "config": {"units": 2**40}},
        {"class_name": PLANTED, "module": PLANTED, "config": {}},
        "[" * 5000 + "]" * 5000,
    ]


def _slots(node, out):
    """Every (container, key) of a header tree, so any field or node can be replaced."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _slots(node[k], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out)
    return out


def _json_slots(header):
    """(metadata, key, parsed) of the JSON strings in the metadata (rng, callbacks)."""
    meta = header.get("metadata") or {}
    found = []
    for k, v in meta.items():
        if isinstance(v, str) and v[:1] in "[{":
            found.append((meta, k, json.loads(v)))
        elif isinstance(v, list) and v and all(isinstance(s, str) for s in v):
            for i, s in enumerate(v):
                found.append((v, i, json.loads(s)))
    return found


def _mutations(data: bytes, rng: np.random.Generator, count: int, values: list):
    """`count` mutated copies of a container: a sweep of every header field, then random."""
    header, body = split_container(data)
    out = []
    for field in TOP_FIELDS:  # every top-level field with every kind of bad value
        for v in values[:: max(1, len(values) // 8)]:
            h = split_container(data)[0]
            h[field] = v
            out.append(("top:" + field, h, body))
    for field in ENTRY_FIELDS:  # every array-entry field
        for v in values[:: max(1, len(values) // 8)]:
            h = split_container(data)[0]
            h["arrays"][int(rng.integers(len(h["arrays"])))][field] = v
            out.append(("entry:" + field, h, body))
    sizes = [j for j, (n, k) in enumerate(_slots(header.get("config"), [])) if type(n[k]) is int]
    for i, j in enumerate(sizes):  # every integer of the config (units, shapes) made huge
        h = split_container(data)[0]
        node, key = _slots(h["config"], [])[j]
        node[key] = HUGE[i % len(HUGE)]
        out.append(("config-size", h, body))
    blobs = []
    while len(out) + len(blobs) < count:
        kind = rng.integers(5)
        if kind == 0:  # bit flips
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 9))):
                pos = int(rng.integers(len(b)))
                b[pos] ^= 1 << int(rng.integers(8))
            blobs.append(("flip", bytes(b)))
        elif kind == 1:  # truncation
            blobs.append(("truncate", data[: int(rng.integers(len(data)))]))
        elif kind == 2:  # any node of the header (config, metadata, entries) replaced
            h = split_container(data)[0]
            slots = _slots(h, [])
            node, key = slots[int(rng.integers(len(slots)))]
            node[key] = values[int(rng.integers(len(values)))]
            out.append(("node", h, body))
        elif kind == 3:  # a node inside the metadata's JSON state replaced
            h = split_container(data)[0]
            found = _json_slots(h)
            if not found:
                continue
            holder, key, parsed = found[int(rng.integers(len(found)))]
            slots = _slots(parsed, [])
            if slots:
                node, k = slots[int(rng.integers(len(slots)))]
                v = values[int(rng.integers(len(values)))]
                node[k] = v.decode("latin-1") if isinstance(v, bytes) else v
                holder[key] = json.dumps(parsed)
            else:
                holder[key] = "[" * 3000 + "]" * 3000
            out.append(("json", h, body))
        else:  # array bytes changed and their checksum fixed: must load or be refused
            h = split_container(data)[0]
            b = bytearray(body)
            if b:
                b[int(rng.integers(len(b)))] ^= 0xFF
            out.append(("body", h, bytes(b)))
    packed = []
    for what, h, b in out:
        try:
            packed.append((what, join_container(h, b)))
        except (OverflowError, ValueError, TypeError):  # msgpack cannot hold it: not a file
            packed.append((what, join_container(header, body)[:-1]))
    return (packed + blobs)[:count]


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(5, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(3),
        ]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


class _Stop(callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model._global_step == 3:
            raise KeyboardInterrupt


def _callbacks(tmp):
    return [
        callbacks.ModelCheckpoint(str(tmp / "mc.dkm")),
        callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True),
        callbacks.BackupAndRestore(tmp / "b", save_freq=1),
    ]


@pytest.fixture(scope="module")
def base_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzzbase")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 3)).astype("float32")
    model = _model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp / "m.dkm")
    model.save_weights(tmp / "w.dkw")
    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[*_callbacks(tmp), _Stop()])
    ckpt = sorted((tmp / "b").glob("ckpt-*.dkc"))[-1]
    return {
        "model": (tmp / "m.dkm").read_bytes(),
        "weights": (tmp / "w.dkw").read_bytes(),
        "checkpoint": ckpt.read_bytes(),
    }


def _loader(kind, tmp):
    if kind == "model":
        return lambda path: load_model(path)
    model = _model()
    model.build((None, 4))
    if kind == "weights":
        return model.load_weights
    model.optimizer.build(model.trainable_variables)
    comm = LocalCommunicator()

    def restore(path):
        header, arrays = read_container(path)
        cbs = [*_callbacks(tmp), callbacks.History()]
        for cb in cbs:
            cb.set_model(model)
        training_state.cursor(header, str(path))
        training_state.restore(model, cbs, header, arrays, comm, str(path))

    return restore


@pytest.mark.parametrize("kind", sorted(COUNTS))
def test_mutated_files_load_or_fail_cleanly(tmp_path, monkeypatch, base_files, kind):
    marker = tmp_path / "code-ran"
    (tmp_path / f"{PLANTED}.py").write_text(
        textwrap.dedent(f"open({str(marker)!r}, 'w').close()\ndef boom(x):\n    return x\n")
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng([SEED, sorted(COUNTS).index(kind)])
    cases = _mutations(base_files[kind], rng, COUNTS[kind], _values(str(marker)))
    assert len(cases) == COUNTS[kind]
    load = _loader(kind, tmp_path)
    path = tmp_path / f"fuzzed.{kind}"
    outcomes = {"loaded": 0, "refused": 0}
    unexpected, peaks = [], []
    tracemalloc.start()
    try:
        for what, blob in cases:
            path.write_bytes(blob)
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    load(path)
                outcomes["loaded"] += 1
            except (FileFormatError, ValueError) as e:
                outcomes["refused"] += 1
                if str(path) not in str(e):
                    unexpected.append((what, f"does not name the file: {e!r}"[:300]))
            except Exception as e:  # noqa: BLE001 - collected and reported below
                unexpected.append((what, repr(e)[:300]))
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    print(f"{kind}: {outcomes}, peak allocation per load at most {max(peaks) / 2**20:.2f} MiB")
    assert not unexpected, unexpected[:5]
    assert not marker.exists(), "code named by a fuzzed file ran"
    assert PLANTED not in sys.modules
    assert max(peaks) < PEAK_BOUND
    assert outcomes["refused"] > COUNTS[kind] // 2 and outcomes["loaded"] > 0
