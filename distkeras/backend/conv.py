"""Fused convolution and pooling primitives with hand-written VJPs.

All primitives work on channels_last arrays with any number of spatial axes:
`x` has shape `(batch, *spatial, channels)`. Explicit `pads` give the
`(low, high)` zero padding of every spatial axis; the public ops in
`distkeras.ops.conv` turn Keras's padding strings into them.

Convolution is im2col + one GEMM: the padded input is read through a strided
view into a contiguous `(batch * outputs, kernel * channels)` matrix, then bias
and (optionally) relu are applied in place. The backward pass is the transposed
GEMM for the kernel and, for the input, one GEMM per kernel position whose
result is added into a strided slice of the input gradient (col2im without
`np.add.at`); the input gradient is computed only when the input needs it (the
first layer of a network needs none). Max pooling saves the index of each
window's first maximum and scatters the gradient through it.

Memory-bound loops run over batch chunks in a few threads (see `set_threads`).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply
from distkeras.backend.threads import auto_threads


def _xp():
    return current_module()


# ---------------------------------------------------------------- threads
# NumPy ufuncs and copies release the GIL, so the memory-bound loops here (window
# copies, scatter-adds, pooling, bias + relu) run on batch chunks in a few threads,
# as PyTorch's CPU kernels do. GEMMs stay on the calling thread (BLAS has its own).
_THREADS: dict[str, Any] = {"n": None, "pool": None}
_MIN_PARALLEL = 1 << 17  # elements; smaller arrays are not worth a thread hand-off
# Scratch values per block of the conv input gradient: all kernel positions of a
# typical layer fit, so their adds run in one threaded pass (fewer hand-offs).
_COL2IM_BLOCK = 1 << 23


def set_threads(n: int | None) -> None:
    """Sets the threads of the conv/pool loops (None: $DISTKERAS_CONV_THREADS or automatic).

    Automatic: the cores available to this process divided among the local
    ranks, at most 4 and at most $OMP_NUM_THREADS when that is set.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"The number of threads must be an integer >= 1. Received: n={n!r}")
    _THREADS["n"] = n
    if _THREADS["pool"] is not None:
        _THREADS["pool"].shutdown(wait=False)
        _THREADS["pool"] = None


def num_threads() -> int:
    """The number of threads the conv/pool loops may use."""
    if _THREADS["n"] is None:
        env = os.environ.get("DISTKERAS_CONV_THREADS", "")
        _THREADS["n"] = max(1, int(env)) if env.isdigit() else auto_threads()
    return _THREADS["n"]


def _parallel(fn: Callable[[int, int], None], batch: int, size: int) -> None:
    """Runs `fn(lo, hi)` over chunks of the batch axis, in threads when `size` is large."""
    n = min(num_threads(), batch) if current_module() is np and size >= _MIN_PARALLEL else 1
    if n <= 1:
        fn(0, batch)
        return
    pool = _THREADS["pool"]
    if pool is None:
        pool = _THREADS["pool"] = ThreadPoolExecutor(max_workers=n - 1)
    bounds = [batch * i // n for i in range(n + 1)]
    futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, n)]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()


# ---------------------------------------------------------------- helpers
def _window(k: tuple, out_sp: tuple, strides: tuple, dilation: tuple) -> tuple:
    """Index of the input values kernel position `k` meets at every output position."""
    return (
        slice(None),
        *(
            slice(ki * di, ki * di + (oi - 1) * si + 1, si)
            for ki, oi, si, di in zip(k, out_sp, strides, dilation)
        ),
        slice(None),
    )


def _positions(kernel: tuple) -> list[tuple]:
    return list(itertools.product(*(range(k) for k in kernel)))


def _pad(x: Any, pads: tuple, value: float = 0.0) -> Any:
    if not any(lo or hi for lo, hi in pads):
        return x
    return _xp().pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def _crop(xpad: Any, pads: tuple) -> Any:
    if not any(lo or hi for lo, hi in pads):
        return xpad
    return xpad[
        (slice(None), *(slice(lo, xpad.shape[i + 1] - hi) for i, (lo, hi) in enumerate(pads)))
    ]


def _out_size(size: int, k: int, s: int, d: int) -> int:
    return (size - d * (k - 1) - 1) // s + 1


