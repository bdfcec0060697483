"""The fused GRU primitive: the whole sequence's forward loop and its BPTT backward.

Laid out like the LSTM (`lstm.py`): each step is feature-major, `(features,
batch)`, so every gate (`z, r, h~`, Keras's order) is one contiguous block;
the input projection runs ahead of the loop and the weight and input
gradients behind it, block by block in a pool thread (`TimePipeline`).
`reset_after=True` (Keras 3's default) applies the reset gate after the
recurrent product, `False` before it (two recurrent GEMMs a step).
"""

from __future__ import annotations

from distkeras.backend import current_module
from distkeras.backend.primitives import column_sums
from distkeras.backend.threads import SMALL_GEMM
from distkeras.backend.windows import TimePipeline, step_rows, sum_blocks


def _xp():
    return current_module()


def _gru(x, h0, kernel, rkernel, bias, mask, reset_after=True):
    xp = _xp()
    dt = x.dtype
    B, T, D = x.shape
    U = rkernel.shape[0]
    small = B * U * 3 * U <= SMALL_GEMM
    # The z and r rows are halved so that sigmoid(a) = 0.5 tanh(0.5 a) + 0.5 needs
    # one tanh; the recurrent bias of z and r joins the input projection.
    half = xp.ones((3 * U,), dtype=dt)
    half[: 2 * U] = 0.5
    k_t = xp.ascontiguousarray((kernel * half).T)  # (3U, D)
    b_in = b_rec_h = None
    if bias is not None:
        if reset_after:
            b_in = bias[0] * half
            b_in[: 2 * U] += bias[1, : 2 * U] * 0.5
            b_rec_h = bias[1, 2 * U :, None]
        else:
            b_in = bias * half
        b_in = b_in[:, None]
    xt = xp.empty((T, B, D), dtype=dt)  # time-major inputs, kept for the kernel gradient
    G = xp.empty((T, 3 * U, B), dtype=dt)  # pre-activations, then z, r, h~

    H = xp.empty((T + 1, U, B), dtype=dt)
    H[0] = h0.T
    S = xp.empty((T, U, B), dtype=dt)  # reset_after: Rh h + b; else r * h_prev
    drop = None if mask is None else ~mask.T[:, None, :]  # (T, 1, B): masked steps
    if reset_after:
        rk_t = xp.ascontiguousarray((rkernel * half).T)  # (3U, U)
        rec = xp.empty((3 * U, B), dtype=dt)
    else:
        rk_zr_t = xp.ascontiguousarray(rkernel[:, : 2 * U].T * 0.5)  # (2U, U)
        rk_h_t = xp.ascontiguousarray(rkernel[:, 2 * U :].T)  # (U, U)
        rec = xp.empty((2 * U, B), dtype=dt)
    tmp = xp.empty((U, B), dtype=dt)
    with TimePipeline(T, G.size + xt.size, small) as pipe:
        pipe.project_inputs(x, xt, G, k_t, b_in)
        for t in range(T):
            pipe.ready(t)
            zr = G[t, : 2 * U]
            hh = G[t, 2 * U :]
            xp.matmul(rk_t if reset_after else rk_zr_t, H[t], out=rec)
            zr += rec[: 2 * U]
            xp.tanh(zr, out=zr)
            zr *= 0.5
            zr += 0.5
            if reset_after:
                if b_rec_h is None:
                    S[t] = rec[2 * U :]
                else:
                    xp.add(rec[2 * U :], b_rec_h, out=S[t])
                xp.multiply(zr[U:], S[t], out=tmp)
            else:
                xp.multiply(zr[U:], H[t], out=S[t])
                xp.matmul(rk_h_t, S[t], out=tmp)
            hh += tmp
            xp.tanh(hh, out=hh)
            ht = H[t + 1]
            xp.subtract(H[t], hh, out=ht)  # h = z h_prev + (1 - z) h~ = h~ + z (h_prev - h~)
            ht *= zr[:U]
            ht += hh
            if drop is not None:
                xp.copyto(ht, H[t], where=drop[t])

    def vjp(g, needs):
        gH = xp.ascontiguousarray(g.transpose(1, 2, 0))  # (T, U, B)
        Z, R, HH = G[:, :U], G[:, U : 2 * U], G[:, 2 * U :]
        dzr = 1 - G[:, : 2 * U]
        dzr *= G[:, : 2 * U]
        dhh = 1 - Z
        dhh *= 1 - HH * HH  # dh -> d(pre-activation of h~)
        hmp = H[:T] - HH
        dG = xp.empty((T, 3 * U, B), dtype=dt)
        dR = xp.empty((T, 3 * U, B), dtype=dt) if reset_after else None
        dh = xp.zeros((U, B), dtype=dt)
        if reset_after:
            rk = xp.ascontiguousarray(rkernel)  # (U, 3U): dh = rk @ dr
        else:
            rk_zr = xp.ascontiguousarray(rkernel[:, : 2 * U])
            rk_h = xp.ascontiguousarray(rkernel[:, 2 * U :])
        pipe = TimePipeline(T, 3 * dG.size, small)
        nb = len(pipe.blocks)
        dx = xp.empty((T, B, D), dtype=dt) if needs[0] else None
        dk = xp.empty((nb, D, 3 * U), dtype=dt) if needs[2] else None
        drk = xp.empty((nb, U, 3 * U), dtype=dt) if needs[3] else None
        want_b = bias is not None and needs[4]
        db = xp.empty((nb, *bias.shape), dtype=dt) if want_b else None

        def weight_grads(j, s, e):  # the GEMMs of steps s:e, while the loop goes on
            dg = step_rows(dG[s:e])
            if dx is not None:
                xp.matmul(dg, kernel.T, out=dx[s:e].reshape(-1, D))
            if dk is not None:
                xp.matmul(xt[s:e].reshape(-1, D).T, dg, out=dk[j])
            dr = step_rows(dR[s:e]) if reset_after and (drk is not None or db is not None) else None
            if drk is not None and reset_after:
                xp.matmul(step_rows(H[s:e]).T, dr, out=drk[j])
            elif drk is not None:
                xp.matmul(step_rows(H[s:e]).T, dg[:, : 2 * U], out=drk[j, :, : 2 * U])
                xp.matmul(step_rows(S[s:e]).T, dg[:, 2 * U :], out=drk[j, :, 2 * U :])
            if db is not None and reset_after:
                db[j, 0] = column_sums(dg)
                db[j, 1] = column_sums(dr)
            elif db is not None:
                db[j] = column_sums(dg)

        with pipe:
            for t in range(T - 1, -1, -1):
                dh += gH[t]
                dg = dG[t]
                da = dg[2 * U :]
                xp.multiply(dh, dhh[t], out=da)
                xp.multiply(dh, hmp[t], out=dg[:U])
                if reset_after:
                    xp.multiply(da, S[t], out=dg[U : 2 * U])
                    dg[: 2 * U] *= dzr[t]
                    if drop is not None:
                        dg *= ~drop[t]
                    dr = dR[t]
                    dr[: 2 * U] = dg[: 2 * U]
                    xp.multiply(dg[2 * U :], R[t], out=dr[2 * U :])
                    dh_new = rk @ dr
                else:
                    d_s = rk_h @ da
                    xp.multiply(d_s, H[t], out=dg[U : 2 * U])
                    dg[: 2 * U] *= dzr[t]
                    if drop is not None:
                        dg *= ~drop[t]
                        d_s *= ~drop[t]
                    dh_new = rk_zr @ dg[: 2 * U]
                    d_s *= R[t]
                    dh_new += d_s
                dh_new += dh * Z[t]
                if drop is not None:
                    xp.copyto(dh_new, dh, where=drop[t])
                dh = dh_new
                pipe.stepped_back(t, weight_grads)
            pipe.finish()
        return (
            dx.transpose(1, 0, 2) if dx is not None else None,
            xp.ascontiguousarray(dh.T) if needs[1] else None,
            sum_blocks(dk),
            sum_blocks(drk),
            sum_blocks(db),
            None,
        )

    out = xp.empty((B, T, U), dtype=dt)
    out[...] = H[1:].transpose(2, 0, 1)
    return out, vjp
