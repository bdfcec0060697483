"""Seeded random streams whose state can be saved and restored.

Every stream is a NumPy PCG64 generator, so the numbers do not depend on the
array backend; samples are moved to the current array module when it is CuPy.
"""

from __future__ import annotations

import random as _pyrandom
from typing import Any

import numpy as np


class SeedGenerator:
    """A random stream with a saveable state, like `keras.random.SeedGenerator`.

    Args:
        seed: Integer seed, or None to draw one from the global stream.
        name: Optional name used when the state is saved.
    """

    def __init__(self, seed: int | None = None, name: str | None = None):
        if seed is None:
            seed = global_seed_generator().next_seed()
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")
        self.seed = int(seed)
        self.name = name
        self._rng = np.random.Generator(np.random.PCG64(self.seed))

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
        return _to_xp(self._rng.uniform(minval, maxval, size=shape), dtype)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=None) -> Any:
        """Normal samples on the current array module."""
        return _to_xp(self._rng.normal(mean, stddev, size=shape), dtype)

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