def im2col(x: Any, kernel: tuple, strides: tuple, dilation: tuple, out_sp: tuple) -> Any:
    """Gathers `(batch, *out_sp, prod(kernel), channels)` windows of `x` (a contiguous copy)."""
    xp = _xp()
    n, c = x.shape[0], x.shape[-1]
    kp = math.prod(kernel)
    cols = xp.empty((n, *out_sp, kp, c), dtype=x.dtype)
    if c >= 8:
        # One strided view over all windows, copied chunk by chunk.
        st = x.strides
        r = len(kernel)
        view = xp.lib.stride_tricks.as_strided(
            x,
            shape=(n, *out_sp, *kernel, c),
            strides=(
                st[0],
                *(st[1 + i] * strides[i] for i in range(r)),
                *(st[1 + i] * dilation[i] for i in range(r)),
                st[-1],
            ),
        )
        dst = cols.reshape(n, *out_sp, *kernel, c)

        def body(lo, hi):
            dst[lo:hi] = view[lo:hi]

    else:
        windows = [_window(k, out_sp, strides, dilation) for k in _positions(kernel)]

        def body(lo, hi):
            part, src = cols[lo:hi], x[lo:hi]
            for idx, sl in enumerate(windows):
                part[..., idx, :] = src[sl]

    _parallel(body, n, cols.size)
    return cols


def col2im(
    cols: Any, shape: tuple, kernel: tuple, strides: tuple, dilation: tuple, out_sp: tuple
) -> Any:
    """Adjoint of `im2col`: scatter-adds `(batch, *out_sp, K, C)` windows into `shape`."""
    out = _xp().zeros(shape, dtype=cols.dtype)
    windows = [_window(k, out_sp, strides, dilation) for k in _positions(kernel)]

    def body(lo, hi):
        dst, src = out[lo:hi], cols[lo:hi]
        for idx, sl in enumerate(windows):
            dst[sl] += src[..., idx, :]

    _parallel(body, shape[0], cols.size)
    return out


