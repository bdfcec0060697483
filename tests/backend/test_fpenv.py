"""Subnormal floats flushed to zero inside the optimizer's update, and only there."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from distkeras import optimizers
from distkeras.backend import Variable, fpenv
from distkeras.backend.buffers import FlatBuffer
from distkeras.optimizers import _flat

pytestmark = pytest.mark.skipif(not fpenv.enabled(), reason="flush-to-zero needs x86-64 Linux")

TINY = np.finfo(np.float32).tiny  # the smallest normal float32
ONE = np.float32(1.0)


def _subnormal_survives() -> bool:
    return (np.full(4, TINY / 4, np.float32) * ONE).min() > 0


def test_flush_denormals_is_scoped_to_the_block():
    assert _subnormal_survives()
    before = fpenv.mxcsr()
    with fpenv.flush_denormals():
        assert not _subnormal_survives()
        assert fpenv.mxcsr() & 0x8040 == 0x8040
    assert fpenv.mxcsr() == before
    assert _subnormal_survives()


def _momentum_after_zero_gradient(apply_flat: bool, size: int = 8) -> np.ndarray:
    """Adam's momentum after one step with zero gradient from just above the normal range."""
    v = Variable(np.ones(size, np.float32))
    opt = optimizers.Adam()
    opt.build([v])
    opt._momentums[0].data[...] = np.float32(1.1) * TINY  # x 0.9: below the normal range
    if apply_flat:
        buf = FlatBuffer([v])
        buf.grad[...] = 0
        opt.apply_flat(buf)
    else:
        opt.apply([np.zeros(size, np.float32)], [v])
    return opt._momentums[0].numpy().copy()


def _no_subnormals(a: np.ndarray) -> bool:
    return bool(((a == 0) | (np.abs(a) >= TINY)).all())


@pytest.mark.parametrize("apply_flat", [False, True])
def test_adam_momentum_never_goes_subnormal(apply_flat):
    # IEEE: m + (0 - m) * 0.1 = 0.99 * TINY, subnormal. Flushed (as TensorFlow runs it):
    # the decrement, itself subnormal, is flushed, and m stays a normal float.
    m = _momentum_after_zero_gradient(apply_flat)
    assert _no_subnormals(m), m
    assert _subnormal_survives()  # the caller's thread is back to IEEE subnormals


def test_pool_threads_of_a_threaded_update_flush_too():
    _flat.set_threads(2)
    try:
        size = 4 * _flat._MIN_CHUNK  # big enough to be split over two threads
        m = _momentum_after_zero_gradient(True, size)
    finally:
        _flat.set_threads(None)
    assert _no_subnormals(m), "a block updated by the pool thread left subnormal momentums"
    # The pool thread is back to IEEE arithmetic for whatever runs there next.
    pool = _flat._THREADS["pool"]
    if pool is not None:
        assert pool.submit(_subnormal_survives).result()


def test_user_threads_are_untouched():
    seen = []
    t = threading.Thread(target=lambda: seen.append(_subnormal_survives()))
    with fpenv.flush_denormals():
        pass
    t.start()
    t.join()
    assert seen == [True]


def test_opt_out_keeps_subnormals():
    code = (
        "import numpy as np\n"
        "from tests.backend.test_fpenv import _momentum_after_zero_gradient\n"
        "m = _momentum_after_zero_gradient(True)\n"
        "assert (m > 0).all() and (m < np.finfo(np.float32).tiny).all(), m  # IEEE\n"
        "print('ok')\n"
    )
    env = {"DISTKERAS_FLUSH_DENORMALS": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
