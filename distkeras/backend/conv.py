"""Fused convolution primitives with hand-written VJPs.

All primitives work on channels_last arrays with any number of spatial axes:
`x` has shape `(batch, *spatial, channels)`. Explicit `pads` give the
`(low, high)` zero padding of every spatial axis; the public ops in
`distkeras.ops.conv` turn Keras's padding strings into them.

Convolution is im2col + GEMM, fused per batch chunk (see `_dense_conv`): each
chunk's windows are copied into a contiguous `(rows, kernel * channels)` block
and multiplied by the kernel while in cache, then bias and (optionally) relu
are applied in place. The backward pass is the transposed GEMMs for the kernel
and, for the input, a GEMM followed by col2im adds into the input gradient,
computed only when the input needs it (the first layer of a network needs
none). Grouped convolutions use one batched GEMM over the groups.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply
from distkeras.backend.primitives import column_sums
from distkeras.backend.windows import (
    _balanced_chunk,
    _crop,
    _out_size,
    _pad,
    _parallel,
    _positions,
    _shared_chunks,
    _window,
    _window_filler,
    _xp,
    col2im,
    im2col,
    num_threads,
    set_threads,
    sum_blocks,
)

__all__ = ["conv", "conv_transpose", "extract_patches", "num_threads", "set_threads"]

# Bytes of buffers per chunk of the fused convolution (measured: 1-8 MiB all do well).
_CHUNK_BYTES = 4 << 20
# Input channels from which the input gradient takes one GEMM per kernel position.
_PER_POSITION_CHANNELS = 16


# ---------------------------------------------------------------- convolution
def _chunk_rows(n: int, per_row: int) -> int:
    """Batch rows per chunk so that one chunk's buffers stay near `_CHUNK_BYTES` (all on GPUs)."""
    if current_module() is not np:
        return n
    return max(1, min(n, _CHUNK_BYTES // max(1, per_row)))


def _dense_conv(xpad, w, b, relu, kernel, strides, dilation, out_sp):
    """Forward and VJP of an ungrouped convolution, im2col + GEMM fused per batch chunk.

    Each thread takes chunks of the batch and copies a chunk's windows into its
    own chunk-sized buffer, multiplies them by the kernel into the chunk's rows
    of the output and adds bias and relu while those rows are still in cache.
    The backward pass works the same way: mask, bias and kernel-gradient
    partial sums (the windows copied again into the thread's buffer: cheaper
    than keeping the whole batch's windows from forward, 1.3 ms a step of the
    bench CNN), and the input gradient as GEMMs into a chunk-sized scratch
    block followed by its col2im adds. BLAS runs on one thread per chunk;
    chunks are sized by `_CHUNK_BYTES`.
    """
    xp = _xp()
    n, c, f = xpad.shape[0], xpad.shape[-1], w.shape[-1]
    per, kc = math.prod(out_sp), math.prod(kernel) * c
    m, itemsize = n * per, xpad.dtype.itemsize
    w2 = w.reshape(kc, f)
    # A column of ones after the windows carries the bias through the GEMM (and
    # its gradient out of the kernel-gradient GEMM): no pass over the output for
    # it (0.7 ms of 3 for a 1-channel 3x3 convolution's forward on one core).
    kb = kc + (b is not None)
    w_aug = w2 if b is None else xp.concatenate([w2, b.reshape(1, f)])
    out2 = xp.empty((m, f), dtype=xpad.dtype)
    fill = _window_filler(xpad, kernel, strides, dilation, out_sp)
    chunk = _chunk_rows(n, per * (kc + f) * itemsize)
    fchunk = _balanced_chunk(n, chunk, m * kc)

    def windows_of(buf, s, e):
        """The `(rows, kb)` windows of batch rows s:e (and ones), in the thread's buffer."""
        cols = buf[: e - s]
        fill(cols[..., :kc].reshape(e - s, *out_sp, math.prod(kernel), c), s, e)  # a view
        return cols.reshape((e - s) * per, kb)

    def cols_buffer(rows):
        buf = xp.empty((rows, per, kb), dtype=xpad.dtype)
        if b is not None:
            buf[..., kc] = 1
        return buf

    def forward(take):
        buf = cols_buffer(fchunk)
        while (rows := take()) is not None:
            _, s, e = rows
            o = out2[s * per : e * per]
            xp.matmul(windows_of(buf, s, e), w_aug, out=o)
            if relu:
                xp.maximum(o, 0, out=o)

    _shared_chunks(forward, n, fchunk, m * kc, blas_single=True)
    windows = [_window(k, out_sp, strides, dilation) for k in _positions(kernel)]

    def vjp(g, needs):
        g2 = g.reshape(m, f)
        want_x, want_w, want_b = needs[0], needs[1], b is not None and needs[2]
        gx = xp.empty(xpad.shape, dtype=g.dtype) if want_x else None  # zeroed per chunk
        size = m * (2 * kc + f)
        bchunk = _balanced_chunk(n, _chunk_rows(n, per * (2 * kc + f) * itemsize), size)
        count = -(-n // bchunk)
        # Per-chunk partial sums, added in chunk order: the same bits whichever
        # thread took which chunk.
        gw_parts = xp.empty((count, kb, f), dtype=g.dtype) if want_w else None
        gb_parts = xp.empty((count, f), dtype=g.dtype) if want_b and not want_w else None

        # The input gradient: with many channels, one GEMM per kernel position
        # whose result is added at once (runs of out_w * c values, against runs
        # of c for slices of one GEMM's (rows, positions, c) result: 3.2 -> 1.4 ms
        # of adds in a 64-to-32-channel 3x3 backward, for 0.5 ms more GEMM).
        per_position = want_x and c >= _PER_POSITION_CHANNELS
        w_pos = (
            [xp.ascontiguousarray(w2[k * c : (k + 1) * c].T) for k in range(len(windows))]
            if per_position
            else None
        )

        def backward(take):
            buf = cols_buffer(bchunk) if want_w else None
            gm = xp.empty((bchunk * per, f), dtype=g.dtype) if relu else None
            # Column sums as a GEMV: ten times faster than sum(axis=0) over short rows.
            ones = xp.ones((bchunk * per,), dtype=g.dtype) if gb_parts is not None else None
            width = c if per_position else kc
            dcols = xp.empty((bchunk * per, width), dtype=g.dtype) if want_x else None
            while (taken := take()) is not None:
                i, s, e = taken
                rows = slice(s * per, e * per)
                gg = g2[rows]
                if relu:
                    gg = xp.multiply(gg, out2[rows] > 0, out=gm[: (e - s) * per])
                if gb_parts is not None:
                    xp.matmul(ones[: (e - s) * per], gg, out=gb_parts[i])
                if want_w:  # the windows again: cheaper than keeping them from forward
                    xp.matmul(windows_of(buf, s, e).T, gg, out=gw_parts[i])  # + bias row
                if want_x:
                    gx[s:e].fill(0)  # here, in cache and in parallel
                if per_position:
                    dst, d = gx[s:e], dcols[: (e - s) * per]
                    for wk, sl in zip(w_pos, windows):
                        xp.matmul(gg, wk, out=d)
                        dst[sl] += d.reshape(e - s, *out_sp, c)
                elif want_x:
                    d = xp.matmul(gg, w2.T, out=dcols[: (e - s) * per])
                    d = d.reshape(e - s, *out_sp, len(windows), c)
                    dst = gx[s:e]
                    for idx, sl in enumerate(windows):
                        dst[sl] += d[..., idx, :]

        _shared_chunks(backward, n, bchunk, size, blas_single=True)
        gw = gb = None
        if want_w:
            total = sum_blocks(gw_parts)
            gw = total[:kc].reshape(w.shape)
            gb = total[kc] if want_b else None
        elif want_b:
            gb = sum_blocks(gb_parts)
        return gx, gw, gb

    return out2, vjp


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
            partial[lo] = column_sums(gm[rows])

    _parallel(body, n, g2.size)
    # In row order, whichever thread finished first: the same bits every run.
    return gm, (sum(partial[k] for k in sorted(partial)) if want_bias else None)


def _conv(x, w, b=None, *, strides, pads, dilation, groups, relu=False):
    r = x.ndim - 2
    kernel = tuple(w.shape[:r])
    xpad = _pad(x, pads)
    out_sp = tuple(
        _out_size(xpad.shape[1 + i], kernel[i], strides[i], dilation[i]) for i in range(r)
    )
    n, f = x.shape[0], w.shape[-1]
    if groups == 1:
        out2, dense_vjp = _dense_conv(xpad, w, b, relu, kernel, strides, dilation, out_sp)

        def vjp(g, needs):
            gx, gw, gb = dense_vjp(g, needs)
            return (_crop(gx, pads) if gx is not None else None), gw, gb

        return out2.reshape(n, *out_sp, f), vjp
    c, kp = x.shape[-1], math.prod(kernel)
    m = n * math.prod(out_sp)
    cols = im2col(xpad, kernel, strides, dilation, out_sp)
    cg, fg = c // groups, f // groups
    cols2 = cols.reshape(m, kp, groups, cg).transpose(2, 0, 1, 3).reshape(groups, m, kp * cg)
    w2 = w.reshape(kp, cg, groups, fg).transpose(2, 0, 1, 3).reshape(groups, kp * cg, fg)
    out2 = (cols2 @ w2).transpose(1, 0, 2).reshape(m, f)
    _epilogue(out2, b, relu, n)

    def vjp(g, needs):
        want_bias = b is not None and needs[2]
        g2, gb = _grad_epilogue(g.reshape(m, f), out2, relu, want_bias, n)
        gx = gw = None
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
            gb = column_sums(g.reshape(-1, f))
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
