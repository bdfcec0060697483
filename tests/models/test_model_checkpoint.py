"""ModelCheckpoint: file naming, best-only saving, weights-only, batch frequency, coordinator."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import callbacks, layers
from distkeras.models import Sequential, load_model


def _fit(tmp_path, cb, epochs=3):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.integers(0, 2, 32)
    model = Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(
        x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[cb], validation_data=(x, y)
    )
    return model, hist, x


def test_filepath_formatting_and_whole_model_files(tmp_path):
    cb = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.3f}.dkm"))
    model, hist, x = _fit(tmp_path, cb)
    names = sorted(p.name for p in tmp_path.glob("m-*.dkm"))
    assert names == [f"m-{e + 1:02d}-{v:.3f}.dkm" for e, v in enumerate(hist.history["val_loss"])]
    last = load_model(tmp_path / names[-1])
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_best_only_and_weights_only(tmp_path):
    cb = callbacks.ModelCheckpoint(
        str(tmp_path / "best.dkw"), monitor="val_loss", save_best_only=True, save_weights_only=True
    )
    model, hist, x = _fit(tmp_path, cb)
    best = int(np.argmin(hist.history["val_loss"]))
    assert cb.best == pytest.approx(hist.history["val_loss"][best])
    fresh = Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2, activation="softmax")])
    fresh.load_weights(tmp_path / "best.dkw")
    if best == len(hist.history["val_loss"]) - 1:
        np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_initial_value_threshold_blocks_worse_models(tmp_path):
    cb = callbacks.ModelCheckpoint(
        str(tmp_path / "b.dkw"),
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=0.0,
    )
    _fit(tmp_path, cb)
    assert not (tmp_path / "b.dkw").exists()


def test_batch_frequency_and_non_coordinator(tmp_path):
    cb = callbacks.ModelCheckpoint(
        str(tmp_path / "e{epoch}-b{batch}.dkw"), save_freq=3, save_weights_only=True
    )
    _fit(tmp_path, cb, epochs=2)  # 4 batches per epoch -> saves after global batches 3, 6
    assert sorted(p.name for p in tmp_path.glob("*.dkw")) == ["e1-b3.dkw", "e2-b2.dkw"]

    class Rank1:
        """Rank 1 of two: takes part in the save (rank 0's answer), writes nothing."""

        rank, size = 1, 2
        calls: list = []

        def broadcast_object(self, obj, root=0):
            self.calls.append(obj)
            return {"what": obj["what"]}  # rank 0 saved the same path

    other = tmp_path / "other"
    cb = callbacks.ModelCheckpoint(str(other / "x.dkw"), save_weights_only=True)
    cb.set_communicator(Rank1())
    cb.model = Sequential([layers.Dense(1, input_shape=(1,))])
    cb.on_epoch_end(0, {"val_loss": 1.0})
    assert not other.exists()
    assert Rank1.calls == [{"what": f"save_weights({str(other / 'x.dkw')!r})"}]


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: save_freq=0"):
        callbacks.ModelCheckpoint("x", save_freq=0)
    with pytest.raises(ValueError, match="Received: mode='best'"):
        callbacks.ModelCheckpoint("x", mode="best")
