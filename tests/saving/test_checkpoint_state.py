"""State restored from backups is validated field by field: a tampered backup sets
nothing a callback does not declare, and malformed state is refused naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distkeras as keras
from distkeras import callbacks, checkpoint, layers
from distkeras.saving.checkpoint_manager import CheckpointManager
from distkeras.saving.file_format import FileFormatError, read_container
from distkeras.saving.state_schema import Float, Int, ListOf, check_fields, json_depth, loads_json
from tests.saving.crafting import deep_json, rewrite

_BIAS = {"__array__": "model/layers/dense/vars/1"}  # one array where the model has two


class _Stop(callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model._global_step == 3:
            raise KeyboardInterrupt


def _model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), layers.Dropout(0.2), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")


def _interrupted_backup(tmp_path):
    """The newest backup of a run killed at step 3, with a ModelCheckpoint among its callbacks."""
    x, y = _data()
    good = tmp_path / "good" / "m.dkm"
    cbs = [
        callbacks.ModelCheckpoint(str(good)),
        callbacks.EarlyStopping(monitor="loss", patience=9, restore_best_weights=True),
        callbacks.BackupAndRestore(tmp_path / "b", save_freq=1),
        _Stop(),
    ]
    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    return sorted((tmp_path / "b").glob("ckpt-*.dkc"))[-1]


def _edit_callback_state(path, class_name, edit):
    header, _ = read_container(path)
    meta = dict(header["metadata"])
    entries = json.loads(meta["callbacks"])
    target = next(e for e in entries if e["class"] == class_name)
    edit(target["state"])
    meta["callbacks"] = json.dumps(entries)
    rewrite(path, metadata=meta)


def _resume(tmp_path, checkpoint_path):
    x, y = _data()
    cbs = [
        callbacks.ModelCheckpoint(checkpoint_path),
        callbacks.EarlyStopping(monitor="loss", patience=9, restore_best_weights=True),
        callbacks.BackupAndRestore(tmp_path / "b", save_freq=1),
    ]
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    return cbs[0]


def test_a_tampered_backup_cannot_redirect_model_checkpoint(tmp_path):
    path = _interrupted_backup(tmp_path)
    attacker = tmp_path / "attacker" / "deep" / "stolen.dkm"
    _edit_callback_state(path, "ModelCheckpoint", lambda s: s.update(filepath=str(attacker)))
    with pytest.raises(FileFormatError) as info:
        _resume(tmp_path, str(tmp_path / "good" / "m.dkm"))
    message = str(info.value)
    assert str(path) in message and "ModelCheckpoint.filepath" in message
    assert not (tmp_path / "attacker").exists()


@pytest.mark.parametrize(
    "class_name, edit, field",
    [
        ("ModelCheckpoint", lambda s: s.update(best="nan please"), "ModelCheckpoint.best"),
        ("ModelCheckpoint", lambda s: s.update(_batches_seen=-5), "_batches_seen"),
        ("ModelCheckpoint", lambda s: s.update(_batches_seen=True), "_batches_seen"),
        ("History", lambda s: s.update(history={"loss": [[[1.0]]]}), "History.history"),
        ("History", lambda s: s.update(model="x"), "History.model"),
        ("EarlyStopping", lambda s: s.update(best_weights=[_BIAS]), "EarlyStopping.best_weights"),
        ("EarlyStopping", lambda s: s.update(monitor_op="x"), "EarlyStopping.monitor_op"),
    ],
)
def test_mistyped_or_undeclared_callback_fields_are_refused(tmp_path, class_name, edit, field):
    path = _interrupted_backup(tmp_path)
    _edit_callback_state(path, class_name, edit)
    with pytest.raises(FileFormatError, match=field) as info:
        _resume(tmp_path, str(tmp_path / "good" / "m.dkm"))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "key, value",
    [
        ("rng", [deep_json(50_000)]),
        ("rng", ['{"global": {"seed": 1}, "layers": []}']),
        ("rng", "not a list"),
        ("callbacks", deep_json(50_000)),
        ("callbacks", '[{"class": "History", "state": {"history": {"__array__": "nope"}}}]'),
        ("epoch", "3"),
        ("step", -1),
        ("seed", -3),
        ("world_size", 0),
    ],
)
def test_malformed_training_state_is_refused_naming_the_file(tmp_path, key, value):
    path = _interrupted_backup(tmp_path)
    header, _ = read_container(path)
    rewrite(path, metadata={**header["metadata"], key: value})
    with pytest.raises(FileFormatError, match=key) as info:
        _resume(tmp_path, str(tmp_path / "good" / "m.dkm"))
    assert str(path) in str(info.value)


def test_an_untampered_backup_still_resumes(tmp_path):
    _interrupted_backup(tmp_path)
    mc = _resume(tmp_path, str(tmp_path / "good" / "m.dkm"))
    assert isinstance(mc.best, float) and mc._batches_seen > 0


def test_a_deeply_nested_latest_pointer_is_ignored(tmp_path):
    newest = _interrupted_backup(tmp_path)
    (tmp_path / "b" / "latest").write_text(deep_json(100_000))
    assert CheckpointManager(tmp_path / "b").latest_path() == str(newest)
    _resume(tmp_path, str(tmp_path / "good" / "m.dkm"))


def test_custom_loop_checkpoint_refuses_malformed_rng(tmp_path):
    model = _model()
    checkpoint.save({"model": model, "step": 3}, tmp_path / "c")
    path = sorted((tmp_path / "c").glob("ckpt-*.dkc"))[-1]
    header, _ = read_container(path)
    meta = header["metadata"]
    for rng in (deep_json(10_000), json.dumps({"model": [{"seed": -1}]})):
        rewrite(path, metadata={**meta, "rng": rng})
        with pytest.raises(FileFormatError, match="rng") as info:
            checkpoint.restore(tmp_path / "c", {"model": model})
        assert str(path) in str(info.value)
    rewrite(path, metadata=meta)
    assert checkpoint.restore(tmp_path / "c", {"model": model})["step"] == 3


def test_schema_checks():
    schema = {"wait": Int(), "best": Float(), "seen": ListOf(Int())}
    assert check_fields(schema, {"wait": 2, "best": float("inf")}, "X") == {
        "wait": 2,
        "best": float("inf"),
    }
    with pytest.raises(FileFormatError, match=r"X\.filepath: not a restorable field"):
        check_fields(schema, {"filepath": "/etc/passwd"}, "X")
    with pytest.raises(FileFormatError, match=r"X\.seen\[1\]"):
        check_fields(schema, {"seen": [1, "2"]}, "X")
    with pytest.raises(FileFormatError, match="wait"):
        check_fields(schema, {"wait": 2.5}, "X")
    assert json_depth('["[[[[", {"a": [1]}]') == 3  # brackets inside strings do not count
    with pytest.raises(FileFormatError, match="nested 40 deep"):
        loads_json(deep_json(40), "f")
    assert loads_json(deep_json(32), "f") == json.loads(deep_json(32))


def test_a_backup_of_the_older_layout_is_restored_by_position(tmp_path):
    path = _interrupted_backup(tmp_path)
    header, _ = read_container(path)
    entries = json.loads(header["metadata"]["callbacks"])
    saved = next(e["state"] for e in entries if e["class"] == "ModelCheckpoint")
    legacy = [e["state"] for e in entries]  # before callbacks were saved with their class
    rewrite(path, metadata={**header["metadata"], "callbacks": json.dumps(legacy)})
    x, y = _data()
    mc = callbacks.ModelCheckpoint(str(tmp_path / "good" / "m.dkm"))
    seen = []

    class Probe(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(mc._batches_seen)

    cbs = [mc, callbacks.EarlyStopping(monitor="loss", patience=9)]
    cbs += [callbacks.BackupAndRestore(tmp_path / "b", save_freq=1), Probe()]
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    assert seen[0] == saved["_batches_seen"] > 0
