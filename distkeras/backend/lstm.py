"""The fused LSTM primitive: the whole sequence's forward loop and its BPTT backward.

Each step is kept feature-major, `(features, batch)`, so that every gate is
one contiguous block and the dozen ufuncs of a step run on contiguous memory
(a third faster per step than strided column slices of `(batch, 4 units)`).
Gates are kept in the order `o, i, f, c~` (Keras's weights: `i, f, c~, o`).
The big GEMMs (the input projection ahead of the loop, the weight and input
gradients behind it) run block by block in a pool thread while the time loop
goes on (`TimePipeline`); each such job makes few NumPy calls, since every
call of that thread takes the GIL from the loop.
"""

from __future__ import annotations

import numpy as np

from distkeras.backend import current_module, native
from distkeras.backend.primitives import column_sums
from distkeras.backend.threads import SMALL_GEMM
from distkeras.backend.windows import TimePipeline, _shared_chunks, step_rows, sum_blocks


def _xp():
    return current_module()


def _lstm_order(U: int) -> list[int]:
    """Internal gate order `o, i, f, c~` as Keras columns (Keras: `i, f, c~, o`).

    The sigmoid gates (o, i, f) come first, one block for the forward's affine;
    the gates whose gradient multiplies dc (i, f, c~) are the last three, one
    block for the backward's product.
    """
    return [*range(3 * U, 4 * U), *range(3 * U)]


def _lstm_partials(A, C, TC, c0, U, P, E, s, e):
    """Fills steps `s:e` of the per-step factors of the LSTM backward.

    Layout `(T, 4U, B)`, gates `o, i, f, c~` (see `_lstm_order`). `P * (dh, dc,
    dc, dc)` is dL/d(pre-activations): P holds each gate's derivative times
    the factor it multiplies (tanh(c) for o, c~ for i, c_prev for f, i for
    c~). `E` carries dh to dc through h = o tanh(c). Memory-bound passes, run
    on cache-sized blocks of timesteps before the backward loop.
    """
    xp = _xp()
    a, p = A[s:e], P[s:e]
    go, gi, gc = (a[:, k * U : (k + 1) * U] for k in (0, 1, 3))
    xp.subtract(1, a, out=p)
    p *= a  # s (1 - s) for every gate; the c~ block is overwritten below
    p[:, :U] *= TC[s:e]
    p[:, U : 2 * U] *= gc
    if s == 0:
        p[0, 2 * U : 3 * U] *= c0
        p[1:, 2 * U : 3 * U] *= C[: e - 1]
    else:
        p[:, 2 * U : 3 * U] *= C[s - 1 : e - 1]
    pc = p[:, 3 * U :]
    xp.multiply(gc, gc, out=pc)
    xp.subtract(1, pc, out=pc)
    pc *= gi
    ee = E[s:e]
    xp.multiply(TC[s:e], TC[s:e], out=ee)
    xp.subtract(1, ee, out=ee)
    ee *= go


