"""Max and average pooling primitives with hand-written VJPs (channels_last).

Max pooling saves the index of each window's first maximum and scatters the
gradient through it; average pooling divides by the number of real (unpadded)
values in each window, as Keras does. Both loop over the window positions on
batch chunks in the shared thread pool.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras.backend.autodiff import Tensor, apply
from distkeras.backend.windows import (
    _crop,
    _out_size,
    _pad,
    _parallel,
    _positions,
    _shared_chunks,
    _window,
    _xp,
)


# ---------------------------------------------------------------- pooling
def _pool_out(xpad_shape: tuple, pool: tuple, strides: tuple) -> tuple:
    return tuple(
        _out_size(xpad_shape[1 + i], p, s, 1) for i, (p, s) in enumerate(zip(pool, strides))
    )


# Bytes of input per sub-chunk of the pooling loops (measured best of 256 KiB-1 GiB).
_CACHE_BYTES = 2 << 20


def _cache_rows(x: Any) -> int:
    """Batch rows per sub-chunk, so that one pass over a sub-chunk stays in cache."""
    per_row = x[0].size * x.dtype.itemsize
    return max(1, _CACHE_BYTES // max(1, per_row)) if _xp() is np else x.shape[0]


def _max_pool(x, *, pool, strides, pads):
    xp = _xp()
    xpad = _pad(x, pads, value=-xp.inf)
    out_sp = _pool_out(xpad.shape, pool, strides)
    ones = (1,) * len(pool)
    windows = [_window(k, out_sp, strides, ones) for k in _positions(pool)]
    n = x.shape[0]
    out = xp.empty((n, *out_sp, x.shape[-1]), dtype=x.dtype)
    # Index (into the window) of the first maximum, saved for the backward scatter.
    dtype = "uint8" if len(windows) < 256 else "int32"
    arg = xp.zeros(out.shape, dtype=dtype)

    rows = _cache_rows(xpad)

    def forward(take):
        better = xp.empty((rows, *out.shape[1:]), dtype=bool)
        tmp = xp.empty((rows, *out.shape[1:]), dtype=dtype)
        while (taken := take()) is not None:  # a few rows at a time: passes stay in cache
            _, s, e = taken
            src, o, a = xpad[s:e], out[s:e], arg[s:e]
            o[...] = src[windows[0]]
            # Windows come in increasing order, so "a = idx where v > o" is a maximum
            # of integer arrays (much faster than a masked assignment).
            for idx in range(1, len(windows)):
                v = src[windows[idx]]
                xp.greater(v, o, out=better[: e - s])
                xp.multiply(better[: e - s], idx, out=tmp[: e - s], casting="unsafe")
                xp.maximum(a, tmp[: e - s], out=a)
                xp.maximum(o, v, out=o)

    _shared_chunks(forward, n, rows, xpad.size)
    overlapping = any(p > s for p, s in zip(pool, strides))

    # Windows that tile the input exactly write every gradient value once: no zeroing.
    tiling = not overlapping and all(
        p == s and o * s == size for p, s, o, size in zip(pool, strides, out_sp, xpad.shape[1:-1])
    )

    def vjp(g, needs):
        gpad = (xp.empty if tiling else xp.zeros)(xpad.shape, dtype=g.dtype)

        def backward(take):
            tmp = xp.empty((rows, *g.shape[1:]), dtype=g.dtype)
            while (taken := take()) is not None:
                _, s, e = taken
                dst, gg, a, t = gpad[s:e], g[s:e], arg[s:e], tmp[: e - s]
                for idx, sl in enumerate(windows):
                    if overlapping:
                        xp.multiply(gg, a == idx, out=t)
                        dst[sl] += t
                    else:  # straight into the window's strided view: one pass less
                        xp.multiply(gg, a == idx, out=dst[sl])

        _shared_chunks(backward, n, rows, gpad.size)
        return (_crop(gpad, pads),)

    return out, vjp


def _apply_pool(fn: Any, x: Any, pool: tuple, strides: tuple, pads: tuple) -> Tensor:
    return apply(
        fn, x, pool=tuple(pool), strides=tuple(strides), pads=tuple(tuple(p) for p in pads)
    )


def max_pool(x: Any, pool: tuple, strides: tuple, pads: tuple) -> Tensor:
    """Max over windows of channels_last `x` (padding never wins); gradient to the first max."""
    return _apply_pool(_max_pool, x, pool, strides, pads)


def _window_counts(in_sp: tuple, out_sp: tuple, pool: tuple, strides: tuple, pads: tuple):
    """Number of real (unpadded) values in every window, shaped to broadcast over the output."""
    xp = _xp()
    r = len(pool)
    counts = None
    for i in range(r):
        start = xp.arange(out_sp[i]) * strides[i] - pads[i][0]
        c = xp.minimum(start + pool[i], in_sp[i]) - xp.maximum(start, 0)
        shape = [1] * (r + 2)
        shape[1 + i] = out_sp[i]
        c = c.reshape(shape)
        counts = c if counts is None else counts * c
    return counts


def _avg_pool(x, *, pool, strides, pads):
    xp = _xp()
    xpad = _pad(x, pads)
    out_sp = _pool_out(xpad.shape, pool, strides)
    ones = (1,) * len(pool)
    windows = [_window(k, out_sp, strides, ones) for k in _positions(pool)]
    if any(lo or hi for lo, hi in pads):
        scale = (1.0 / _window_counts(x.shape[1:-1], out_sp, pool, strides, pads)).astype(x.dtype)
    else:
        scale = xp.asarray(1.0 / math.prod(pool), dtype=x.dtype)
    n = x.shape[0]
    out = xp.empty((n, *out_sp, x.shape[-1]), dtype=x.dtype)

    def forward(lo, hi):
        src, o = xpad[lo:hi], out[lo:hi]
        o[...] = src[windows[0]]
        for sl in windows[1:]:
            o += src[sl]
        o *= scale

    _parallel(forward, n, xpad.size)

    def vjp(g, needs):
        gs = g * scale
        gpad = xp.zeros(xpad.shape, dtype=g.dtype)

        def backward(lo, hi):
            dst, src = gpad[lo:hi], gs[lo:hi]
            for sl in windows:
                dst[sl] += src

        _parallel(backward, n, gpad.size)
        return (_crop(gpad, pads),)

    return out, vjp


def average_pool(x: Any, pool: tuple, strides: tuple, pads: tuple) -> Tensor:
    """Mean over windows of channels_last `x`; padded values are not counted (as Keras)."""
    return _apply_pool(_avg_pool, x, pool, strides, pads)
