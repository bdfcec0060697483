"""Sequence utilities: `pad_sequences`, `TimeseriesGenerator`, `skipgrams`, `make_sampling_table`.

As Keras 2.15's `keras.preprocessing.sequence` (and Keras 3's
`keras.utils.pad_sequences`). The random parts take a seed: `skipgrams` uses
its own `random.Random(seed)` and `TimeseriesGenerator(shuffle=True)` draws
each batch from `(seed, epoch, batch index)`, so every rank of a
data-parallel run sees the same global batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.preprocessing import dataset_utils as du
from distkeras.preprocessing.timeseries import timeseries_dataset_from_array

__all__ = [
    "TimeseriesGenerator",
    "make_sampling_table",
    "pad_sequences",
    "skipgrams",
    "timeseries_dataset_from_array",
]


def pad_sequences(
    sequences: Sequence[Sequence[Any]],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pads (or truncates) sequences to one length: a (num_samples, maxlen, ...) array.

    Args:
        sequences: List of sequences (lists or arrays; items may be vectors).
        maxlen: Output length; the longest sequence when None.
        dtype: Output dtype (`object` or a str dtype for strings).
        padding: 'pre' or 'post': where the padding goes.
        truncating: 'pre' or 'post': which end of long sequences is cut.
        value: Padding value.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"`sequences` must be iterable. Received: sequences={sequences!r}")
    if maxlen is not None and (
        isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen <= 0
    ):
        raise ValueError(
            f"`maxlen` must be a positive integer or None. Received: maxlen={maxlen!r}"
        )
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood. Received: padding={padding!r}')
    if truncating not in ("pre", "post"):
        raise ValueError(
            f'Truncating type "{truncating}" not understood. Received: truncating={truncating!r}'
        )
    num_samples = len(sequences)
    lengths = []
    sample_shape: tuple = ()
    found = False
    for x in sequences:
        try:
            lengths.append(len(x))
        except TypeError as e:
            raise ValueError(
                "`sequences` must be a list of iterables. "
                f"Found non-iterable: {x!r}. Received: sequences containing {x!r}"
            ) from e
        if not found and len(x):
            sample_shape = np.asarray(x).shape[1:]
            found = True
    if maxlen is None:
        maxlen = int(np.max(lengths)) if lengths else 0
    is_str = np.issubdtype(np.dtype(dtype), np.str_) if dtype is not object else False
    if isinstance(value, str) and dtype is not object and not is_str:
        raise ValueError(
            f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
            f"You should set `dtype=object` for variable length strings. Received: value={value!r}"
        )
    x = np.full((num_samples, maxlen, *sample_shape), value, dtype=dtype)
    for idx, s in enumerate(sequences):
        if not len(s):
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(
                f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} is different "
                f"from expected shape {sample_shape}. Received: sequences[{idx}] of shape "
                f"{trunc.shape}"
            )
        if padding == "post":
            x[idx, : len(trunc)] = trunc
        else:
            x[idx, -len(trunc) :] = trunc
    return x


def make_sampling_table(size: int, sampling_factor: float = 1e-5) -> np.ndarray:
    """Probabilities of keeping word rank i in `skipgrams` (word2vec's subsampling).

    Assumes Zipf-distributed word frequencies: `p[i] = min(1, f / sqrt(f))`
    with `f = sampling_factor * (r (log r + gamma) + 1/2 - 1/(12 r))` and `r = max(i, 1)`.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"`size` must be a positive integer. Received: size={size!r}")
    gamma = 0.577
    rank = np.arange(size, dtype=np.float64)
    rank[0] = 1
    inv_fq = rank * (np.log(rank) + gamma) + 0.5 - 1.0 / (12.0 * rank)
    f = sampling_factor * inv_fq
    return np.minimum(1.0, f / np.sqrt(f))


