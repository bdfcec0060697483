"""Directory datasets (images and texts, flow_from_directory), lazy loading, 2-rank fit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distkeras import layers
from distkeras.models import Sequential
from distkeras.preprocessing.image import ImageDataGenerator, ImageFolderDataset
from distkeras.utils import image_dataset_from_directory, text_dataset_from_directory
from tests.preprocessing.helpers import check_sharded_reads, make_image_folder

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "scripts" / "dp_image_folder.py"


@pytest.fixture
def folder(tmp_path):
    files = make_image_folder(tmp_path / "data", {"cats": 3, "dogs": 2})
    (tmp_path / "data" / "cats" / "notes.txt").write_text("not an image")
    return tmp_path / "data", files


def all_batches(ds):
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return np.concatenate(xs), np.concatenate(ys)


def test_inferred_labels_order_and_resize(folder):
    root, files = folder
    ds = image_dataset_from_directory(root, image_size=(4, 5), batch_size=2, shuffle=False)
    assert isinstance(ds, ImageFolderDataset) and len(ds) == 3
    assert ds.class_names == ["cats", "dogs"]
    assert ds.file_paths == sorted(files)  # by class, then name
    x, y = all_batches(ds)
    assert x.shape == (5, 4, 5, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1])
    assert y.dtype == np.int32
    for img, path in zip(x, ds.file_paths):
        label, colour = files[path]
        tol = 0 if path.endswith(".png") else 3  # a flat colour stays flat when resized
        assert np.abs(img - np.array(colour, np.float32)).max() <= tol


def test_label_modes_color_modes_and_no_labels(folder):
    root, _ = folder
    cat = image_dataset_from_directory(
        root, label_mode="categorical", image_size=(3, 3), shuffle=False
    )
    np.testing.assert_array_equal(cat[0][1], np.eye(2)[[0, 0, 0, 1, 1]])
    binary = image_dataset_from_directory(
        root, label_mode="binary", image_size=(3, 3), shuffle=False
    )
    assert binary[0][1].shape == (5, 1) and binary[0][1].dtype == np.float32
    gray = image_dataset_from_directory(root, color_mode="grayscale", image_size=(3, 3))
    assert gray[0][0].shape == (5, 3, 3, 1)
    only_images = image_dataset_from_directory(root, labels=None, image_size=(3, 3))
    assert only_images[0].shape == (5, 3, 3, 3)
    given = image_dataset_from_directory(
        root, labels=[4, 3, 2, 1, 0], image_size=(3, 3), shuffle=False
    )
    np.testing.assert_array_equal(given[0][1], [4, 3, 2, 1, 0])
    cf = image_dataset_from_directory(root, image_size=(3, 4), data_format="channels_first")
    assert cf[0][0].shape == (5, 3, 3, 4)
    cropped = image_dataset_from_directory(root, image_size=(2, 2), crop_to_aspect_ratio=True)
    assert cropped[0][0].shape == (5, 2, 2, 3)
    padded = image_dataset_from_directory(
        root, image_size=(2, 2), pad_to_aspect_ratio=True, shuffle=False
    )
    assert padded[0][0].shape == (5, 2, 2, 3)


def test_shuffle_seed_and_validation_split(folder):
    root, files = folder
    a = image_dataset_from_directory(root, image_size=(2, 2), seed=3)
    b = image_dataset_from_directory(root, image_size=(2, 2), seed=3)
    assert a.file_paths == b.file_paths and sorted(a.file_paths) == sorted(files)
    train, val = image_dataset_from_directory(
        root, image_size=(2, 2), seed=3, validation_split=0.4, subset="both"
    )
    assert len(train.file_paths) == 3 and len(val.file_paths) == 2
    assert sorted(train.file_paths + val.file_paths) == sorted(files)
    only_val = image_dataset_from_directory(
        root, image_size=(2, 2), seed=3, validation_split=0.4, subset="validation"
    )
    assert only_val.file_paths == val.file_paths
    for path, label in zip(train.file_paths, all_batches(train)[1]):
        assert files[path][0] == label


def test_loading_is_lazy_and_sharded(folder, monkeypatch):
    root, _ = folder
    opened = []
    original = ImageFolderDataset.load_image
    monkeypatch.setattr(
        ImageFolderDataset, "load_image", lambda self, p: opened.append(p) or original(self, p)
    )
    ds = image_dataset_from_directory(root, image_size=(3, 3), batch_size=2, seed=0)
    assert opened == []  # indexing the directory reads no image
    ds[1]
    assert opened == ds.file_paths[2:4]
    opened.clear()
    ds.get_shard(1, 1, 2)
    assert opened == ds.file_paths[3:4]
    check_sharded_reads(ds)


def test_fit_on_a_directory_dataset(folder):
    root, _ = folder
    ds = image_dataset_from_directory(root, image_size=(4, 4), batch_size=2, seed=0)
    model = Sequential(
        [layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(ds, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["loss"]).all()


def test_text_dataset_from_directory(tmp_path):
    for name, docs in {
        "neg": ["bad movie", "awful"],
        "pos": ["great film", "loved it", "fun"],
    }.items():
        (tmp_path / name).mkdir()
        for i, doc in enumerate(docs):
            (tmp_path / name / f"{i}.txt").write_text(doc)
    ds = text_dataset_from_directory(tmp_path, batch_size=2, shuffle=False, max_length=5)
    texts, labels = all_batches(ds)
    assert texts.tolist() == ["bad m", "awful", "great", "loved", "fun"]
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1])
    assert ds.class_names == ["neg", "pos"]
    check_sharded_reads(text_dataset_from_directory(tmp_path, batch_size=2, seed=1))
    with pytest.raises(ValueError, match="No text files"):
        text_dataset_from_directory(_empty(tmp_path))
    with pytest.raises(ValueError, match="max_length=0"):
        text_dataset_from_directory(tmp_path, max_length=0)


def _empty(tmp_path):
    path = tmp_path / "empty"
    path.mkdir(exist_ok=True)
    return path


def test_flow_from_directory(folder):
    root, files = folder
    gen = ImageDataGenerator(rescale=1 / 255.0)
    it = gen.flow_from_directory(root, target_size=(4, 4), batch_size=2, shuffle=False)
    assert it.class_indices == {"cats": 0, "dogs": 1} and it.samples == 5
    np.testing.assert_array_equal(it.classes, [0, 0, 0, 1, 1])
    x, y = it[0]
    assert x.shape == (2, 4, 4, 3) and y.shape == (2, 2)
    np.testing.assert_allclose(x[0, 0, 0], np.array(files[it.filepaths[0]][1]) / 255, atol=1e-6)
    sparse = gen.flow_from_directory(root, target_size=(4, 4), class_mode="sparse", seed=2)
    check_sharded_reads(sparse)
    split = ImageDataGenerator(validation_split=0.5)
    val = split.flow_from_directory(root, target_size=(2, 2), subset="validation")
    assert val.samples == 2  # int(0.5 * 3) cats + int(0.5 * 2) dogs


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"label_mode": "sparse"}, "label_mode='sparse'"),
        ({"color_mode": "cmyk"}, "color_mode='cmyk'"),
        ({"validation_split": 0.2, "subset": "training"}, "seed"),
        ({"validation_split": 0.2}, "subset"),
        ({"subset": "test", "validation_split": 0.2, "seed": 1}, "subset='test'"),
        ({"image_size": (0, 3)}, "image_size"),
        ({"labels": "folders"}, "labels='folders'"),
        ({"labels": [0, 1]}, "len\\(labels\\) is 2"),
        ({"class_names": ["cats", "birds"]}, "class_names"),
        ({"interpolation": "bicubic"}, "interpolation='bicubic'"),
    ],
)
def test_bad_arguments(folder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        image_dataset_from_directory(folder[0], **kwargs)


def test_empty_missing_and_unreadable(tmp_path, folder):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="No images found"):
        image_dataset_from_directory(tmp_path / "empty")
    with pytest.raises(ValueError, match="existing directory"):
        image_dataset_from_directory(tmp_path / "nowhere")
    with pytest.raises(ValueError, match='label_mode="binary"'):
        make_image_folder(tmp_path / "three", {"a": 1, "b": 1, "c": 1})
        image_dataset_from_directory(tmp_path / "three", label_mode="binary")
    with pytest.raises(ValueError, match="No images found"):
        ImageDataGenerator().flow_from_directory(tmp_path / "empty")
    root, _ = folder
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG but truncated")
    ds = image_dataset_from_directory(root, image_size=(2, 2), shuffle=False, batch_size=10)
    with pytest.raises(ValueError, match="broken.png"):
        ds[0]


# ---------------------------------------------------------------- data-parallel
def _run(tmp_path: Path, data: Path, n: int) -> list[dict]:
    prefix = str(tmp_path / f"n{n}")
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    cmd = [sys.executable, str(SCRIPT), str(data), prefix]
    if n > 1:
        mpirun = shutil.which("mpirun")
        cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", "-n", str(n), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(Path(f"{prefix}.rank{r}.json").read_text()) for r in range(n)]


def test_two_ranks_read_each_image_once_per_epoch_and_match_one_process(tmp_path):
    pytest.importorskip("mpi4py")
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not found")
    # 14 images: global batches 4, 4, 4, 2, so the last one is split 1 + 1.
    files = make_image_folder(tmp_path / "data", {"a": 7, "b": 7})
    single = _run(tmp_path, tmp_path / "data", 1)[0]
    ranks = _run(tmp_path, tmp_path / "data", 2)
    for phase in ("epoch0", "epoch1", "evaluate"):
        reads = [r[phase] for r in ranks]
        assert sorted(reads[0] + reads[1]) == sorted(files), phase  # each image exactly once
        assert set(reads[0]).isdisjoint(reads[1])
        assert len(reads[0]) > 0 and len(reads[1]) > 0
    for r in ranks:  # the same training as one process, on every rank
        for a, b in zip(r["weights"], single["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["loss"], single["loss"], rtol=1e-5)