def _lstm(x, h0, c0, kernel, rkernel, bias, mask, last_only=False):
    """The LSTM loop on feature-major steps: every per-step array is `(features, batch)`.

    Each gate of a step is then one contiguous block, so the dozen ufuncs of
    a step run on contiguous memory instead of strided column slices (a third
    faster per step). Gates are kept in the order `o, i, f, c~`.
    """
    xp = _xp()
    dt = x.dtype
    B, T, D = x.shape
    U = rkernel.shape[0]
    order = _lstm_order(U)
    loops = native.lstm_loops(dt) if xp is np else None
    # sigmoid(a) = 0.5 tanh(0.5 a) + 0.5: with the o, i, f rows of the weights
    # halved, one tanh over all four gates gives tanh(a / 2) for them and tanh(a)
    # for c~ (the NumPy loop; the compiled one has its own sigmoid).
    half = xp.full((4 * U, 1), 0.5 if loops is None else 1.0, dtype=dt)
    half[3 * U :] = 1.0
    k_t = xp.ascontiguousarray(kernel[:, order].T * half)  # (4U, D)
    rk_t = xp.ascontiguousarray(rkernel[:, order].T * half)  # (4U, U)
    b_t = None if bias is None else bias[order][:, None] * half  # (4U, 1)
    xt = xp.empty((T, B, D), dtype=dt)  # time-major inputs, kept for the kernel gradient
    A = xp.empty((T, 4 * U, B), dtype=dt)  # pre-activations, then gates in place

    C = xp.empty((T, U, B), dtype=dt)
    TC = xp.empty((T, U, B), dtype=dt)
    H = xp.empty((T + 1, U, B), dtype=dt)
    H[0] = h0.T
    c0 = xp.ascontiguousarray(xp.asarray(c0, dtype=dt).T)
    c = c0
    drop = None if mask is None else ~mask.T[:, None, :]  # (T, 1, B): masked steps
    keep = None if mask is None or loops is None else xp.ascontiguousarray(mask.T, dtype=dt)
    with TimePipeline(T, A.size + xt.size, B * U * 4 * U <= SMALL_GEMM) as pipe:
        pipe.project_inputs(x, xt, A, k_t, b_t)
        if loops is not None:
            for s, e in pipe.blocks:
                pipe.ready(s)
                loops[0](s, e, A, rk_t, H, C, TC, c0, keep)
            c = C[T - 1] if T else c0
        else:
            c = _numpy_forward(pipe, A, rk_t, H, C, TC, c0, drop)
    c_last = c

    def vjp(g, needs):
        if last_only:  # g is (B, 2, U): the last h and the last c
            gH = None
            dc = xp.array(g[:, 1].T, dtype=dt, order="C")
            dh = xp.array(g[:, 0].T, dtype=dt, order="C")
        else:
            gH = xp.ascontiguousarray(g[:, :T].transpose(1, 2, 0))  # (T, U, B)
            dc = xp.array(g[:, T].T, dtype=dt, order="C")
            dh = xp.zeros((U, B), dtype=dt)
        rk = xp.ascontiguousarray(rkernel[:, order])  # (U, 4U): dh = rk @ dz
        k = kernel[:, order]  # (D, 4U)
        dZ = xp.empty((T, 4 * U, B), dtype=dt)
        pipe = TimePipeline(T, 3 * dZ.size, B * U * 4 * U <= SMALL_GEMM)
        nb = len(pipe.blocks)
        dx = xp.empty((T, B, D), dtype=dt) if needs[0] else None
        dk = xp.empty((nb, D, 4 * U), dtype=dt) if needs[3] else None
        drk = xp.empty((nb, U, 4 * U), dtype=dt) if needs[4] else None
        db = xp.empty((nb, 4 * U), dtype=dt) if bias is not None and needs[5] else None

        def weight_grads(j, s, e):  # the GEMMs of steps s:e, while the loop goes on
            dz = step_rows(dZ[s:e])
            if dx is not None:
                xp.matmul(dz, k.T, out=dx[s:e].reshape(-1, D))
            if dk is not None:
                xp.matmul(xt[s:e].reshape(-1, D).T, dz, out=dk[j])
            if drk is not None:
                xp.matmul(step_rows(H[s:e]).T, dz, out=drk[j])
            if db is not None:
                db[j] = column_sums(dz)

        with pipe:
            if loops is not None:
                work = xp.empty((2, U, B), dtype=dt)
                for j in range(nb - 1, -1, -1):
                    s, e = pipe.blocks[j]
                    loops[1](s, e, A, C, TC, c0, keep, gH, rk, dZ, dh, dc, work)
                    pipe.stepped_back(s, weight_grads)
            else:
                dh, dc = _numpy_backward(pipe, weight_grads, A, C, TC, c0, drop, gH, rk, dZ, dh, dc)
            pipe.finish()
        return (
            dx.transpose(1, 0, 2) if dx is not None else None,
            xp.ascontiguousarray(dh.T) if needs[1] else None,
            xp.ascontiguousarray(dc.T) if needs[2] else None,
            _keras_columns(sum_blocks(dk), order),
            _keras_columns(sum_blocks(drk), order),
            _keras_columns(sum_blocks(db), order),
            None,
        )

    if last_only:
        return xp.stack([H[T].T, c_last.T], axis=1), vjp
    out = xp.empty((B, T + 1, U), dtype=dt)
    out[:, :T] = H[1:].transpose(2, 0, 1)
    out[:, T] = c_last.T
    return out, vjp


