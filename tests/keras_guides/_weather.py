"""The data preparation of the keras.io example "Timeseries forecasting for weather
prediction", with pandas as the example uses it (test and reference share it).

Sizes scaled down: `past` 120 and `future` 12 rows in place of 720 and 72 (the
rows are 10 minutes apart, as in the Jena data), `step` 6 as in the example.
"""

from __future__ import annotations

import numpy as np

SPLIT_FRACTION, STEP, PAST, FUTURE = 0.715, 6, 120, 12
LEARNING_RATE, BATCH_SIZE, EPOCHS = 0.001, 256, 4


def normalize(data, train_split):
    data_mean = data[:train_split].mean(axis=0)
    data_std = data[:train_split].std(axis=0)
    return (data - data_mean) / data_std


def prepare(pd, df):
    """The example's features, train/validation inputs and targets from the CSV frame."""
    train_split = int(SPLIT_FRACTION * int(df.shape[0]))
    feature_keys = [c for c in df.columns if c != "Date Time"]
    selected_features = [feature_keys[i] for i in [0, 1, 5, 7, 8, 10, 11]]
    features = df[selected_features]
    features.index = df["Date Time"]
    features = normalize(features.values, train_split)
    features = pd.DataFrame(features)
    train_data = features.loc[0 : train_split - 1]
    val_data = features.loc[train_split:]

    start = PAST + FUTURE
    end = start + train_split
    x_train = train_data[[i for i in range(7)]].values
    y_train = features.iloc[start:end][[1]]

    x_end = len(val_data) - PAST - FUTURE
    label_start = train_split + PAST + FUTURE
    x_val = val_data.iloc[:x_end][[i for i in range(7)]].values
    y_val = features.iloc[label_start:][[1]]
    return x_train, y_train, x_val, y_val


def windows(data, targets, sequence_length, sampling_rate):
    """`timeseries_dataset_from_array`'s samples as arrays (Keras's documented semantics):
    window i is `data[i : i + sequence_length * sampling_rate : sampling_rate]`, its
    target `targets[i]`."""
    data, targets = np.asarray(data), np.asarray(targets)
    n = min(len(data) - (sequence_length - 1) * sampling_rate, len(targets))
    rows = np.arange(n)[:, None] + np.arange(sequence_length)[None, :] * sampling_rate
    return data[rows], targets[:n]
