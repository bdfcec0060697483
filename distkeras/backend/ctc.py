"""CTC (connectionist temporal classification): the loss primitive and the decoders.

The loss is one fused primitive: the forward (alpha) recursion gives the
log-likelihood of the labels summed over every alignment, the backward (beta)
recursion the occupancy of each (step, class), and the gradient with respect
to the logits is softmax - occupancy. Both recursions run over the
blank-interleaved labels, vectorized over the batch, one step at a time; a
sample's steps past its logit length carry its state unchanged.

`ops.ctc_loss` / `ops.ctc_decode` and the `ctc` loss are built on these.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from distkeras.backend import current_module


def _logaddexp(xp: Any, *terms: Any) -> Any:
    out = terms[0]
    for t in terms[1:]:
        out = xp.logaddexp(out, t)
    return out


def _shift(xp: Any, a: Any, k: int, fill: float) -> Any:
    """a shifted right by k along the last axis (k < 0: left), `fill` coming in."""
    out = xp.full_like(a, fill)
    if k > 0:
        out[..., k:] = a[..., :-k]
    else:
        out[..., :k] = a[..., -k:]
    return out


def ctc_nll(logits: Any, labels: Any, label_length: Any, logit_length: Any, blank: int = 0):
    """Primitive: per-sample CTC negative log-likelihood of (batch, T, K) logits.

    `labels` (batch, N) int64, `label_length` and `logit_length` (batch,) int64
    arrays. Labels that no alignment fits into the steps give inf (gradient 0).
    """
    xp = current_module()
    b, t_max, k = logits.shape
    n = labels.shape[1]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    logp = shifted - log_z
    valid = xp.arange(2 * n + 1)[None, :] < (2 * label_length + 1)[:, None]
    ext = xp.full((b, 2 * n + 1), blank, dtype=labels.dtype)  # blank, l1, blank, l2, ...
    ext[:, 1::2] = labels
    ext = xp.where(valid, ext, blank)
    skip = xp.zeros(ext.shape, dtype=bool)  # a label may follow the previous label directly
    skip[:, 3::2] = labels[:, 1:] != labels[:, :-1]
    emit = xp.take_along_axis(logp, xp.broadcast_to(ext[:, None, :], (b, t_max, ext.shape[1])), 2)
    live = xp.arange(t_max)[:, None] < logit_length[None, :]  # (T, batch)
    neg = -xp.inf
    alpha = xp.full((t_max, *ext.shape), neg, dtype=logits.dtype)
    if t_max:
        alpha[0, :, 0] = emit[:, 0, 0]
        alpha[0, :, 1] = xp.where(label_length > 0, emit[:, 0, 1], neg) if n else neg
        # No step at all: the empty label has probability 1 (state 0 at log 0).
        alpha[0, :, 0] = xp.where(live[0], alpha[0, :, 0], 0.0)
        alpha[0, :, 1:] = xp.where(live[0][:, None], alpha[0, :, 1:], neg)
    for t in range(1, t_max):
        a = alpha[t - 1]
        two = xp.where(skip, _shift(xp, a, 2, neg), neg)
        step = xp.where(valid, _logaddexp(xp, a, _shift(xp, a, 1, neg), two) + emit[:, t], neg)
        alpha[t] = xp.where(live[t][:, None], step, a)
    rows = xp.arange(b)
    end = 2 * label_length
    if t_max:
        last = alpha[-1, rows, end]
        if n:
            before = alpha[-1, rows, xp.maximum(end - 1, 0)]
            last = xp.logaddexp(last, xp.where(end > 0, before, neg))
    else:
        last = xp.where(label_length > 0, neg, 0.0).astype(logits.dtype)
    out = -last

    def vjp(g: Any, needs: Any) -> tuple:
        if not t_max:
            return (xp.zeros_like(logp), None, None, None)
        beta = xp.full_like(alpha, neg)
        init = xp.full(ext.shape, neg, dtype=alpha.dtype)
        skip_next = _shift(xp, skip, -2, False)  # may the step from s go to s + 2
        final = logit_length - 1
        prev = xp.maximum(end - 1, 0)
        for t in range(t_max - 1, -1, -1):
            init[:] = neg
            init[rows, end] = emit[rows, t, end]
            if n:
                init[rows, prev] = xp.where(end > 0, emit[rows, t, prev], init[rows, prev])
            if t < t_max - 1:
                nb = beta[t + 1]
                two = xp.where(skip_next, _shift(xp, nb, -2, neg), neg)
                total = _logaddexp(xp, nb, _shift(xp, nb, -1, neg), two) + emit[:, t]
                rec = xp.where(valid, total, neg)
            else:
                rec = init
            beta[t] = xp.where(
                (t == final)[:, None], init, xp.where((t < final)[:, None], rec, neg)
            )
        # Posterior of being in state s at step t (emission counted once).
        with np.errstate(invalid="ignore"):
            occupancy = xp.exp(alpha + beta - emit.transpose(1, 0, 2) + out[None, :, None])
        occupancy = xp.nan_to_num(occupancy.transpose(1, 0, 2))  # (batch, T, S)
        one_hot = xp.eye(k, dtype=logp.dtype)[ext]  # (batch, S, K)
        per_class = xp.matmul(occupancy, one_hot)
        # No alignment reaches the labels (too few steps): the loss is inf, its gradient 0.
        keep = xp.isfinite(out)[:, None, None] & live.T[:, :, None]
        grad = xp.where(keep, g[:, None, None] * (xp.exp(logp) - per_class), 0.0)
        return (grad.astype(logp.dtype, copy=False), None, None, None)

    return out, vjp


def greedy_decode(logits: Any, lengths: Any, merge_repeated: bool, blank: int) -> tuple[Any, Any]:
    """Best path per sample: (1, batch, T) int32 labels (-1 after the end), (batch, 1) scores."""
    xp = current_module()
    _, t_max, _ = logits.shape
    best = logits.argmax(axis=-1).astype("int32")
    score = logits.max(axis=-1)
    past = xp.arange(t_max)[None, :] >= lengths[:, None]
    best = xp.where(past, blank, best)
    score = xp.where(past, 0, score)
    drop = best == blank
    if merge_repeated and t_max > 1:
        drop[:, 1:] |= best[:, 1:] == best[:, :-1]
    # Kept labels first, in order: a stable sort on the drop flag.
    order = xp.argsort(drop, axis=-1, kind="stable")
    out = xp.take_along_axis(xp.where(drop, -1, best), order, axis=-1)
    return out[None].astype("int32"), -score.sum(axis=1, keepdims=True)


def _prefix_beam(logp: np.ndarray, length: int, beam_width: int, blank: int) -> dict:
    """Prefix beam search over (T, K) log-probabilities: {prefix: (log p_blank, log p_label)}."""
    neg = -math.inf
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, neg)}
    for t in range(min(length, logp.shape[0])):
        row = logp[t]
        nxt: dict[tuple, list[float]] = {}
        for prefix, (p_b, p_nb) in beams.items():
            total = np.logaddexp(p_b, p_nb)
            entry = nxt.setdefault(prefix, [neg, neg])
            entry[0] = np.logaddexp(entry[0], total + row[blank])
            for c in range(row.shape[0]):
                if c == blank:
                    continue
                if prefix and prefix[-1] == c:
                    entry[1] = np.logaddexp(entry[1], p_nb + row[c])  # a repeat merges
                    grown = nxt.setdefault((*prefix, c), [neg, neg])
                    grown[1] = np.logaddexp(grown[1], p_b + row[c])  # a blank between
                else:
                    grown = nxt.setdefault((*prefix, c), [neg, neg])
                    grown[1] = np.logaddexp(grown[1], total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))
        beams = {p: (v[0], v[1]) for p, v in ranked[:beam_width]}
    return beams


def beam_search_decode(
    logits: Any, lengths: Any, beam_width: int, top_paths: int, blank: int
) -> tuple[Any, Any]:
    """The `top_paths` most likely label sequences per sample (prefix beam search, on the host).

    Returns (top_paths, batch, T) int32 labels padded with -1 and (batch, top_paths)
    log-probabilities (-inf where fewer paths exist).
    """
    xp = current_module()
    host = np.asarray(logits.get() if hasattr(logits, "get") else logits, dtype="float64")
    lens = np.asarray(lengths.get() if hasattr(lengths, "get") else lengths)
    b, t_max, _ = host.shape
    shifted = host - host.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    paths = np.full((top_paths, b, t_max), -1, dtype="int32")
    scores = np.full((b, top_paths), -np.inf)
    for i in range(b):
        beams = _prefix_beam(logp[i], int(lens[i]), beam_width, blank)
        ranked = sorted(beams.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:top_paths]
        for j, (prefix, (p_b, p_nb)) in enumerate(ranked):
            paths[j, i, : len(prefix)] = prefix
            scores[i, j] = np.logaddexp(p_b, p_nb)
    return xp.asarray(paths), xp.asarray(scores.astype(logits.dtype))
