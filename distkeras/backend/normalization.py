"""Fused batch normalization (training mode) with a hand-written VJP.

One primitive computes the batch statistics, normalizes, scales and shifts in
one pass, and its VJP needs only two per-channel reductions of the upstream
gradient. With a communicator of more than one rank (synchronized batch
normalization) the statistics come from the count, sum and sum of squares
all-reduced across ranks, and the VJP all-reduces its two reductions, so each
rank gets exactly its slice of the one-process gradient of the global batch.

Derivation (per channel, `w` the 0/1 sample weights, `D = sum(w)` over the
global batch, `xhat = (x - mean) * r`, `r = 1 / sqrt(var + eps)`,
`y = gamma * xhat + beta`, `g = dL/dy` where `L` is the global loss):

    dL/dx_i = gamma * r * (g_i - w_i / D * (sum_j g_j + xhat_i * sum_j g_j xhat_j))

with the sums over every sample of every rank. The trainer divides the loss
by the global batch size, so the local `g` already is the global `dL/dy` of
this rank's samples; the two sums are all-reduced. The gradients of `gamma`
and `beta` are the LOCAL `sum_j g_j xhat_j` and `sum_j g_j`: the trainer sums
parameter gradients across ranks, which completes them.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module, epsilon
from distkeras.backend.autodiff import Tensor, apply


def _reduction_axes(ndim: int, axis: int) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i != axis)


def _channel_shape(ndim: int, axis: int, channels: int) -> tuple[int, ...]:
    return tuple(channels if i == axis else 1 for i in range(ndim))


def _count(x, weights, c: int) -> float:
    """Samples per channel entering the statistics (the mask may broadcast)."""
    if weights is None:
        return float(x.size // c) if c else 0.0
    return float(weights.sum()) * x.size / (weights.size * c) if c else 0.0


def _channel_sum(a: Any, axis: int, c: int) -> Any:
    """Per-channel sum over every axis but `axis` (einsum: much faster than a strided
    reduction when the channel axis is last)."""
    if axis == a.ndim - 1 and a.flags.c_contiguous:
        return current_module().einsum("ij->j", a.reshape(-1, c))
    return a.sum(axis=_reduction_axes(a.ndim, axis)).reshape(c)


def _sum_of_products(a: Any, b: Any, axis: int, c: int) -> Any:
    """Per-channel sum of a * b over every axis but `axis`, without a full-size temporary
    when the channel axis is last."""
    if axis == a.ndim - 1 and a.flags.c_contiguous and b.flags.c_contiguous:
        return current_module().einsum("ij,ij->j", a.reshape(-1, c), b.reshape(-1, c))
    return (a * b).sum(axis=_reduction_axes(a.ndim, axis)).reshape(c)


def _allreduce(comm: Any, arr: Any) -> Any:
    """Sums a small contiguous array across ranks (never compressed)."""
    xp = current_module()
    arr = xp.ascontiguousarray(arr)
    return comm.allreduce(arr, op="sum", compression=None)


def _batch_norm_train(
    x, gamma, beta, *, axis: int, eps: float, weights=None, comm=None, stats=None
):
    """Primitive: `(output, vjp)` of training-mode batch normalization.

    Args:
        x: Input array.
        gamma, beta: Per-channel scale and offset arrays, or None.
        axis: The (non-negative) channel axis.
        eps: Added to the variance.
        weights: Optional 0/1 array broadcastable to `x` with size 1 on the
            channel axis (the mask); masked samples do not enter the statistics.
        comm: Communicator for synchronized statistics (None: this process only).
        stats: A dict that receives the batch `mean` and `variance` (per channel).
    """
    xp = current_module()
    ndim = x.ndim
    c = x.shape[axis]
    axes = _reduction_axes(ndim, axis)
    bshape = _channel_shape(ndim, axis, c)
    dtype = x.dtype
    sync = comm is not None and comm.size > 1
    masked = weights is not None
    if masked:
        weights = weights.astype(dtype, copy=False)
    if sync:
        # Sums in float64 across ranks: count, sum, sum of squares.
        xw = x * weights if masked else x
        count = _count(x, weights, c)
        vec = xp.empty(2 * c + 1, dtype="float64")
        vec[0] = count
        vec[1 : c + 1] = xw.sum(axis=axes, dtype="float64").reshape(c)
        vec[c + 1 :] = (xw * x).sum(axis=axes, dtype="float64").reshape(c)
        vec = _allreduce(comm, vec)
        denom = vec[0] + (epsilon() if masked else 0.0)
        denom_eff = denom if denom > 0 else 1.0
        mean64 = vec[1 : c + 1] / denom_eff
        var64 = xp.maximum(vec[c + 1 :] / denom_eff - mean64 * mean64, 0.0)
        mean = mean64.astype(dtype).reshape(bshape)
        var = var64.astype(dtype).reshape(bshape)
        xc = x - mean
    else:
        if masked:
            denom = _count(x, weights, c) + epsilon()
            mean = (x * weights).sum(axis=axes, keepdims=True) / denom
            xc = x - mean
            var = (weights * xc * xc).sum(axis=axes, keepdims=True) / denom
        else:
            denom = _count(x, None, c)
            mean = _channel_sum(x, axis, c).reshape(bshape) / max(denom, 1.0)
            xc = x - mean
            var = _sum_of_products(xc, xc, axis, c).reshape(bshape) / max(denom, 1.0)
        mean = mean.astype(dtype, copy=False)
        var = var.astype(dtype, copy=False)
    r = (1.0 / xp.sqrt(var + eps)).astype(dtype, copy=False)
    xhat = xc
    xhat *= r
    if gamma is not None:
        out = xhat * gamma.reshape(bshape)
    else:
        out = xhat.copy()
    if beta is not None:
        out += beta.reshape(bshape)
    if stats is not None:
        stats["mean"] = mean.reshape(c)
        stats["variance"] = var.reshape(c)

    def vjp(g, needs):
        need_x = needs[0]
        sum_g = _channel_sum(g, axis, c) if (need_x or needs[2]) else None
        sum_gx = _sum_of_products(g, xhat, axis, c) if (need_x or needs[1]) else None
        gx = None
        if need_x:
            if sync:
                both = _allreduce(comm, xp.concatenate([sum_g, sum_gx]))
                tot_g, tot_gx = both[:c], both[c:]
            else:
                tot_g, tot_gx = sum_g, sum_gx
            d = denom if denom > 0 else 1.0
            k = r if gamma is None else r * gamma.reshape(bshape)
            inner = xhat * (tot_gx.reshape(bshape) / d)
            inner += tot_g.reshape(bshape) / d
            if masked:
                inner *= weights
            inner -= g
            inner *= -k  # (g - inner) * k, in place
            gx = inner.astype(g.dtype, copy=False)
        ggamma = sum_gx.astype(gamma.dtype, copy=False) if needs[1] else None
        gbeta = sum_g.astype(beta.dtype, copy=False) if needs[2] else None
        return gx, ggamma, gbeta

    return out, vjp


def batch_norm_train(
    x: Any,
    gamma: Any,
    beta: Any,
    axis: int = -1,
    epsilon: float = 1e-3,
    mask: Any = None,
    communicator: Any = None,
) -> tuple[Tensor, Any, Any]:
    """Training-mode batch normalization over every axis but `axis`.

    Args:
        x: Input tensor.
        gamma: Per-channel scale (tensor or None).
        beta: Per-channel offset (tensor or None).
        axis: The channel axis.
        epsilon: Added to the variance.
        mask: Optional boolean array of shape `x.shape` without the channel axis
            (only with `axis=-1`), or broadcastable with size 1 on that axis.
        communicator: A communicator: with more than one rank, the statistics
            and the gradient reductions are all-reduced across ranks.

    Returns:
        `(output, batch_mean, batch_variance)`; the statistics are raw arrays of
        shape `(channels,)` (the biased variance, as Keras uses).
    """
    xd = x.data if isinstance(x, Tensor) else x
    ndim = xd.ndim
    ax = axis % ndim
    weights = None
    if mask is not None:
        m = mask.data if isinstance(mask, Tensor) else current_module().asarray(mask)
        if m.ndim == ndim - 1:
            m = current_module().expand_dims(m, ax)
        weights = m
    stats: dict = {}
    out = apply(
        _batch_norm_train,
        x,
        gamma,
        beta,
        axis=ax,
        eps=float(epsilon),
        weights=weights,
        comm=communicator,
        stats=stats,
    )
    return out, stats["mean"], stats["variance"]
