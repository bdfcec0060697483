"""`Discretization`: buckets continuous values by bin boundaries, adaptable from quantiles.

`adapt` follows Keras's approximate-quantile sketch: each batch is sorted and
thinned to about `1/epsilon` weighted points, sketches are merged in value
order and re-compressed by interpolating the cumulative weights at multiples
of `epsilon` (float32, as Keras); the boundaries are the same compression at
multiples of `1/num_bins`, without the last point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module, to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.layers.layer import Layer
from distkeras.layers.preprocessing.index_lookup import encode_ids
from distkeras.layers.preprocessing.normalization import iter_batches

_MODES = ("int", "one_hot", "multi_hot", "count")


def _sketch(values: np.ndarray, epsilon: float) -> np.ndarray:
    """Sorted values thinned to about 1/epsilon points, each weighted by its stride."""
    values = np.sort(values.reshape(-1))
    stride = max(values.size * epsilon, 1)
    points = values[int(stride - 1) :: int(stride)]
    return np.stack([points, np.full(points.shape, stride, dtype=points.dtype)])


def _compress(sketch: np.ndarray, epsilon: float) -> np.ndarray:
    """Re-samples a weighted sketch at the cumulative-weight fractions eps, 2 eps, ..., 1."""
    if sketch.shape[1] * epsilon < 1:
        return sketch
    fractions = np.arange(0.0, 1.0, epsilon) + epsilon
    cum = np.cumsum(sketch[1])
    at = np.interp(fractions, cum / cum[-1], sketch[0])
    cum_at = np.interp(fractions, cum / cum[-1], cum)
    weights = np.diff(cum_at, prepend=0.0)
    return np.stack([at, weights]).astype(np.float32)


def _merge(a: np.ndarray, b: np.ndarray, epsilon: float) -> np.ndarray:
    both = np.concatenate([a, b], axis=1)
    return _compress(both[:, np.argsort(both[0])], epsilon)


class Discretization(Layer):
    """Maps values to the index of their bin: `bins[i-1] <= x < bins[i]` gives `i`.

    Args:
        bin_boundaries: Sorted boundaries (n boundaries give n+1 bins).
        num_bins: Number of bins to learn with `adapt` (instead of boundaries).
        epsilon: Error tolerance of the approximate quantiles (default 0.01).
        output_mode: "int" (default), "one_hot", "multi_hot" or "count".
        sparse: Must be False (dense outputs only).
    """

    def __init__(
        self,
        bin_boundaries: Any = None,
        num_bins: int | None = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        dtype: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(dtype=dtype, name=name, **kwargs)
        if output_mode not in _MODES:
            raise ValueError(
                "Unknown value for `output_mode` argument of Discretization. Allowed values "
                f"are: {_MODES}. Received: output_mode={output_mode}"
            )
        if sparse:
            raise ValueError("Sparse outputs are not supported. Received: sparse=True")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(
                "Both `num_bins` and `bin_boundaries` should not be set. "
                f"Received: `num_bins={num_bins}` and `bin_boundaries={bin_boundaries}`"
            )
        if num_bins is None and bin_boundaries is None:
            raise ValueError(
                "You need to set either `num_bins` or `bin_boundaries`. "
                "Received: num_bins=None, bin_boundaries=None"
            )
        if num_bins is not None and (
            isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1
        ):
            raise ValueError(
                f"`num_bins` must be a positive integer. Received: num_bins={num_bins!r}"
            )
        if not 0 < epsilon < 1:
            raise ValueError(f"`epsilon` must be in (0, 1). Received: epsilon={epsilon!r}")
        self.bin_boundaries = None if bin_boundaries is None else list(bin_boundaries)
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.output_mode = output_mode
        self.sparse = False
        self.built = True

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learns `num_bins - 1` boundaries from approximate quantiles of the data.

        Args:
            data: Array/list of numbers, or a PyDataset/iterable of batches.
            batch_size: Unused (accepted for Keras compatibility).
            steps: Number of batches to read from an iterable.
        """
        if self.num_bins is None:
            raise ValueError(
                "Cannot adapt a Discretization layer that has been initialized with "
                "`bin_boundaries`, use `num_bins` instead. Received: num_bins=None"
            )
        summary = np.zeros((2, 0), dtype=np.float32)
        for batch in iter_batches(data, steps):
            batch = np.asarray(batch).astype(np.float32)
            summary = _merge(_sketch(batch, self.epsilon), summary, self.epsilon)
        if summary.shape[1] == 0:
            raise ValueError("`adapt` needs at least one value. Received: empty data")
        self.bin_boundaries = _compress(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    @property
    def _depth(self) -> int:
        return self.num_bins if self.bin_boundaries is None else len(self.bin_boundaries) + 1

    def call(self, inputs: Any) -> Tensor:
        if self.bin_boundaries is None:
            raise ValueError(
                "You need to either pass the `bin_boundaries` argument at construction time "
                "or call `adapt(dataset)` before you can start using the `Discretization` "
                "layer. Received: bin_boundaries=None"
            )
        x = to_numpy(inputs.data if isinstance(inputs, Tensor) else inputs)
        ids = np.digitize(np.asarray(x, dtype=np.float64), np.asarray(self.bin_boundaries))
        xp = current_module()
        if self.output_mode == "int":
            return Tensor(xp.asarray(ids.astype(np.int32)))
        out = encode_ids(ids, self.output_mode, self._depth).astype(self.compute_dtype)
        return Tensor(xp.asarray(out))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        if self.output_mode == "one_hot":
            if len(shape) > 1 and shape[-1] == 1:
                shape = shape[:-1]
            return (*shape, self._depth)
        return (shape[0], *shape[2:], self._depth) if len(shape) >= 2 else (self._depth,)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "bin_boundaries": self.bin_boundaries,
                "num_bins": self.num_bins,
                "epsilon": self.epsilon,
                "output_mode": self.output_mode,
                "sparse": self.sparse,
            }
        )
        return cfg
