"""Random sampling, as `keras.random`.

Seeds work as in Keras 3: an integer seed gives the same numbers at every
call; a `SeedGenerator` is a stream that advances at every call (and whose
state a layer saves with its checkpoints when it holds the generator as an
attribute); `seed=None` draws from the process-wide stream that
`distkeras.utils.set_random_seed` reseeds. Samples come from NumPy's PCG64
whatever the array backend, so they do not depend on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module, floatx, standardize_dtype, to_numpy
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.backend.random import SeedGenerator, global_seed_generator, in_sample_stream

__all__ = [
    "SeedGenerator",
    "beta",
    "binomial",
    "categorical",
    "dropout",
    "gamma",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]


def _rng(seed: Any) -> np.random.Generator:
    if seed is None:
        return global_seed_generator().numpy_rng
    if isinstance(seed, SeedGenerator):
        return seed.numpy_rng
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.Generator(np.random.PCG64(int(seed)))
    raise ValueError(
        "`seed` must be an integer, a `distkeras.random.SeedGenerator` or None. "
        f"Received: seed={seed!r}"
    )


def _stream_generator(seed: Any) -> SeedGenerator | None:
    """The generator to draw per global sample with, inside a deterministic data-parallel step.

    There (`backend.random.sample_stream`), a `SeedGenerator` seed (or None, the
    global one) draws each sample's numbers from the sample's global index, so a
    custom layer's `dropout(x, rate, seed=self.seed_generator)` gives the same
    noise on any number of workers, as the built-in random layers do. Integer
    seeds keep Keras's meaning (the same numbers at every call) and are not keyed.
    """
    if not in_sample_stream():
        return None
    if seed is None:
        return global_seed_generator()
    return seed if isinstance(seed, SeedGenerator) else None


def _shape(shape: Any) -> tuple:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        out = tuple(int(d) for d in dims)
    except (TypeError, ValueError):
        out = None
    if out is None or any(d < 0 for d in out):
        raise ValueError(
            f"`shape` must be a tuple of non-negative integers. Received: shape={shape!r}"
        )
    return out


def _tensor(values: Any, dtype: Any) -> Tensor:
    arr = np.asarray(values, dtype=standardize_dtype(dtype))
    xp = current_module()
    return Tensor(arr if xp is np else xp.asarray(arr))


def _float_dtype(dtype: Any) -> str:
    dtype = standardize_dtype(dtype or floatx())
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"`dtype` must be a floating point type. Received: dtype={dtype!r}")
    return dtype


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Samples from a normal distribution.

    Args:
        shape: Shape of the result.
        mean: Mean of the distribution.
        stddev: Standard deviation of the distribution.
        dtype: Float dtype (`floatx()` when omitted).
        seed: Integer, `SeedGenerator` or None (see the module docstring).
    """
    dtype = _float_dtype(dtype)
    gen = _stream_generator(seed)
    if gen is not None:
        return _tensor(to_numpy(gen.normal(_shape(shape), mean, stddev, "float64")), dtype)
    return _tensor(_rng(seed).normal(mean, stddev, size=_shape(shape)), dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> Tensor:
    """Samples uniformly from `[minval, maxval)`.

    Args:
        shape: Shape of the result.
        minval: Lower bound (included).
        maxval: Upper bound (excluded).
        dtype: Float dtype (`floatx()` when omitted).
        seed: Integer, `SeedGenerator` or None.
    """
    dtype = _float_dtype(dtype)
    gen = _stream_generator(seed)
    if gen is not None:
        return _tensor(gen.host_uniform(_shape(shape), minval, maxval), dtype)
    return _tensor(_rng(seed).uniform(minval, maxval, size=_shape(shape)), dtype)


def randint(shape, minval, maxval, dtype="int32", seed=None) -> Tensor:
    """Samples integers uniformly from `[minval, maxval)`.

    Args:
        shape: Shape of the result.
        minval: Lower bound (included).
        maxval: Upper bound (excluded).
        dtype: Integer dtype.
        seed: Integer, `SeedGenerator` or None.
    """
    if np.dtype(standardize_dtype(dtype)).kind not in "iu":
        raise ValueError(f"`dtype` must be an integer type. Received: dtype={dtype!r}")
    if maxval <= minval:
        raise ValueError(
            f"`maxval` must be greater than `minval`. Received: minval={minval}, maxval={maxval}"
        )
    return _tensor(_rng(seed).integers(minval, maxval, size=_shape(shape)), dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> Tensor:
    """Normal samples, those more than two standard deviations from the mean redrawn.

    Args:
        shape: Shape of the result.
        mean: Mean of the untruncated distribution.
        stddev: Standard deviation of the untruncated distribution.
        dtype: Float dtype (`floatx()` when omitted).
        seed: Integer, `SeedGenerator` or None.
    """
    dtype = _float_dtype(dtype)
    rng = _rng(seed)
    out = rng.standard_normal(size=_shape(shape))
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return _tensor(out * stddev + mean, dtype)


def dropout(inputs, rate, noise_shape=None, seed=None) -> Tensor:
    """Zeroes entries with probability `rate` and scales the rest by `1 / (1 - rate)`.

    Gradients flow to the kept entries.

    Args:
        inputs: Input tensor.
        rate: Drop probability in `[0, 1)`.
        noise_shape: Shape of the keep mask, broadcast against `inputs`
            (None entries take the input's size).
        seed: Integer, `SeedGenerator` or None.
    """
    if not 0 <= rate < 1:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
    x = convert_to_tensor(inputs)
    if noise_shape is None:
        noise_shape = x.shape
    else:
        noise_shape = tuple(x.shape[i] if d is None else d for i, d in enumerate(noise_shape))
    keep_prob = 1.0 - rate
    gen = _stream_generator(seed)
    if gen is not None:
        keep = gen.host_uniform(_shape(noise_shape)) < keep_prob
    else:
        keep = _rng(seed).uniform(size=_shape(noise_shape)) < keep_prob
    scale = _tensor(keep / keep_prob, x.dtype)
    return ops.multiply(x, scale)


def shuffle(x, axis=0, seed=None) -> Tensor:
    """Shuffles `x` along `axis` (gradients are permuted back).

    Args:
        x: Input tensor.
        axis: Axis to shuffle.
        seed: Integer, `SeedGenerator` or None.
    """
    x = convert_to_tensor(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"`axis` is out of range for a rank-{x.ndim} input. Received: axis={axis}")
    perm = _tensor(_rng(seed).permutation(x.shape[axis]), "int64")
    return ops.take(x, perm, axis=axis)


def categorical(logits, num_samples, dtype="int32", seed=None) -> Tensor:
    """Draws class indices from the softmax of each row of `logits`.

    Args:
        logits: `(batch_size, num_classes)` unnormalized log-probabilities.
        num_samples: Samples per row.
        dtype: Integer dtype of the result.
        seed: Integer, `SeedGenerator` or None.

    Returns:
        A `(batch_size, num_samples)` tensor of indices.
    """
    lg = np.asarray(convert_to_tensor(logits).numpy(), dtype="float64")
    if lg.ndim != 2:
        raise ValueError(
            f"`logits` must have shape (batch_size, num_classes). Received: shape={lg.shape}"
        )
    if int(num_samples) < 0:
        raise ValueError(f"`num_samples` must be non-negative. Received: num_samples={num_samples}")
    p = np.exp(lg - lg.max(axis=1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = _rng(seed).uniform(size=(lg.shape[0], int(num_samples)))
    idx = np.minimum((u[:, :, None] >= cdf[:, None, :]).sum(axis=-1), lg.shape[1] - 1)
    return _tensor(idx, dtype)


def gamma(shape, alpha, dtype=None, seed=None) -> Tensor:
    """Samples from a gamma distribution with concentration `alpha` and scale 1.

    Args:
        shape: Shape of the result.
        alpha: Concentration (shape parameter), broadcast against `shape`.
        dtype: Float dtype (`floatx()` when omitted).
        seed: Integer, `SeedGenerator` or None.
    """
    dtype = _float_dtype(dtype)
    return _tensor(_rng(seed).gamma(np.asarray(alpha), size=_shape(shape)), dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None) -> Tensor:
    """Samples the number of successes in `counts` trials of probability `probabilities`.

    Args:
        shape: Shape of the result.
        counts: Number of trials, broadcast against `shape`.
        probabilities: Success probability, broadcast against `shape`.
        dtype: Float dtype of the counts (`floatx()` when omitted), as in Keras.
        seed: Integer, `SeedGenerator` or None.
    """
    dtype = _float_dtype(dtype)
    n = np.asarray(counts).astype("int64")
    return _tensor(_rng(seed).binomial(n, np.asarray(probabilities), size=_shape(shape)), dtype)


def beta(shape, alpha, beta, dtype=None, seed=None) -> Tensor:  # noqa: A002 - Keras's name
    """Samples from a beta distribution.

    Args:
        shape: Shape of the result.
        alpha: First concentration, broadcast against `shape`.
        beta: Second concentration, broadcast against `shape`.
        dtype: Float dtype (`floatx()` when omitted).
        seed: Integer, `SeedGenerator` or None.
    """
    dtype = _float_dtype(dtype)
    a, b = np.asarray(alpha), np.asarray(beta)
    return _tensor(_rng(seed).beta(a, b, size=_shape(shape)), dtype)