def _numpy_forward(pipe, A, rk_t, H, C, TC, c0, drop):
    """The forward loop in NumPy calls, gates of halved rows (see `_lstm`); returns the last c."""
    xp = _xp()
    T, U4, B = A.shape
    U = U4 // 4
    c = c0
    tmp = xp.empty((4 * U, B), dtype=A.dtype)
    ig = xp.empty((U, B), dtype=A.dtype)
    for t in range(T):
        pipe.ready(t)
        z = A[t]
        xp.matmul(rk_t, H[t], out=tmp)
        z += tmp
        xp.tanh(z, out=z)
        sig = z[: 3 * U]
        sig *= 0.5
        sig += 0.5
        ct = C[t]
        xp.multiply(z[2 * U : 3 * U], c, out=ct)
        xp.multiply(z[U : 2 * U], z[3 * U :], out=ig)
        ct += ig
        if drop is not None:
            xp.copyto(ct, c, where=drop[t])
        xp.tanh(ct, out=TC[t])
        xp.multiply(z[:U], TC[t], out=H[t + 1])
        if drop is not None:
            xp.copyto(H[t + 1], H[t], where=drop[t])
        c = ct
    return c


def _numpy_backward(pipe, weight_grads, A, C, TC, c0, drop, gH, rk, dZ, dh, dc):
    """The backward loop in NumPy calls (see `_lstm`); returns the gradients of h0 and c0."""
    xp = _xp()
    T, U4, B = A.shape
    U = U4 // 4
    dt = A.dtype
    P, E = xp.empty_like(A), xp.empty_like(C)
    rows = max(1, (1 << 18) // max(1, A[0].size))  # timesteps a block (about 1 MiB)

    def block(take):  # cache-sized blocks of timesteps, in the shared thread pool
        while (taken := take()) is not None:
            _lstm_partials(A, C, TC, c0, U, P, E, taken[1], taken[2])

    _shared_chunks(block, T, rows, A.size)
    P3 = P[:, U:].reshape(T, 3, U, B)
    dZ3 = dZ[:, U:].reshape(T, 3, U, B)
    dct = xp.empty((U, B), dtype=dt)
    dhs, dcs = xp.empty((2, U, B), dtype=dt), xp.empty((2, U, B), dtype=dt)
    for t in range(T - 1, -1, -1):
        if gH is not None:
            dh += gH[t]
        xp.multiply(dh, E[t], out=dct)
        dct += dc
        xp.multiply(P3[t], dct, out=dZ3[t])
        xp.multiply(dh, P[t, :U], out=dZ[t, :U])
        if drop is not None:
            dZ[t] *= ~drop[t]
        dh_new = xp.matmul(rk, dZ[t], out=dhs[t & 1])
        dc_new = xp.multiply(dct, A[t, 2 * U : 3 * U], out=dcs[t & 1])
        if drop is not None:
            xp.copyto(dh_new, dh, where=drop[t])
            xp.copyto(dc_new, dc, where=drop[t])
        dh, dc = dh_new, dc_new
        pipe.stepped_back(t, weight_grads)
    return dh, dc


def _keras_columns(grad, order):
    """A gradient with internal gate columns, put back in Keras's column order."""
    if grad is None:
        return None
    out = _xp().empty_like(grad)
    out[..., order] = grad
    return out
