"""pad_sequences, TimeseriesGenerator, skipgrams, make_sampling_table: hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras.preprocessing import sequence
from distkeras.utils import pad_sequences
from tests.preprocessing.helpers import check_sharded_reads

SEQS = [[1], [2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, [[0, 0, 1], [0, 2, 3], [4, 5, 6]]),
        ({"padding": "post"}, [[1, 0, 0], [2, 3, 0], [4, 5, 6]]),
        ({"maxlen": 2}, [[0, 1], [2, 3], [5, 6]]),
        ({"maxlen": 2, "truncating": "post"}, [[0, 1], [2, 3], [4, 5]]),
        ({"maxlen": 2, "truncating": "post", "padding": "post"}, [[1, 0], [2, 3], [4, 5]]),
        ({"maxlen": 4, "value": -1}, [[-1, -1, -1, 1], [-1, -1, 2, 3], [-1, 4, 5, 6]]),
    ],
)
def test_pad_sequences_hand_values(kwargs, expected):
    out = pad_sequences(SEQS, **kwargs)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int32


def test_pad_sequences_vectors_strings_and_floats():
    out = pad_sequences([[[1, 2]], [[3, 4], [5, 6]]])
    np.testing.assert_array_equal(out, [[[0, 0], [1, 2]], [[3, 4], [5, 6]]])
    words = pad_sequences([["a"], ["b", "c"]], dtype=object, value="", padding="post")
    assert words.tolist() == [["a", ""], ["b", "c"]]
    floats = pad_sequences([[0.5], []], maxlen=2, dtype="float32", value=np.nan)
    assert np.isnan(floats[1]).all() and floats[0, 1] == 0.5
    assert sequence.pad_sequences is pad_sequences


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"maxlen": 0}, "Received: maxlen=0"),
        ({"maxlen": -2}, "Received: maxlen=-2"),
        ({"maxlen": 2.5}, "Received: maxlen=2.5"),
        ({"padding": "middle"}, "padding='middle'"),
        ({"truncating": "both"}, "truncating='both'"),
        ({"value": "x"}, "dtype=object"),
    ],
)
def test_pad_sequences_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(SEQS, **kwargs)


def test_pad_sequences_non_iterable_items():
    with pytest.raises(ValueError, match="non-iterable"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="Shape of sample"):
        pad_sequences([[[1, 2]], [[1, 2, 3]]])


# ---------------------------------------------------------------- TimeseriesGenerator
DATA = np.arange(10)
TARGETS = np.arange(10) * 10


def test_timeseries_generator_windows_and_targets():
    gen = sequence.TimeseriesGenerator(DATA, TARGETS, length=3, batch_size=2)
    # Target rows 3..9 -> 7 windows -> 4 batches.
    assert len(gen) == 4
    x, y = gen[0]
    np.testing.assert_array_equal(x, [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(y, [30, 40])
    x, y = gen[3]
    np.testing.assert_array_equal(x, [[6, 7, 8]])
    np.testing.assert_array_equal(y, [90])


def test_timeseries_generator_sampling_stride_reverse_and_bounds():
    gen = sequence.TimeseriesGenerator(
        DATA, TARGETS, length=4, sampling_rate=2, stride=2, batch_size=10
    )
    x, y = gen[0]
    np.testing.assert_array_equal(x, [[0, 2], [2, 4], [4, 6]])
    np.testing.assert_array_equal(y, [40, 60, 80])
    rev = sequence.TimeseriesGenerator(DATA, TARGETS, length=3, reverse=True, batch_size=1)
    np.testing.assert_array_equal(rev[0][0], [[2, 1, 0]])
    bounded = sequence.TimeseriesGenerator(
        DATA, TARGETS, length=2, start_index=3, end_index=6, batch_size=10
    )
    np.testing.assert_array_equal(bounded[0][1], [50, 60])
    np.testing.assert_array_equal(bounded[0][0], [[3, 4], [4, 5]])


def test_timeseries_generator_shuffle_is_seeded():
    def make(seed):
        return sequence.TimeseriesGenerator(
            DATA, TARGETS, length=2, shuffle=True, seed=seed, batch_size=4
        )

    a, b = make(5), make(5)
    np.testing.assert_array_equal(a[0][1], b[0][1])
    x, y = a[0]
    for window, target in zip(x, y):  # every window still ends right before its target
        np.testing.assert_array_equal(window, [target // 10 - 2, target // 10 - 1])
    first = a[0][1].copy()
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][1])  # a new draw each epoch


def test_timeseries_generator_shards_and_errors():
    check_sharded_reads(sequence.TimeseriesGenerator(DATA, TARGETS, length=3, batch_size=3))
    with pytest.raises(ValueError, match="same length"):
        sequence.TimeseriesGenerator(DATA, TARGETS[:5], length=3)
    with pytest.raises(ValueError, match="is disallowed"):
        sequence.TimeseriesGenerator(DATA, TARGETS, length=11)
    with pytest.raises(ValueError, match="Received: length=0"):
        sequence.TimeseriesGenerator(DATA, TARGETS, length=0)


# ---------------------------------------------------------------- skipgrams
def test_skipgrams_positive_pairs_by_hand():
    couples, labels = sequence.skipgrams(
        [1, 2, 3], vocabulary_size=4, window_size=1, negative_samples=0.0, shuffle=False
    )
    assert couples == [[1, 2], [2, 1], [2, 3], [3, 2]]
    assert labels == [1, 1, 1, 1]
    couples, labels = sequence.skipgrams(
        [1, 0, 2], vocabulary_size=4, window_size=1, negative_samples=0.0, shuffle=False
    )
    assert couples == [] and labels == []  # index 0 is padding: never a word
    _, labels = sequence.skipgrams(
        [1, 2], 3, window_size=2, negative_samples=0, shuffle=False, categorical=True
    )
    assert labels == [[0, 1], [0, 1]]


def test_skipgrams_negatives_and_seeded_shuffle():
    seq = [1, 2, 3, 4, 5]
    couples, labels = sequence.skipgrams(seq, vocabulary_size=10, window_size=2, seed=7)
    positives, _ = sequence.skipgrams(seq, 10, window_size=2, negative_samples=0, shuffle=False)
    assert len(couples) == 2 * len(positives) and labels.count(0) == len(positives)
    assert sorted(c for c, lab in zip(couples, labels) if lab == 1) == sorted(positives)
    for (w, ctx), lab in zip(couples, labels):
        if lab == 0:
            assert w in seq and 1 <= ctx < 10
    again = sequence.skipgrams(seq, vocabulary_size=10, window_size=2, seed=7)
    assert again == (couples, labels)
    assert sequence.skipgrams(seq, vocabulary_size=10, window_size=2, seed=8) != again


def test_make_sampling_table_formula_and_use():
    table = sequence.make_sampling_table(6, sampling_factor=1e-3)
    rank = np.array([1, 1, 2, 3, 4, 5], dtype=float)
    f = 1e-3 * (rank * (np.log(rank) + 0.577) + 0.5 - 1 / (12 * rank))
    np.testing.assert_allclose(table, np.minimum(1.0, f / np.sqrt(f)))
    couples, _ = sequence.skipgrams([1, 2, 3], 4, sampling_table=np.zeros(4), seed=0)
    assert couples == []  # every word dropped by a zero keep-probability
    with pytest.raises(ValueError, match="Received: size=0"):
        sequence.make_sampling_table(0)
