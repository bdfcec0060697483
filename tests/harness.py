"""Shared test helpers: finite-difference gradient checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from distkeras.backend import GradientTape, Variable, to_numpy


def numeric_grad(fn: Callable, arrays: list[np.ndarray], i: int, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of sum(fn(*arrays) * w) w.r.t. arrays[i], w fixed random."""
    base = [np.array(a, dtype=np.float64) for a in arrays]
    out = to_numpy(fn(*base))
    w = np.random.default_rng(0).normal(size=np.shape(out))
    grad = np.zeros_like(base[i])
    it = np.nditer(base[i], flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        orig = base[i][idx]
        base[i][idx] = orig + eps
        plus = np.sum(to_numpy(fn(*base)) * w)
        base[i][idx] = orig - eps
        minus = np.sum(to_numpy(fn(*base)) * w)
        base[i][idx] = orig
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def check_grad(
    fn: Callable, *arrays: np.ndarray, wrt: tuple[int, ...] | None = None, rtol=1e-5, atol=1e-6
) -> None:
    """Asserts the autodiff gradient of `fn` matches central finite differences (float64).

    `fn` takes Tensors/arrays and returns a Tensor; gradients are taken of
    sum(fn(...) * w) for a fixed random `w`, with respect to the inputs in `wrt`
    (all by default).
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    wrt = tuple(range(len(arrays))) if wrt is None else wrt
    vars_ = [Variable(a, dtype="float64") for a in arrays]
    with GradientTape() as tape:
        out = fn(*vars_)
        w = np.random.default_rng(0).normal(size=out.shape)
        from distkeras import ops

        total = ops.sum(ops.multiply(out, w))
    grads = tape.gradient(total, [vars_[i] for i in wrt])
    for k, i in enumerate(wrt):
        expected = numeric_grad(fn, arrays, i)
        got = np.zeros_like(expected) if grads[k] is None else to_numpy(grads[k])
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"input {i}")
