"""Seeded random streams whose state can be saved and restored.

Every stream is a NumPy PCG64 generator, so the numbers do not depend on the
array backend; samples are moved to the current array module when it is CuPy.

Inside `sample_stream(seed, step, offset, rows)` (the deterministic training
step opens one around each forward pass) `random`, `uniform`, `normal` and
`host_uniform` switch to a counter-based stream instead: a draw's numbers are
a hash of (seed, step, the draw's ordinal in the pass, the generator's own
`seed` argument when one was given, the element's global counter), where the
counter of an array whose first axis is the pass's batch (`shape[0] == rows`)
starts at the batch's global sample offset. Each sample's noise then depends
only on the seed, the step and its index in the global batch, not on which
rank draws it nor on how many rows that rank holds. Draws whose first axis is
not the batch (a mask shared by the batch) start at counter 0. The hash is
SplitMix64's finaliser over `key + counter * golden_gamma`, vectorised in
NumPy (about 10 passes over the elements, so a few times the cost of PCG64;
outside a scope nothing changes).
"""

from __future__ import annotations

import contextlib
import math
import random as _pyrandom
from collections.abc import Iterator
from typing import Any

import numpy as np

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix(z: int) -> int:
    """SplitMix64's finaliser on a Python int (a 64-bit bijection)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _key(*parts: int) -> int:
    """One 64-bit key from integers, order-sensitive."""
    k = 0
    for p in parts:
        k = _mix(k + _GAMMA + (int(p) & _MASK64))
    return k


def counter_bits(key: int, start: int, count: int) -> np.ndarray:
    """`count` pseudo-random uint64 for counters `start, start + 1, ...` under `key`."""
    z = np.arange(start, start + count, dtype=np.uint64)
    z *= np.uint64(_GAMMA)
    z += np.uint64(key)
    t = np.empty_like(z)
    for shift, mult in ((30, _MIX1), (27, _MIX2)):
        np.right_shift(z, np.uint64(shift), out=t)
        z ^= t
        z *= np.uint64(mult)
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z


def _unit_floats(bits: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Uniform floats in [0, 1) from the high bits (24 for float32 and narrower, else 53)."""
    if dtype.itemsize <= 4:
        return (bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


class SampleStream:
    """Counter-based random numbers of one forward pass (see the module docstring).

    Args:
        seed: Seed shared by every rank (e.g. fit's broadcast seed).
        step: Training step.
        offset: Global index, in the global batch, of this pass's first sample.
        rows: Number of samples in this pass.
    """

    def __init__(self, seed: int, step: int, offset: int, rows: int):
        self.base = _key(seed, step)
        self.offset, self.rows = int(offset), int(rows)
        self.draws = 0

    def bits(self, gen: SeedGenerator, shape: Any, per_element: int = 1) -> np.ndarray:
        """`per_element` uint64 per element of `shape`, keyed by this draw and sample."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        key = _key(self.base, self.draws, gen.user_seed)
        self.draws += 1
        size = math.prod(shape)
        start = 0
        if shape and shape[0] == self.rows and self.rows:
            start = self.offset * (size // self.rows) * per_element
        return counter_bits(key, start, size * per_element).reshape(*shape, per_element)

    def uniform(self, gen: SeedGenerator, shape: Any, dtype: Any) -> np.ndarray:
        """Uniform samples in [0, 1) of `shape`."""
        return _unit_floats(self.bits(gen, shape)[..., 0], np.dtype(dtype))

    def normal(self, gen: SeedGenerator, shape: Any) -> np.ndarray:
        """Standard normal samples of `shape` (Box-Muller on two 53-bit uniforms), float64."""
        bits = self.bits(gen, shape, 2)
        u1 = 1.0 - _unit_floats(bits[..., 0], np.dtype(np.float64))  # in (0, 1]
        u2 = _unit_floats(bits[..., 1], np.dtype(np.float64))
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


_SCOPE: dict[str, SampleStream | None] = {"stream": None}


@contextlib.contextmanager
def sample_stream(seed: int, step: int, offset: int, rows: int) -> Iterator[SampleStream]:
    """Makes every `SeedGenerator` draw per global sample within the block.

    Args:
        seed: Seed shared by every rank.
        step: Training step.
        offset: Global index of the block's first sample in the global batch.
        rows: Number of samples the block's forward pass holds.
    """
    previous = _SCOPE["stream"]
    stream = SampleStream(seed, step, offset, rows)
    _SCOPE["stream"] = stream
    try:
        yield stream
    finally:
        _SCOPE["stream"] = previous


def in_sample_stream() -> bool:
    """True inside `sample_stream` (a deterministic data-parallel step's forward pass)."""
    return _SCOPE["stream"] is not None


class SeedGenerator:
    """A random stream with a saveable state, like `keras.random.SeedGenerator`.

    Args:
        seed: Integer seed, or None to draw one from the global stream.
        name: Optional name used when the state is saved.
    """

    user_seed = 0  # the seed given by the user (0: none), part of per-sample stream keys

    def __init__(self, seed: int | None = None, name: str | None = None):
        user_seed = seed
        if seed is None:
            seed = global_seed_generator().next_seed()
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")
        self.seed = int(seed)
        self.name = name
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self.user_seed = self.seed if user_seed is not None else 0

    # -- state ---------------------------------------------------------
    def get_state(self) -> dict:
        """Returns the stream's state as plain Python data (JSON/msgpack safe)."""
        st = self._rng.bit_generator.state
        return {
            "seed": self.seed,
            "state": int(st["state"]["state"]),
            "inc": int(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"]),
        }

    def set_state(self, state: dict) -> None:
        """Restores a state returned by `get_state`."""
        self.seed = int(state["seed"])
        self._rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int(state["state"]), "inc": int(state["inc"])},
            "has_uint32": int(state["has_uint32"]),
            "uinteger": int(state["uinteger"]),
        }

    def fold_in_rank(self, rank: int) -> None:
        """Moves the stream to rank `rank`'s own, non-overlapping part of its sequence.

        Rank 0 keeps its stream; rank r > 0 jumps r times 2**127-ish draws
        ahead (PCG64's `jumped`). Done once when data-parallel training
        starts in default mode, so ranks seeded alike draw different noise
        while each draw costs what it did. The folded state is what
        `get_state` saves, so a resumed run continues each rank's stream.

        Args:
            rank: This process's rank.
        """
        if rank:
            self._rng = np.random.Generator(self._rng.bit_generator.jumped(int(rank)))

    # -- sampling ------------------------------------------------------
    @property
    def numpy_rng(self) -> np.random.Generator:
        """The underlying NumPy generator."""
        return self._rng

    def next_seed(self) -> int:
        """Draws a fresh 31-bit seed from this stream."""
        return int(self._rng.integers(0, 2**31 - 1))

    def uniform(self, shape, minval=0.0, maxval=1.0, dtype=None) -> Any:
        """Uniform samples in [minval, maxval) on the current array module."""
        return _to_xp(self.host_uniform(shape, minval, maxval), dtype)

    def host_uniform(self, shape, minval=0.0, maxval=1.0) -> np.ndarray:
        """Uniform float64 samples in [minval, maxval) as a host NumPy array."""
        stream = _SCOPE["stream"]
        if stream is None:
            return self._rng.uniform(minval, maxval, size=shape)
        return minval + (maxval - minval) * stream.uniform(self, shape, np.float64)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=None) -> Any:
        """Normal samples on the current array module."""
        stream = _SCOPE["stream"]
        if stream is None:
            return _to_xp(self._rng.normal(mean, stddev, size=shape), dtype)
        return _to_xp(stream.normal(self, shape) * stddev + mean, dtype)

    def truncated_normal(self, shape, mean=0.0, stddev=1.0, dtype=None) -> Any:
        """Normal samples redrawn until within two standard deviations."""
        out = self._rng.normal(0.0, 1.0, size=shape)
        bad = np.abs(out) > 2.0
        while bad.any():
            out[bad] = self._rng.normal(0.0, 1.0, size=int(bad.sum()))
            bad = np.abs(out) > 2.0
        return _to_xp(out * stddev + mean, dtype)

    def random(self, shape, dtype=None) -> Any:
        """Uniform samples in [0, 1) drawn in the target float type (fast path)."""
        from distkeras.backend import floatx  # noqa: PLC0415

        dt = np.dtype(dtype or floatx())
        stream = _SCOPE["stream"]
        if stream is not None:
            return _to_xp(stream.uniform(self, shape, dt), dt)
        if dt not in (np.float32, np.float64):
            return _to_xp(self._rng.random(size=shape), dt)
        return _to_xp(self._rng.random(size=shape, dtype=dt), dt)

    def integers(self, low, high=None, shape=None, dtype="int64") -> Any:
        """Integer samples in [low, high)."""
        return _to_xp(self._rng.integers(low, high, size=shape), dtype)

    def permutation(self, n: int) -> np.ndarray:
        """A permutation of range(n) as a host NumPy array."""
        return self._rng.permutation(n)


def _to_xp(arr: np.ndarray, dtype) -> Any:
    from distkeras.backend import current_module, floatx  # noqa: PLC0415

    arr = np.asarray(arr, dtype=dtype or floatx())
    mod = current_module()
    return arr if mod is np else mod.asarray(arr)


_GLOBAL: dict[str, SeedGenerator | None] = {"gen": None}


def global_seed_generator() -> SeedGenerator:
    """Returns the process-wide stream used when no seed is given."""
    gen = _GLOBAL["gen"]
    if gen is None:
        gen = SeedGenerator.__new__(SeedGenerator)
        seed = _pyrandom.randint(0, 2**31 - 1)
        gen.seed, gen.name = seed, "global"
        gen._rng = np.random.Generator(np.random.PCG64(seed))
        _GLOBAL["gen"] = gen
    return gen


def set_global_seed(seed: int) -> None:
    """Reseeds the process-wide stream (see `distkeras.utils.set_random_seed`)."""
    gen = SeedGenerator.__new__(SeedGenerator)
    gen.seed, gen.name = int(seed), "global"
    gen._rng = np.random.Generator(np.random.PCG64(int(seed)))
    _GLOBAL["gen"] = gen
