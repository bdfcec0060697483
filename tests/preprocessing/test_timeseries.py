"""timeseries_dataset_from_array: windows and targets worked by hand, shards, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras.utils import timeseries_dataset_from_array
from tests.preprocessing.helpers import check_sharded_reads

DATA = np.arange(10)


def batches(ds):
    return [ds[i] for i in range(len(ds))]


def test_windows_and_targets():
    ds = timeseries_dataset_from_array(DATA, DATA * 10, sequence_length=3, batch_size=4)
    # 10 - (3 - 1) = 8 windows starting at 0..7.
    assert len(ds) == 2
    (x0, y0), (x1, y1) = batches(ds)
    np.testing.assert_array_equal(x0, [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    np.testing.assert_array_equal(y0, [0, 10, 20, 30])
    np.testing.assert_array_equal(x1[-1], [7, 8, 9])
    np.testing.assert_array_equal(y1, [40, 50, 60, 70])


def test_sampling_rate_stride_and_index_range():
    ds = timeseries_dataset_from_array(
        DATA, None, sequence_length=3, sampling_rate=2, batch_size=10
    )
    np.testing.assert_array_equal(
        ds[0], [[0, 2, 4], [1, 3, 5], [2, 4, 6], [3, 5, 7], [4, 6, 8], [5, 7, 9]]
    )
    strided = timeseries_dataset_from_array(DATA, None, 3, sequence_stride=3, batch_size=10)
    np.testing.assert_array_equal(strided[0], [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    ranged = timeseries_dataset_from_array(
        DATA, DATA * 10, 2, start_index=2, end_index=6, batch_size=10
    )
    x, y = ranged[0]
    np.testing.assert_array_equal(x, [[2, 3], [3, 4], [4, 5]])
    np.testing.assert_array_equal(y, [20, 30, 40])


def test_forecasting_pattern_from_the_keras_docs():
    # Predict the value 3 steps after each window of 3: targets are data[3:].
    ds = timeseries_dataset_from_array(DATA[:-3], DATA[3:], sequence_length=3, batch_size=8)
    x, y = ds[0]
    np.testing.assert_array_equal(y, x[:, -1] + 1)


def test_multivariate_data_and_shuffle_with_seed():
    data = np.arange(20).reshape(10, 2)
    ds = timeseries_dataset_from_array(data, None, 4, batch_size=3, shuffle=True, seed=3)
    again = timeseries_dataset_from_array(data, None, 4, batch_size=3, shuffle=True, seed=3)
    got = np.concatenate(batches(ds))
    np.testing.assert_array_equal(got, np.concatenate(batches(again)))
    assert got.shape == (7, 4, 2)
    starts = sorted(int(w[0, 0]) // 2 for w in got)
    assert starts == list(range(7))  # every window once, in a permuted order
    assert [int(w[0, 0]) // 2 for w in got] != list(range(7))


def test_shards_match_whole_batches():
    check_sharded_reads(timeseries_dataset_from_array(DATA, DATA, 3, batch_size=3))
    check_sharded_reads(
        timeseries_dataset_from_array(DATA, None, 2, batch_size=4, shuffle=True, seed=0)
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sequence_length": 0}, "sequence_length=0"),
        ({"sampling_rate": 0}, "sampling_rate=0"),
        ({"sequence_stride": -1}, "sequence_stride=-1"),
        ({"start_index": -1}, "start_index=-1"),
        ({"start_index": 10}, "start_index=10"),
        ({"start_index": 5, "end_index": 4}, "end_index=4"),
        ({"end_index": 11}, "end_index=11"),
        ({"sequence_length": 11}, "too short"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"sequence_length": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        timeseries_dataset_from_array(DATA, None, **args)


def test_fit_reads_the_dataset_like_keras_reads_tf_data():
    # Keras returns a tf.data.Dataset, whose batches `fit` takes in order whatever its
    # `shuffle` argument: an unshuffled dataset trains exactly as the arrays with
    # shuffle=False; a shuffled one is reshuffled every epoch.
    import distkeras as keras

    data = np.random.default_rng(0).normal(size=(70, 2)).astype("float32")
    targets = data[:, :1] * 2.0
    ds = timeseries_dataset_from_array(data, targets, sequence_length=3, batch_size=8)
    assert ds.shuffle_each_epoch is False and ds.take(2).shuffle_each_epoch is False
    windows = np.stack([data[i : i + 3] for i in range(68)])

    def trained(*args, **kwargs):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((3, 2)), keras.layers.Flatten(), keras.layers.Dense(1)]
        )
        model.compile("sgd", "mse")
        model.fit(*args, epochs=2, verbose=0, **kwargs)
        return model.get_weights()

    for got, want in zip(
        trained(ds), trained(windows, targets[:68], batch_size=8, shuffle=False), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    shuffled = timeseries_dataset_from_array(data, targets, 3, batch_size=8, shuffle=True, seed=1)
    assert shuffled.shuffle_each_epoch is True