def skipgrams(
    sequence: Sequence[int],
    vocabulary_size: int,
    window_size: int = 4,
    negative_samples: float = 1.0,
    shuffle: bool = True,
    categorical: bool = False,
    sampling_table: np.ndarray | None = None,
    seed: int | None = None,
) -> tuple[list[list[int]], list[Any]]:
    """Word-pair couples and labels for word2vec training.

    Positive couples `[w_i, w_j]` for every `j != i` within `window_size` of
    `i` (index 0 is skipped as padding), label 1; then
    `int(len(positives) * negative_samples)` couples `[w, random word in
    [1, vocabulary_size)]`, label 0.

    Args:
        sequence: Word indices.
        vocabulary_size: Size of the vocabulary (negatives are drawn below it).
        window_size: Half-width of the context window.
        negative_samples: Ratio of negative to positive couples.
        shuffle: Shuffle couples and labels together.
        categorical: Labels as [0, 1] / [1, 0] instead of 1 / 0.
        sampling_table: Keep word i with probability `sampling_table[i]`.
        seed: Seed of every random draw.
    """
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
        raise ValueError(
            f"`window_size` must be a positive integer. Received: window_size={window_size!r}"
        )
    if vocabulary_size < 2:
        raise ValueError(
            f"`vocabulary_size` must be >= 2. Received: vocabulary_size={vocabulary_size!r}"
        )
    rng = random.Random(seed)
    couples: list[list[int]] = []
    labels: list[Any] = []
    for i, wi in enumerate(sequence):
        if not wi:
            continue
        if sampling_table is not None:
            if sampling_table[wi] < rng.random():
                continue
        window_start = max(0, i - window_size)
        window_end = min(len(sequence), i + window_size + 1)
        for j in range(window_start, window_end):
            if j != i:
                wj = sequence[j]
                if not wj:
                    continue
                couples.append([wi, wj])
                labels.append([0, 1] if categorical else 1)
    if negative_samples > 0 and couples:
        num_negative = int(len(labels) * negative_samples)
        words = [c[0] for c in couples]
        rng.shuffle(words)
        couples += [
            [words[i % len(words)], rng.randint(1, vocabulary_size - 1)]
            for i in range(num_negative)
        ]
        labels += [[1, 0] if categorical else 0 for _ in range(num_negative)]
    if shuffle:
        order = list(range(len(couples)))
        rng.shuffle(order)
        couples = [couples[i] for i in order]
        labels = [labels[i] for i in order]
    return couples, labels


class TimeseriesGenerator(du.IndexedBatchDataset):
    """Batches of (window, target) pairs from a series (Keras 2.15's TimeseriesGenerator).

    Sample for target row `r`: `data[r - length : r : sampling_rate]`, target
    `targets[r]`, for rows `start_index + length, ... , end_index` every
    `stride`.

    Args:
        data: Array-like with the time axis first.
        targets: Targets, same length as `data`.
        length: Length of the history window (in timesteps).
        sampling_rate: Period between timesteps within a window.
        stride: Period between successive windows.
        start_index, end_index: First and last usable rows of `data`.
        shuffle: Draw the rows of each batch at random (with replacement, as
            Keras 2 does), from `(seed, epoch, batch index)`.
        reverse: Windows in reverse time order.
        batch_size: Windows per batch.
        seed: Seed of the shuffle.
    """

    def __init__(
        self,
        data: Any,
        targets: Any,
        length: int,
        sampling_rate: int = 1,
        stride: int = 1,
        start_index: int = 0,
        end_index: int | None = None,
        shuffle: bool = False,
        reverse: bool = False,
        batch_size: int = 128,
        seed: int | None = None,
    ):
        data, targets = np.asarray(data), np.asarray(targets)
        if len(data) != len(targets):
            raise ValueError(
                "Data and targets have to be of same length. Data length is "
                f"{len(data)} while target length is {len(targets)}"
            )
        for name, v in (("length", length), ("sampling_rate", sampling_rate), ("stride", stride)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={v!r}")
        self.data, self.targets = data, targets
        self.length, self.sampling_rate, self.stride = int(length), int(sampling_rate), int(stride)
        self.start_index = start_index + length
        self.end_index = len(data) - 1 if end_index is None else end_index
        self.shuffle, self.reverse = shuffle, reverse
        if self.start_index > self.end_index:
            raise ValueError(
                f"`start_index+length={self.start_index} > end_index={self.end_index}` is "
                "disallowed, as no part of the sequence would be left to be used as current step."
            )
        self.seed = int(np.random.randint(2**31 - 1)) if seed is None else int(seed)
        self.epoch = 0
        rows = np.arange(self.start_index, self.end_index + 1, self.stride)
        super().__init__(len(rows), batch_size, order=rows)

    def batch_indices(self, index: int) -> np.ndarray:
        rows = super().batch_indices(index)
        if not self.shuffle:
            return rows
        rng = np.random.default_rng([self.seed, self.epoch, index % len(self)])
        return rng.integers(self.start_index, self.end_index + 1, size=self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def load(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        window = len(range(0, self.length, self.sampling_rate))
        samples = du.stack(
            [self.data[r - self.length : r : self.sampling_rate] for r in indices],
            (window, *self.data.shape[1:]),
            self.data.dtype,
        )
        targets = du.stack(
            [self.targets[r] for r in indices], self.targets.shape[1:], self.targets.dtype
        )
        if self.reverse:
            return samples[:, ::-1, ...], targets
        return samples, targets

    def get_config(self) -> dict:
        """The generator's arguments (data and targets as lists)."""
        return {
            "data": self.data.tolist(),
            "targets": self.targets.tolist(),
            "length": self.length,
            "sampling_rate": self.sampling_rate,
            "stride": self.stride,
            "start_index": self.start_index - self.length,
            "end_index": self.end_index,
            "shuffle": self.shuffle,
            "reverse": self.reverse,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
