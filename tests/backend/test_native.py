"""The compiled LSTM loops (`backend/_native`) against the NumPy loops and float64 formulas."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from distkeras.backend import native
from distkeras.backend.lstm import _lstm


@pytest.fixture
def loops():
    """Restores the process's choice after a test switches the loops."""
    yield native
    native.set_enabled(None)


def test_the_extension_is_built_and_finds_numpys_gemms():
    # `pip install` builds it wherever a C compiler is found; CI has one.
    info = native.status()
    assert info["why_not"] is None, info
    assert info["library"] and os.path.exists(info["library"])
    assert set(info["gemm"]) == {"float32", "float64"}
    assert native.lstm_loops(np.float32) is not None
    assert native.lstm_loops(np.float64) is not None
    assert native.lstm_loops(np.float16) is None  # no compiled loop: the NumPy one runs


def _case(dtype, B, T, D, U, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(B, T, D)).astype(dtype),
        (0.5 * rng.normal(size=(B, U))).astype(dtype),
        (0.5 * rng.normal(size=(B, U))).astype(dtype),
        (0.4 * rng.normal(size=(D, 4 * U))).astype(dtype),
        (0.4 * rng.normal(size=(U, 4 * U))).astype(dtype),
        (0.3 * rng.normal(size=4 * U)).astype(dtype),
    ]


def _run(loops, on, arrays, mask, last_only, g):
    loops.set_enabled(on)
    out, vjp = _lstm(*arrays, mask, last_only=last_only)
    grads = vjp(g(out.shape), [True] * 7)
    return [out, *grads[:6]]


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("last_only", [False, True], ids=["sequences", "last_only"])
@pytest.mark.parametrize("shape", [(5, 19, 3, 7), (64, 12, 16, 32)], ids=["odd", "wide"])
def test_compiled_loops_match_the_numpy_loops(loops, dtype, rtol, masked, last_only, shape):
    """Outputs and all six gradients; odd sizes run the vector loops' remainders, 19 steps
    cross three pipeline blocks."""
    B, T, D, U = shape
    arrays = _case(dtype, B, T, D, U)
    mask = np.random.default_rng(1).random((B, T)) > 0.3 if masked else None
    g = np.random.default_rng(2).normal(size=(B, T + 1, U) if not last_only else (B, 2, U))
    g = g.astype(dtype)
    compiled = _run(loops, True, arrays, mask, last_only, lambda s: g)
    plain = _run(loops, False, arrays, mask, last_only, lambda s: g)
    names = ["output", "dx", "dh0", "dc0", "dkernel", "drecurrent", "dbias"]
    for name, a, b in zip(names, compiled, plain):
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=name)


def _gates_case(xo, xi, xg):
    """One step whose pre-activations are the inputs: h = sigmoid(xo) tanh(sigmoid(xi) tanh(xg))."""
    n = xo.size
    x = np.zeros((n, 1, 4), dtype=np.float32)
    x[:, 0, 0], x[:, 0, 3], x[:, 0, 2] = xi, xo, xg  # Keras columns: i, f, c~, o
    zeros = np.zeros((n, 1), dtype=np.float32)
    kernel = np.eye(4, dtype=np.float32)
    return [x, zeros, zeros, kernel, np.zeros((1, 4), np.float32), None]


def test_compiled_activations_are_accurate_to_a_few_ulp(loops):
    """Against float64 formulas, over the whole range and near zero, where a tanh
    computed as 1 - 2 / (exp(2x) + 1) would lose its relative precision."""
    rng = np.random.default_rng(0)
    grid = np.concatenate(
        [np.linspace(-20, 20, 4001), 10.0 ** rng.uniform(-30, 1, 2000) * rng.choice([-1, 1], 2000)]
    ).astype(np.float32)
    big = np.full_like(grid, 30.0)  # sigmoid(30) = 1 in float32
    for xo, xi, xg in ((grid, big, grid), (big, grid, big), (big, big, grid)):
        arrays = _gates_case(xo, xi, xg)
        loops.set_enabled(True)
        h = _lstm(*arrays, None, last_only=True)[0][:, 0, 0]
        o, i, g = (v.astype(np.float64) for v in (xo, xi, xg))
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        want = sig(o) * np.tanh(sig(i) * np.tanh(g))
        ulp = np.abs(h - want) / np.spacing(np.abs(want).astype(np.float32))
        assert ulp.max() < 8, (ulp.max(), grid[np.argmax(ulp)])