# ---------------------------------------------------------------- convolution
def _conv_input_grad(g2, w2, shape, kernel, strides, dilation, out_sp):
    """col2im fused with the GEMM: one GEMM per kernel position, then strided adds.

    Each product `g2 @ w[k].T` is a contiguous `(M, C)` block, so the adds into the
    padded input gradient read contiguous memory (one `(M, K * C)` GEMM followed
    by col2im would read every window with stride K * C). Positions are done in
    blocks that keep the scratch buffer under `_COL2IM_BLOCK` values.
    """
    xp = _xp()
    n, c, m = shape[0], shape[-1], g2.shape[0]
    wk = w2.reshape(-1, c, w2.shape[-1])
    windows = [_window(k, out_sp, strides, dilation) for k in _positions(kernel)]
    block = max(1, min(len(windows), _COL2IM_BLOCK // max(1, m * c)))
    buf = xp.empty((block, m, c), dtype=g2.dtype)
    view = buf.reshape(block, n, *out_sp, c)
    gx = xp.zeros(shape, dtype=g2.dtype)
    for start in range(0, len(windows), block):
        todo = windows[start : start + block]
        for j in range(len(todo)):
            xp.matmul(g2, wk[start + j].T, out=buf[j])

        def body(lo, hi, todo=todo):
            dst = gx[lo:hi]
            for j, sl in enumerate(todo):
                dst[sl] += view[j, lo:hi]

        _parallel(body, n, len(todo) * m * c)
    return gx


def _epilogue(out2, b, relu, n):
    """In place: `out2 += b`, then relu, on batch chunks of the `(M, F)` GEMM result."""
    if b is None and not relu:
        return
    per = out2.shape[0] // n

    def body(lo, hi):
        o = out2[lo * per : hi * per]
        if b is not None:
            o += b
        if relu:
            _xp().maximum(o, 0, out=o)

    _parallel(body, n, out2.size)


def _grad_epilogue(g2, out2, relu, want_bias, n):
    """`(g2 masked by out2 > 0 when relu, bias gradient or None)`, on batch chunks."""
    if not relu and not want_bias:
        return g2, None
    xp = _xp()
    per = g2.shape[0] // n
    gm = xp.empty_like(g2) if relu else g2
    partial: dict[int, Any] = {}

    def body(lo, hi):
        rows = slice(lo * per, hi * per)
        if relu:
            xp.multiply(g2[rows], out2[rows] > 0, out=gm[rows])
        if want_bias:
            partial[lo] = gm[rows].sum(axis=0)

    _parallel(body, n, g2.size)
    return gm, (sum(partial.values()) if want_bias else None)


def _conv(x, w, b=None, *, strides, pads, dilation, groups, relu=False):
    r = x.ndim - 2
    kernel = tuple(w.shape[:r])
    xpad = _pad(x, pads)
    out_sp = tuple(
        _out_size(xpad.shape[1 + i], kernel[i], strides[i], dilation[i]) for i in range(r)
    )
    n, c, f = x.shape[0], x.shape[-1], w.shape[-1]
    m, kp = n * math.prod(out_sp), math.prod(kernel)
    cols = im2col(xpad, kernel, strides, dilation, out_sp)
    if groups == 1:
        cols2 = cols.reshape(m, kp * c)
        w2 = w.reshape(kp * c, f)
        out2 = cols2 @ w2
    else:
        cg, fg = c // groups, f // groups
        cols2 = cols.reshape(m, kp, groups, cg).transpose(2, 0, 1, 3).reshape(groups, m, kp * cg)
        w2 = w.reshape(kp, cg, groups, fg).transpose(2, 0, 1, 3).reshape(groups, kp * cg, fg)
        out2 = (cols2 @ w2).transpose(1, 0, 2).reshape(m, f)
    _epilogue(out2, b, relu, n)

    def vjp(g, needs):
        want_bias = b is not None and needs[2]
        g2, gb = _grad_epilogue(g.reshape(m, f), out2, relu, want_bias, n)
        gx = gw = None
        if groups == 1:
            if needs[0]:
                gx = _conv_input_grad(g2, w2, xpad.shape, kernel, strides, dilation, out_sp)
                gx = _crop(gx, pads)
            if needs[1]:
                gw = (cols2.T @ g2).reshape(w.shape)
        else:
            gg = g2.reshape(m, groups, fg).transpose(1, 0, 2)
            if needs[0]:
                dcols = (gg @ w2.transpose(0, 2, 1)).reshape(groups, m, kp, cg)
                dcols = dcols.transpose(1, 2, 0, 3).reshape(n, *out_sp, kp, c)
                gx = _crop(col2im(dcols, xpad.shape, kernel, strides, dilation, out_sp), pads)
            if needs[1]:
                gw = (cols2.transpose(0, 2, 1) @ gg).reshape(groups, kp, cg, fg)
                gw = gw.transpose(1, 2, 0, 3).reshape(w.shape)
        return gx, gw, gb

    return out2.reshape(n, *out_sp, f), vjp


def conv(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: tuple = (1,),
    pads: tuple = ((0, 0),),
    dilation: tuple = (1,),
    groups: int = 1,
    activation: str | None = None,
) -> Tensor:
    """N-D cross-correlation of channels_last `x` with `kernel` (+ `bias`), recorded as one node.

    Args:
        x: `(batch, *spatial, channels)`.
        kernel: `(*kernel_size, channels // groups, filters)`.
        bias: Optional `(filters,)`, added to the output.
        strides: One stride per spatial axis.
        pads: One `(low, high)` zero padding per spatial axis.
        dilation: One dilation rate per spatial axis.
        groups: Number of channel groups.
        activation: None, or 'relu' to apply max(., 0) in place (fused).

    Returns:
        `(batch, *out_spatial, filters)`.
    """
    if activation not in (None, "relu"):
        raise ValueError(
            f"Fused activation must be None or 'relu'. Received: activation={activation!r}"
        )
    kw = {
        "strides": tuple(strides),
        "pads": tuple(tuple(p) for p in pads),
        "dilation": tuple(dilation),
        "groups": int(groups),
        "relu": activation == "relu",
    }
    if bias is None:
        return apply(_conv_nobias, x, kernel, **kw)
    return apply(_conv, x, kernel, bias, **kw)


def _conv_nobias(x, w, **kw):
    out, vjp = _conv(x, w, None, **kw)
    return out, lambda g, needs: vjp(g, (*needs, False))[:2]


# ---------------------------------------------------------------- transposed convolution
def _conv_transpose(x, w, b=None, *, strides, dilation, crop, out_sp):
    r = x.ndim - 2
    kernel = tuple(w.shape[:r])
    n, in_sp = x.shape[0], tuple(x.shape[1:-1])
    f, cin = w.shape[-2], w.shape[-1]
    m, kp = n * math.prod(in_sp), math.prod(kernel)
    full = tuple(
        max((in_sp[i] - 1) * strides[i] + dilation[i] * (kernel[i] - 1) + 1, crop[i] + out_sp[i])
        for i in range(r)
    )
    region = (slice(None), *(slice(c0, c0 + o) for c0, o in zip(crop, out_sp)), slice(None))
    x2 = x.reshape(m, cin)
    w2 = w.reshape(kp * f, cin)
    cols = (x2 @ w2.T).reshape(n, *in_sp, kp, f)
    buf = col2im(cols, (n, *full, f), kernel, strides, dilation, in_sp)
    out = _xp().ascontiguousarray(buf[region])
    if b is not None:
        out += b

    def vjp(g, needs):
        gx = gw = gb = None
        if needs[0] or needs[1]:
            gbuf = _xp().zeros((n, *full, f), dtype=g.dtype)
            gbuf[region] = g
            gcols = im2col(gbuf, kernel, strides, dilation, in_sp).reshape(m, kp * f)
            if needs[0]:
                gx = (gcols @ w2).reshape(x.shape)
            if needs[1]:
                gw = (gcols.T @ x2).reshape(w.shape)
        if b is not None and needs[2]:
            gb = g.reshape(-1, f).sum(axis=0)
        return gx, gw, gb

    return out, vjp


def _conv_transpose_nobias(x, w, **kw):
    out, vjp = _conv_transpose(x, w, None, **kw)
    return out, lambda g, needs: vjp(g, (*needs, False))[:2]


def conv_transpose(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: tuple = (1,),
    dilation: tuple = (1,),
    crop: tuple = (0,),
    out_shape: tuple = (1,),
) -> Tensor:
    """Transposed convolution (the input-gradient of `conv`), channels_last.

    Every input position `i` adds `x[i] @ kernel[k].T` at position
    `i * strides + k * dilation` of a full-size output; the result is the
    window of that full output starting at `crop` with spatial shape `out_shape`
    (zeros where the window reaches past the full output).

    Args:
        x: `(batch, *spatial, in_channels)`.
        kernel: `(*kernel_size, filters, in_channels)` (Keras's layout).
        bias: Optional `(filters,)`.
        strides, dilation: One per spatial axis.
        crop: Start of the output window in the full output, per axis.
        out_shape: Spatial shape of the output.
    """
    kw = {
        "strides": tuple(strides),
        "dilation": tuple(dilation),
        "crop": tuple(crop),
        "out_sp": tuple(out_shape),
    }
    if bias is None:
        return apply(_conv_transpose_nobias, x, kernel, **kw)
    return apply(_conv_transpose, x, kernel, bias, **kw)


# ---------------------------------------------------------------- patches
def _patches(x, *, kernel, strides, pads, dilation):
    r = x.ndim - 2
    xpad = _pad(x, pads)
    out_sp = tuple(
        _out_size(xpad.shape[1 + i], kernel[i], strides[i], dilation[i]) for i in range(r)
    )
    cols = im2col(xpad, kernel, strides, dilation, out_sp)

    def vjp(g, needs):
        return (_crop(col2im(g, xpad.shape, kernel, strides, dilation, out_sp), pads),)

    return cols, vjp


def extract_patches(
    x: Any, kernel: tuple, strides: tuple, pads: tuple, dilation: tuple | None = None
) -> Tensor:
    """Windows of channels_last `x`: `(batch, *out_spatial, prod(kernel), channels)`.

    Differentiable (the gradient is col2im); used by the locally connected layers.
    """
    dilation = tuple(dilation) if dilation is not None else (1,) * len(kernel)
    return apply(
        _patches,
        x,
        kernel=tuple(kernel),
        strides=tuple(strides),
        pads=tuple(tuple(p) for p in pads),
        dilation=dilation,
    )


# ---------------------------------------------------------------- pooling
def _pool_out(xpad_shape: tuple, pool: tuple, strides: tuple) -> tuple:
    return tuple(
        _out_size(xpad_shape[1 + i], p, s, 1) for i, (p, s) in enumerate(zip(pool, strides))
    )


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

    def forward(lo, hi):
        src, o, a = xpad[lo:hi], out[lo:hi], arg[lo:hi]
        o[...] = src[windows[0]]
        better = xp.empty(o.shape, dtype=bool)
        tmp = xp.empty(o.shape, dtype=dtype)
        # Windows come in increasing order, so "a = idx where v > o" is a maximum of
        # integer arrays (much faster than a masked assignment).
        for idx in range(1, len(windows)):
            v = src[windows[idx]]
            xp.greater(v, o, out=better)
            xp.multiply(better, idx, out=tmp, casting="unsafe")
            xp.maximum(a, tmp, out=a)
            xp.maximum(o, v, out=o)

    _parallel(forward, n, xpad.size)
    overlapping = any(p > s for p, s in zip(pool, strides))

    def vjp(g, needs):
        gpad = xp.zeros(xpad.shape, dtype=g.dtype)

        def backward(lo, hi):
            dst, gg, a = gpad[lo:hi], g[lo:hi], arg[lo:hi]
            tmp = xp.empty_like(gg)
            for idx, sl in enumerate(windows):
                xp.multiply(gg, a == idx, out=tmp)
                if overlapping:
                    dst[sl] += tmp
                else:
                    dst[sl] = tmp

        _parallel(backward, n, gpad.size)
        return (_crop(gpad, pads),)

    return out, vjp


def max_pool(x: Any, pool: tuple, strides: tuple, pads: tuple) -> Tensor:
    """Max over windows of channels_last `x` (padding never wins); gradient to the first max."""
    return apply(
        _max_pool,
        x,
        pool=tuple(pool),
        strides=tuple(strides),
        pads=tuple(tuple(p) for p in pads),
    )


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
    return apply(
        _avg_pool,
        x,
        pool=tuple(pool),
        strides=tuple(strides),
        pads=tuple(tuple(p) for p in pads),
    )
