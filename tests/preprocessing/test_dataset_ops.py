"""The tf.data-style methods of our loader datasets (take, map, cache, unbatch().batch, ...)."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.models.data_adapter import flatten_struct
from distkeras.models.stream_adapters import IterableDataAdapter
from distkeras.utils import (
    image_dataset_from_directory,
    set_random_seed,
    text_dataset_from_directory,
    timeseries_dataset_from_array,
)
from tests.preprocessing.helpers import make_image_folder

DATA = np.arange(60, dtype=np.float32)[:, None] * np.array([[1.0, -1.0]], dtype=np.float32)


def series(batch_size=7):
    """23 windows of length 3 over 25 rows; target = first row's index."""
    return timeseries_dataset_from_array(DATA[:25], np.arange(25), 3, batch_size=batch_size)


def leaves(batch):
    return [np.asarray(a) for a in flatten_struct(batch)]


def targets(ds):
    return np.concatenate([np.asarray(ds[i][1]) for i in range(len(ds))])


def check_shards(view, sizes=(2, 3)):
    """get_shard slices __getitem__, and n ranks' shards rebuild the one-process batches."""
    full = [leaves(view[i]) for i in range(len(view))]
    for i, batch in enumerate(full):
        n = view.batch_length(i)
        assert all(len(a) == n for a in batch)
        for a, b in zip(leaves(view.get_shard(i, 1, n)), batch):
            np.testing.assert_array_equal(a, b[1:n])
    for size in sizes:
        parts = [list(IterableDataAdapter(view, rank=r, size=size).batches(0)) for r in range(size)]
        for step, batch in enumerate(full):
            for k, leaf in enumerate(batch):
                joined = np.concatenate([leaves(parts[r][step][:2])[k] for r in range(size)])
                np.testing.assert_array_equal(joined, leaf)


def test_len_cardinality_iteration_take_skip_repeat():
    ds = series()
    assert len(ds) == 4 and ds.cardinality() == 4 and ds.cardinality().numpy() == 4
    assert [len(b[1]) for b in ds] == [7, 7, 7, 2]
    taken = ds.take(2)
    assert len(taken) == 2
    np.testing.assert_array_equal(targets(taken), np.arange(14))
    np.testing.assert_array_equal(targets(ds.skip(3)), np.arange(21, 23))
    assert len(ds.take(-1)) == 4 and len(ds.take(99)) == 4
    np.testing.assert_array_equal(targets(ds.repeat(2)), np.tile(np.arange(23), 2))
    with pytest.raises(ValueError, match="count=None"):
        ds.repeat()
    check_shards(ds.skip(1))


def test_map_applies_to_tuple_batches_and_keeps_sharded_reads():
    ds = series().map(lambda x, y: (x * 2.0, y + 100))
    x, y = ds[1]
    np.testing.assert_array_equal(x, series()[1][0] * 2.0)
    np.testing.assert_array_equal(y, np.arange(7, 14) + 100)
    check_shards(ds)


def test_unbatch_then_batch_recuts_the_samples():
    ds = series()
    samples = list(ds.unbatch())
    assert len(samples) == len(ds.unbatch()) == 23
    np.testing.assert_array_equal(samples[5][0], DATA[5:8])
    assert ds.unbatch().take(2)[1][1] == 1
    re = ds.unbatch().batch(5)
    assert [re.batch_length(i) for i in range(len(re))] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(targets(re), np.arange(23))
    np.testing.assert_array_equal(re[2][0], np.stack([DATA[i : i + 3] for i in range(10, 15)]))
    assert len(ds.unbatch().batch(5, drop_remainder=True)) == 4
    assert len(ds.rebatch(10)) == 3
    check_shards(re)
    with pytest.raises(ValueError, match="unbatch"):
        ds.batch(5)


def test_cache_reads_each_batch_once_and_prefetch_is_chainable():
    ds = series()
    loads = []
    original = ds.load

    def counting(idx):
        loads.append(len(idx))
        return original(idx)

    ds.load = counting
    cached = ds.cache().prefetch(4)
    first = [leaves(cached[i]) for i in range(len(cached))]
    again = [leaves(cached[i]) for i in range(len(cached))]
    assert loads == [7, 7, 7, 2]
    for a, b in zip(first, again):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_shuffle_is_a_seeded_permutation_of_batches_per_epoch():
    ds = series()
    first_ids = lambda v: [int(v[i][1][0]) for i in range(len(v))]  # noqa: E731
    a, b = ds.shuffle(10, seed=3), ds.shuffle(10, seed=3)
    assert first_ids(a) == first_ids(b)
    assert sorted(first_ids(a)) == [0, 7, 14, 21]
    orders = {tuple(first_ids(a))}
    for _ in range(6):
        a.on_epoch_end()
        orders.add(tuple(first_ids(a)))
    assert len(orders) > 1  # redrawn each epoch
    fixed = ds.shuffle(10, seed=3, reshuffle_each_iteration=False)
    before = first_ids(fixed)
    fixed.on_epoch_end()
    assert first_ids(fixed) == before


def test_views_keep_class_names_and_file_paths(tmp_path):
    make_image_folder(tmp_path, {"cats": 3, "dogs": 2})
    ds = image_dataset_from_directory(tmp_path, image_size=(4, 4), batch_size=2, shuffle=False)
    view = ds.map(lambda x, y: (x / 255.0, y)).cache().prefetch(2).take(2)
    assert view.class_names == ["cats", "dogs"]
    assert view.file_paths == ds.file_paths
    x, y = next(iter(view))
    assert x.max() <= 1.0 and x.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(y, [0, 0])


def test_text_guide_pipeline_adapt_map_cache_fit(tmp_path):
    """text_classification_from_scratch's flow: adapt on ds.map(x), fit on ds.map(vectorize)."""
    for label, words in (
        ("neg", ["bad film", "awful bad", "bad bad"]),
        ("pos", ["good", "fine good"]),
    ):
        (tmp_path / label).mkdir()
        for i, text in enumerate(words):
            (tmp_path / label / f"{i}.txt").write_text(text)
    raw = text_dataset_from_directory(tmp_path, batch_size=2, shuffle=False, verbose=False)
    assert raw.class_names == ["neg", "pos"]
    vectorize = layers.TextVectorization(max_tokens=10, output_sequence_length=4)
    vectorize.adapt(raw.map(lambda x, y: x))
    assert "bad" in vectorize.get_vocabulary()

    def vectorize_text(text, label):
        return vectorize(text[:, None]), label

    train = raw.map(vectorize_text).cache().prefetch(buffer_size=10)
    x, y = train[0]
    assert isinstance(x, np.ndarray) and x.shape == (2, 4)
    set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="int64"),
            layers.Embedding(10, 3),
            layers.GlobalAveragePooling1D(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(train, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2


def test_iterated_batches_answer_numpy_as_eager_tensors():
    """Guide code: `for x, y in ds.take(1): x[0].numpy()`; fit's reads stay plain arrays."""
    ds = series()
    x, y = next(iter(ds.take(1)))
    assert isinstance(x[0].numpy(), np.ndarray) and type(x[0].numpy()) is np.ndarray
    np.testing.assert_array_equal(x.numpy(), ds[0][0])
    assert type(ds[0][0]) is np.ndarray
    assert all(type(a) is np.ndarray for a in next(ds.as_numpy_iterator()))
    window, target = next(iter(ds.unbatch()))
    assert target.numpy() == 0 and window.numpy().shape == (3, 2)