def test_compiled_activations_keep_nan_and_saturate(loops):
    # (an infinite input would meet the kernel's zeros: inf * 0 is NaN in any GEMM)
    vals = np.array([np.nan, 3e38, -3e38, 0.0, 100.0, -100.0], dtype=np.float32)
    big = np.full_like(vals, 30.0)
    for on in (True, False):
        loops.set_enabled(on)
        h = _lstm(*_gates_case(big, big, vals), None, last_only=True)[0][:, 0, 0]
        assert np.isnan(h[0])
        np.testing.assert_allclose(h[1:], np.tanh(np.tanh(vals[1:])), rtol=1e-6)
        h = _lstm(*_gates_case(vals, big, big), None, last_only=True)[0][:, 0, 0]
        assert np.isnan(h[0])
        t1 = np.tanh(1.0)  # sigmoid(30) tanh(30) is 1 in float32
        np.testing.assert_allclose(h[1:], [t1, 0, 0.5 * t1, t1, 0], atol=1e-7)


def test_set_enabled_checks_its_argument(loops):
    with pytest.raises(TypeError, match="Received: enabled='no'"):
        loops.set_enabled("no")


def test_the_environment_variable_turns_the_compiled_loops_off():
    code = (
        "import numpy as np; from distkeras.backend import native; "
        "print(native.enabled(), native.lstm_loops(np.float32) is None)"
    )
    env = {**os.environ, "DISTKERAS_NATIVE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["False", "True"], out.stderr


# ------------------------------------------------------------------- Adam's update
def _adam_state(dtype, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=n).astype(dtype) for _ in range(3)]  # param, grad, m
    arrays += [np.abs(rng.normal(size=n)).astype(dtype) * 1e-3 for _ in range(2)]  # v, vhat
    arrays[1][:5] = [np.nan, np.inf, -np.inf, 0.0, 1e-30]
    arrays[4][5] = np.nan  # AMSGrad's running maximum keeps a NaN, as np.maximum does
    return arrays


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_compiled_adam_update_is_bitwise_the_numpy_update(loops, dtype, amsgrad):
    from distkeras.optimizers import Adam

    opt = Adam(amsgrad=amsgrad, beta_1=0.85, epsilon=1e-6)
    results = {}
    for on in (True, False):
        loops.set_enabled(on)
        p, g, m, v, vhat = _adam_state(dtype)
        slots = [m, v, vhat] if amsgrad else [m, v]
        for step in range(1, 4):
            opt._update(
                p, g, slots, [np.empty_like(p), np.empty_like(p)], opt._prepare_step(0.01, step)
            )
        results[on] = [p, *slots]
    for a, b in zip(results[True], results[False]):
        np.testing.assert_array_equal(a, b)
        assert a.tobytes() == b.tobytes()  # bit for bit, NaN payloads and signed zeros too


def test_compiled_adam_update_declines_what_numpy_would_compute_differently(loops):
    loops.set_enabled(True)
    p, g, m, v, _ = _adam_state("float32")
    update = native.adam_update(p)
    before = [a.copy() for a in (p, m, v)]
    assert not update(p, g[::-1], m, v, None, 0.1, 0.001, 1e-7, 0.01)  # a strided gradient
    assert not update(p, g.astype("float64"), m, v, None, 0.1, 0.001, 1e-7, 0.01)
    assert not update(p, g, m, v, None, 0.1, 0.001, 1e-7, np.float64(0.01))  # computes in float64
    for a, b in zip((p, m, v), before):
        np.testing.assert_array_equal(a, b)  # nothing touched
    assert update(p, g, m, v, None, 0.1, 0.001, 1e-7, np.float32(0.01))
    assert native.adam_update(p.astype("float16")) is None
    loops.set_enabled(False)
    assert native.adam_update(p) is None
