"""The backend switch, floatx and the saveable random streams."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import backend
from distkeras.backend.random import SeedGenerator, global_seed_generator, set_global_seed


def test_numpy_backend_and_proxy():
    assert backend.backend() == "numpy"
    assert backend.xp.zeros(2).__class__ is np.ndarray
    assert backend.get_array_module(np.ones(1)) is np


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="Received: backend='torch'"):
        backend.set_backend("torch")


def test_floatx_roundtrip_and_validation():
    assert backend.floatx() == "float32"
    backend.set_floatx("float64")
    try:
        assert backend.floatx() == "float64"
    finally:
        backend.set_floatx("float32")
    with pytest.raises(ValueError, match="Received: value='float8'"):
        backend.set_floatx("float8")


def test_to_numpy_accepts_tensors_and_scalars():
    t = backend.convert_to_tensor([1.0, 2.0])
    assert t.dtype == "float32"
    np.testing.assert_array_equal(backend.to_numpy(t), [1.0, 2.0])
    assert backend.to_numpy(3.0).shape == ()


def test_seed_generator_state_restores_the_stream():
    g = SeedGenerator(7)
    g.uniform((3,))
    state = g.get_state()
    a = g.normal((4,))
    g.set_state(state)
    np.testing.assert_array_equal(g.normal((4,)), a)


def test_same_seed_same_numbers_and_global_seed():
    np.testing.assert_array_equal(SeedGenerator(3).random((5,)), SeedGenerator(3).random((5,)))
    set_global_seed(11)
    a = SeedGenerator().random((3,))
    set_global_seed(11)
    b = SeedGenerator().random((3,))
    np.testing.assert_array_equal(a, b)
    assert global_seed_generator().seed == 11


def test_seed_must_be_an_integer():
    with pytest.raises(ValueError, match="Received: seed='x'"):
        SeedGenerator("x")
