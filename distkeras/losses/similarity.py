"""Similarity and noise-robust losses: Circle (metric learning) and the generalized crossentropy."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module, floatx, to_numpy
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.losses.loss import _SBS, _broadcastable, _BuiltinLoss


def _int_labels(labels: Any) -> np.ndarray:
    data = labels.data if isinstance(labels, Tensor) else labels
    return np.asarray(to_numpy(data)).astype("int64")


def _float_tensor(x: Any) -> Tensor:
    x = convert_to_tensor(x)
    return x if x.data.dtype.kind == "f" else ops.cast(x, floatx())


def circle(
    y_true: Any,
    y_pred: Any,
    ref_labels: Any = None,
    ref_embeddings: Any = None,
    remove_diagonal: bool = True,
    gamma: float = 80,
    margin: float = 0.4,
) -> Tensor:
    """Circle loss of L2-normalized embeddings against every reference embedding.

    With cosine distances d = max(1 - y_pred @ ref^T, 0), positive pairs
    (same label, the pair of an embedding with itself left out when
    `remove_diagonal`) and negative pairs (other labels):
    softplus(logsumexp(-gamma * max(margin + d, 0) * (margin - d)) over positives
    + logsumexp(gamma * max(1 + margin - d, 0) * (1 - margin - d)) over negatives).
    Samples whose loss is 0 (no positive pair) are masked out of the mean.

    Args:
        y_true: Integer labels, shape (batch,) or (batch, 1).
        y_pred: L2-normalized embeddings, shape (batch, dim).
        ref_labels: Labels of the reference embeddings (default `y_true`).
        ref_embeddings: Reference embeddings (default `y_pred`).
        remove_diagonal: Whether an embedding is not its own positive.
        gamma: Scale of the loss.
        margin: Relaxation margin.
    """
    y_pred = _float_tensor(y_pred)
    refs = y_pred if ref_embeddings is None else _float_tensor(ref_embeddings)
    labels = _int_labels(y_true).reshape(-1, 1)
    keys = labels if ref_labels is None else _int_labels(ref_labels).reshape(-1, 1)
    for what, lab, emb in (("y_true", labels, y_pred), ("ref_labels", keys, refs)):
        if emb.ndim != 2 or lab.size != emb.shape[0]:
            t, e = tuple(np.shape(y_true if what == "y_true" else ref_labels)), emb.shape
            name = "y_pred" if what == "y_true" else "ref_embeddings"
            raise ValueError(
                f"Loss `circle` needs one integer label per embedding of shape (batch, dim): "
                f"{what} shape {t} does not fit {name} shape {e}. "
                f"Received: {what}.shape={t}, {name}.shape={e}"
            )
    positive = labels == keys.T
    negative = ~positive
    if remove_diagonal:
        positive &= ~np.eye(labels.size, keys.size, dtype=bool)
    xp = current_module()
    positive, negative = xp.asarray(positive), xp.asarray(negative)
    dtype = y_pred.data.dtype
    dist = ops.maximum(ops.subtract(1.0, ops.matmul(y_pred, ops.transpose(refs))), 0.0)
    pos_weight = ops.maximum(ops.multiply(ops.add(dist, margin), positive.astype(dtype)), 0.0)
    neg_weight = ops.maximum(
        ops.multiply(ops.subtract(1.0 + margin, dist), negative.astype(dtype)), 0.0
    )
    pos_dist = ops.multiply(ops.multiply(pos_weight, ops.subtract(margin, dist)), -float(gamma))
    neg_dist = ops.multiply(
        ops.multiply(neg_weight, ops.subtract(1.0 - margin, dist)), float(gamma)
    )
    # Keras fills the left-out pairs with -inf; the lowest finite value gives the same sums
    # (exp underflows to 0) and keeps a row without pairs finite instead of NaN.
    low = float(np.finfo(dtype).min)
    p_loss = ops.logsumexp(ops.where(positive, pos_dist, low), axis=1)
    n_loss = ops.logsumexp(ops.where(negative, neg_dist, low), axis=1)
    loss = ops.softplus(ops.add(p_loss, n_loss))
    loss._keras_mask = loss.data > 0
    return loss


def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Tensor:
    """(1 - p^q) / q, with p the predicted probability of the integer label.

    Args:
        y_true: Integer labels, shape (batch,).
        y_pred: Class probabilities, shape (batch, num_classes).
        q: In (0, 1): q -> 0 approaches crossentropy, q = 1 the mean absolute error.
    """
    y_pred = _float_tensor(y_pred)
    xp = current_module()
    labels, k = xp.asarray(_int_labels(y_true)), y_pred.shape[-1]
    if not _broadcastable((*labels.shape, k), y_pred.shape):
        t = tuple(labels.shape)
        raise ValueError(
            "Loss `categorical_generalized_cross_entropy` needs integer labels shaped like "
            f"the predictions without their class axis: y_true shape {t} does not fit y_pred "
            f"shape {y_pred.shape}. Received: y_true.shape={t}, y_pred.shape={y_pred.shape}"
        )
    valid = (labels >= 0) & (labels < k)  # as Keras's one_hot: no class for other labels
    one_hot = xp.eye(k, dtype=y_pred.data.dtype)[xp.where(valid, labels, 0)] * valid[..., None]
    p = ops.sum(ops.multiply(y_pred, one_hot), axis=-1)
    return ops.divide(ops.subtract(1.0, ops.power(p, float(q))), float(q))


class Circle(_BuiltinLoss):
    """Circle loss of L2-normalized embeddings (see `circle`)."""

    def __init__(
        self, gamma=80.0, margin=0.4, remove_diagonal=True, reduction=_SBS, name="circle",
        dtype=None,
    ):  # fmt: skip
        self._setup(circle, locals())


class CategoricalGeneralizedCrossEntropy(_BuiltinLoss):
    """Generalized crossentropy, robust to noisy labels.

    Args:
        q: In (0, 1), see `categorical_generalized_cross_entropy`.
        reduction: See `Loss`.
        name: Name of the loss.
        dtype: See `Loss`.
    """

    def __init__(
        self, q=0.5, reduction=_SBS, name="categorical_generalized_cross_entropy", dtype=None
    ):
        self._setup(categorical_generalized_cross_entropy, locals())
