"""Exact resume: kill -9 a training run, rerun the command, get bitwise the same result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import distkeras as keras
from distkeras import callbacks, layers
from distkeras.models import Sequential

SCRIPT = Path(__file__).parent / "scripts" / "resume_train.py"
ROOT = Path(__file__).resolve().parents[2]
MPIRUN = shutil.which("mpirun")
STEPS_PER_EPOCH = 6  # 90 training samples at batch 16
EPOCHS_RUN = 4  # EarlyStopping stops after the 4th epoch


def _env(**extra: str) -> dict:
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    env.pop("KILL_AT", None)
    env.update(extra)
    return env


def run(tmp: Path, tag: str, n: int, backup: Path, mode="dropout", kill_at=0, **env):
    prefix = str(tmp / tag)
    cmd = [sys.executable, str(SCRIPT), prefix, str(backup), mode]
    if n > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n), *cmd]
    extra = {"KILL_AT": str(kill_at)} if kill_at else {}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=_env(**extra, **env)
    )
    if kill_at:
        assert proc.returncode != 0, "the run was meant to be killed"
        return None
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = []
    for r in range(n):
        with np.load(f"{prefix}.rank{r}.npz") as f:
            out.append(
                {
                    "weights": [f[f"arr_{i}"] for i in range(4)],
                    "history": json.loads(str(f["history"])),
                    "epochs": json.loads(str(f["epochs"])),
                    "csv": Path(prefix + ".csv").read_text(),
                }
            )
    return out


def assert_same(a: dict, b: dict) -> None:
    for u, v in zip(a["weights"], b["weights"]):
        np.testing.assert_array_equal(u, v)
    assert a["history"] == b["history"] and a["epochs"] == b["epochs"]
    assert a["csv"] == b["csv"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    result = run(tmp, "ref", 1, tmp / "backup")
    assert result[0]["epochs"] == list(range(EPOCHS_RUN))
    assert result[0]["history"]["learning_rate"][-1] < 0.001  # ReduceLROnPlateau acted
    assert not (tmp / "backup").exists()  # deleted after a finished run
    return result[0]


def test_kill_and_rerun_is_bitwise_identical(tmp_path, reference):
    total = STEPS_PER_EPOCH * EPOCHS_RUN
    rng = np.random.default_rng(2026)
    kill_steps = sorted({int(s) for s in rng.choice(np.arange(1, total), 2, replace=False)} | {9})
    for k in kill_steps:  # 9 is mid-epoch (epoch 1, step 2) and right after a backup at 8
        backup = tmp_path / f"backup{k}"
        run(tmp_path, f"k{k}", 1, backup, kill_at=k)
        assert backup.exists()
        resumed = run(tmp_path, f"k{k}", 1, backup)
        assert_same(resumed[0], reference)


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
def test_mpi_kill_and_rerun_with_two_ranks(tmp_path):
    ref = run(tmp_path, "ref2", 2, tmp_path / "b_ref")
    backup = tmp_path / "b"
    run(tmp_path, "k2", 2, backup, kill_at=11)
    resumed = run(tmp_path, "k2", 2, backup)
    for r in range(2):
        assert_same(resumed[r], ref[r])


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
def test_resume_with_a_different_number_of_ranks_deterministic(tmp_path):
    ref = run(tmp_path, "ref", 1, tmp_path / "b_ref", mode="plain", DET="1")[0]
    run(tmp_path, "a", 2, tmp_path / "b21", mode="plain", kill_at=9, DET="1")
    two_to_one = run(tmp_path, "a", 1, tmp_path / "b21", mode="plain", DET="1")[0]
    run(tmp_path, "b", 1, tmp_path / "b12", mode="plain", kill_at=9, DET="1")
    one_to_two = run(tmp_path, "b", 2, tmp_path / "b12", mode="plain", DET="1")[0]
    for res in (two_to_one, one_to_two):
        for u, v in zip(res["weights"], ref["weights"]):
            np.testing.assert_array_equal(u, v)
        assert res["epochs"] == ref["epochs"]


# ---------------------------------------------------------------- in-process
def _model():
    keras.utils.set_random_seed(5)
    model = Sequential(
        [
            layers.Dense(8, activation="tanh", input_shape=(4,)),
            layers.Dropout(0.2),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(40, 4)).astype("float32"), rng.integers(0, 2, 40)


@pytest.mark.parametrize("asynchronous", [True, False])
def test_crash_between_write_and_rename_keeps_previous_backup(tmp_path, monkeypatch, asynchronous):
    """The write error ends fit (in the background mode: at the next backup or at the end)."""
    x, y = _data()
    ref = _model()
    ref.fit(x, y, batch_size=8, epochs=3, verbose=0)
    model = _model()
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        if str(dst).endswith(".dkc"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    backup = callbacks.BackupAndRestore(tmp_path / "b", save_freq=2, asynchronous=asynchronous)
    with pytest.raises(OSError, match="power cut"):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup])
    monkeypatch.setattr(os, "replace", real_replace)
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.startswith(".tmp")]
    model = _model()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[callbacks.BackupAndRestore(tmp_path / "b", save_freq=2)],
    )
    for u, v in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_restart_removes_temporaries_a_killed_writer_left(tmp_path):
    x, y = _data()
    backup_dir = tmp_path / "b"
    backup_dir.mkdir()
    (backup_dir / ".tmp-killed").write_bytes(b"half a checkpoint")
    (backup_dir / "notes.txt").write_text("kept")
    model = _model()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.BackupAndRestore(backup_dir, save_freq=2, delete_checkpoint=False)],
    )
    names = sorted(p.name for p in backup_dir.iterdir())
    assert ".tmp-killed" not in names and "notes.txt" in names
    assert any(n.endswith(".dkc") for n in names)


def test_background_backups_equal_synchronous_ones(tmp_path):
    """The background writer saves the state of its step, not of a later one."""
    from distkeras.saving.file_format import read_container

    x, y = _data()
    for mode in (True, False):
        model = _model()
        backup = callbacks.BackupAndRestore(
            tmp_path / str(mode), save_freq=3, delete_checkpoint=False, keep=10, asynchronous=mode
        )
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup])
    names = sorted(p.name for p in (tmp_path / "True").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "False").iterdir())
    assert len([n for n in names if n.endswith(".dkc")]) == 5  # steps 3, 6, 9, 12, 15
    for name in names:
        if name.endswith(".dkc"):
            a = read_container(tmp_path / "True" / name)[1]
            b = read_container(tmp_path / "False" / name)[1]
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")


def test_corrupt_latest_backup_falls_back_with_a_warning(tmp_path):
    x, y = _data()
    ref = _model()
    ref.fit(x, y, batch_size=8, epochs=3, verbose=0)

    class Stop(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model._global_step == 7:
                raise KeyboardInterrupt

    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=3,
            verbose=0,
            callbacks=[Stop(), callbacks.BackupAndRestore(tmp_path / "b", save_freq=3, keep=3)],
        )
    files = sorted((tmp_path / "b").glob("ckpt-*.dkc"))
    assert [f.name for f in files] == ["ckpt-000000000003.dkc", "ckpt-000000000006.dkc"]
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[: len(data) // 2])  # a torn write
    model = _model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=3,
            verbose=0,
            callbacks=[callbacks.BackupAndRestore(tmp_path / "b", save_freq=3)],
        )
    assert any("ckpt-000000000006.dkc" in str(w.message) for w in caught)
    for u, v in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_incompatible_model_is_refused_naming_the_path(tmp_path):
    x, y = _data()

    class Stop(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model._global_step == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _model().fit(
            x,
            y,
            batch_size=8,
            epochs=1,
            verbose=0,
            callbacks=[Stop(), callbacks.BackupAndRestore(tmp_path / "b", save_freq=1)],
        )
    other = Sequential([layers.Dense(5, input_shape=(4,)), layers.Dense(2, activation="softmax")])
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="layers/dense/vars/0"):
        other.fit(
            x,
            y,
            batch_size=8,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.BackupAndRestore(tmp_path / "b")],
        )


def test_backup_and_restore_argument_errors():
    with pytest.raises(ValueError, match="Received: save_freq=0"):
        callbacks.BackupAndRestore("/tmp/x", save_freq=0)
    with pytest.raises(ValueError, match="keep"):
        callbacks.BackupAndRestore("/tmp/x", keep=0)


def test_checkpoint_module_for_custom_training_loops(tmp_path):
    x, y = _data()

    def train(model, opt, steps, start=0, ckpt=None):
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        for step in range(start, steps):
            with keras.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_weights)
            opt.apply(grads, model.trainable_weights)
            if ckpt is not None and step == ckpt:
                keras.checkpoint.save(
                    {"model": model, "optimizer": opt, "step": step + 1}, tmp_path / "c"
                )
                return

    ref, ref_opt = _model(), keras.optimizers.Adam(0.01)
    train(ref, ref_opt, 6)
    model, opt = _model(), keras.optimizers.Adam(0.01)
    train(model, opt, 6, ckpt=2)
    model2, opt2 = _model(), keras.optimizers.Adam(0.01)
    opt2.build(model2.trainable_weights)
    restored = keras.checkpoint.restore(tmp_path / "c", {"model": model2, "optimizer": opt2})
    assert restored["step"] == 3
    train(model2, opt2, 6, start=restored["step"])
    for u, v in zip(model2.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert keras.checkpoint.restore(tmp_path / "empty") is None
    with pytest.raises(ValueError, match="must be built"):
        keras.checkpoint.restore(tmp_path / "c", {"optimizer": keras.optimizers.Adam()})


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
def test_resume_with_fewer_ranks_default_mode_is_within_rounding(tmp_path):
    ref = run(tmp_path, "ref", 1, tmp_path / "b_ref", mode="plain")[0]
    run(tmp_path, "c", 2, tmp_path / "b21", mode="plain", kill_at=9)
    resumed = run(tmp_path, "c", 1, tmp_path / "b21", mode="plain")[0]
    for u, v in zip(resumed["weights"], ref["weights"]):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    assert resumed["epochs"] == ref["epochs"]
