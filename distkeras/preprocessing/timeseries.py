"""`timeseries_dataset_from_array`: sliding windows over an array, built batch by batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.preprocessing import dataset_utils as du


class TimeseriesDataset(du.IndexedBatchDataset):
    """Batches of windows `data[start_index + p + k * sampling_rate]`, k < sequence_length.

    Sample i starts at position `p = start_positions[i]` (relative to
    `start_index`); its target is `targets[start_index + p]`. Windows are cut
    only when a batch is read.
    """

    def __init__(
        self,
        data: Any,
        targets: Any,
        start_positions: np.ndarray,
        sequence_length: int,
        sampling_rate: int,
        start_index: int,
        batch_size: int,
    ):
        super().__init__(len(start_positions), batch_size, order=start_positions)
        self.data = data
        self.targets = targets
        self.sequence_length = sequence_length
        self.sampling_rate = sampling_rate
        self.start_index = start_index
        self._offsets = np.arange(sequence_length) * sampling_rate

    def load(self, positions: np.ndarray) -> Any:
        rows = self.start_index + positions[:, None] + self._offsets[None, :]
        data = np.asarray(self.data)
        windows = data[rows.reshape(-1)].reshape(
            len(positions), self.sequence_length, *data.shape[1:]
        )
        if self.targets is None:
            return windows
        targets = np.asarray(self.targets)
        return windows, targets[self.start_index + positions]


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value!r}")
    return int(value)


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Creates a dataset of sliding windows over `data` (Keras 3 semantics).

    Args:
        data: Array with the time axis first.
        targets: Targets, `targets[i]` belonging to the window starting at
            row `i` (of `data[start_index:]`), or None.
        sequence_length: Timesteps per window.
        sequence_stride: Period between successive window starts.
        sampling_rate: Period between timesteps within a window.
        batch_size: Windows per batch.
        shuffle: Shuffle the windows (once, with `seed`).
        seed: Seed of the shuffle.
        start_index, end_index: Rows `[start_index, end_index)` of `data` are used.

    Returns:
        A `TimeseriesDataset` (PyDataset) of `(windows, targets)` or `windows` batches.
    """
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise ValueError(f"`data` must be an array. Received: data of type {type(data).__name__}")
    n = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(
                f"`start_index` must be 0 or greater. Received: start_index={start_index}"
            )
        if start_index >= n:
            raise ValueError(
                "`start_index` must be lower than the length of the data. "
                f"Received: start_index={start_index}, for data of length {n}"
            )
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(
                "`end_index` must be higher than `start_index`. "
                f"Received: start_index={start_index}, and end_index={end_index} "
            )
        if end_index >= n:
            raise ValueError(
                "`end_index` must be lower than the length of the data. "
                f"Received: end_index={end_index}, for data of length {n}"
            )
    if end_index is not None and end_index <= 0:
        raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    sequence_length = _positive("sequence_length", sequence_length)
    sampling_rate = _positive("sampling_rate", sampling_rate)
    sequence_stride = _positive("sequence_stride", sequence_stride)
    if batch_size is None:
        raise ValueError(
            "Unbatched datasets are not supported; pass a positive `batch_size`. "
            "Received: batch_size=None"
        )
    if sampling_rate >= n and n > 1:
        raise ValueError(
            "`sampling_rate` must be lower than the length of the data. "
            f"Received: sampling_rate={sampling_rate}, for data of length {n}"
        )
    start_index = start_index or 0
    end_index = n if end_index is None else end_index
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_seqs = min(num_seqs, len(targets))
    if num_seqs <= 0:
        raise ValueError(
            "The data is too short for a single window: "
            f"{end_index - start_index} rows, sequence_length={sequence_length}, "
            f"sampling_rate={sampling_rate}. Received: data of length {n}"
        )
    positions = np.arange(0, num_seqs, sequence_stride, dtype=np.int64)
    if shuffle:
        if seed is None:
            seed = int(np.random.randint(1_000_000))
        np.random.RandomState(seed).shuffle(positions)
    dataset = TimeseriesDataset(
        data, targets, positions, sequence_length, sampling_rate, start_index, batch_size
    )
    return du.like_tf_data(dataset, shuffle)
