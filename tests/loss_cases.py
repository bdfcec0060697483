"""Label/output/sample-weight cases of the loss parity test, and Keras's formulas in NumPy.

NumPy only (no distkeras import), so that the script that recorded Keras's
values (tests/test_loss_parity.py says how) built exactly the same inputs.
Inputs come from a Weyl sequence, not a random generator, so they do not
depend on the NumPy version.
"""

from __future__ import annotations

import numpy as np

N, K, T = 6, 3, 4  # batch, classes, time steps: all different, so a wrong broadcast shows
EPS = 1e-7  # keras.backend.epsilon()

# Label shape | output shape, per kind of loss (every combination Keras 3 accepts for it).
SHAPES = {
    "elementwise": {
        "(n,)|(n,1)": ((N,), (N, 1)),
        "(n,1)|(n,1)": ((N, 1), (N, 1)),
        "(n,)|(n,)": ((N,), (N,)),
        "(n,k)|(n,k)": ((N, K), (N, K)),
        "(n,t)|(n,t,1)": ((N, T), (N, T, 1)),
        "(n,t,k)|(n,t,k)": ((N, T, K), (N, T, K)),
    },
    "categorical": {
        "(n,k)|(n,k)": ((N, K), (N, K)),
        "(n,t,k)|(n,t,k)": ((N, T, K), (N, T, K)),
    },
    "sparse": {
        "(n,)|(n,k)": ((N,), (N, K)),
        "(n,1)|(n,k)": ((N, 1), (N, K)),
        "(n,t)|(n,t,k)": ((N, T), (N, T, K)),
        "(n,t,1)|(n,t,k)": ((N, T, 1), (N, T, K)),
    },
    "generalized": {  # integer labels, as sparse (a class axis of 1 would broadcast)
        "(n,)|(n,k)": ((N,), (N, K)),
        "(n,t)|(n,t,k)": ((N, T), (N, T, K)),
    },
    "ctc": {"(n,l)|(n,2l,k)": ((N, 3), (N, 6, K))},  # labels padded with 0 (the blank)
    "similarity": {  # integer labels against L2-normalized embeddings
        "(n,)|(n,k)": ((N,), (N, K)),
        "(n,1)|(n,k)": ((N, 1), (N, K)),
    },
}
# Sample weights: one per sample for outputs of rank <= 2; for sequence outputs one per
# sample as (n, 1), or one per time step. (Keras 3 rejects (n,) against (n, t) losses.)
SAMPLE_WEIGHTS = {
    "flat": {"none": None, "(n,)": (N,), "(n,1)": (N, 1)},
    "sequence": {"none": None, "(n,1)": (N, 1), "(n,t)": (N, T), "(n,t,1)": (N, T, 1)},
}

# Loss name -> kind of labels it takes.
LOSS_KINDS = {
    "binary_crossentropy": "elementwise",
    "binary_focal_crossentropy": "elementwise",
    "categorical_crossentropy": "categorical",
    "categorical_focal_crossentropy": "categorical",
    "sparse_categorical_crossentropy": "sparse",
    "kl_divergence": "elementwise",
    "poisson": "elementwise",
    "mean_squared_error": "elementwise",
    "mean_absolute_error": "elementwise",
    "mean_absolute_percentage_error": "elementwise",
    "mean_squared_logarithmic_error": "elementwise",
    "cosine_similarity": "elementwise",
    "huber": "elementwise",
    "log_cosh": "elementwise",
    "hinge": "elementwise",
    "squared_hinge": "elementwise",
    "categorical_hinge": "elementwise",
    "dice": "elementwise",
    "tversky": "elementwise",
    "circle": "similarity",
    "categorical_generalized_cross_entropy": "generalized",
    "ctc": "ctc",
}
# Loss name -> Keras class name.
CLASS_NAMES = {
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "kl_divergence": "KLDivergence",
    "poisson": "Poisson",
    "mean_squared_error": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "cosine_similarity": "CosineSimilarity",
    "huber": "Huber",
    "log_cosh": "LogCosh",
    "hinge": "Hinge",
    "squared_hinge": "SquaredHinge",
    "categorical_hinge": "CategoricalHinge",
    "dice": "Dice",
    "tversky": "Tversky",
    "circle": "Circle",
    "categorical_generalized_cross_entropy": "CategoricalGeneralizedCrossEntropy",
    "ctc": "CTC",
}


def _weyl(shape: tuple, seed: int) -> np.ndarray:
    size = int(np.prod(shape)) if shape else 1
    v = ((np.arange(size) + 1) * 0.7548776662466927 + seed * 0.5698402909980532) % 1.0
    return v.reshape(shape)


def make_case(loss: str, case: str, weight: str) -> tuple:
    """(y_true, y_pred, sample_weight) float32 arrays (int64 sparse labels) of one case."""
    kind = LOSS_KINDS[loss]
    y_shape, p_shape = SHAPES[kind][case]
    y_pred = (0.05 + 0.9 * _weyl(p_shape, 1)).astype("float32")
    classes = (np.arange(int(np.prod(y_shape))) * 2 + 1) % K
    if kind == "similarity":  # every class twice, so each sample has a positive pair
        y_pred = (_weyl(p_shape, 1) - 0.5).astype("float32")
        y_pred /= np.linalg.norm(y_pred, axis=-1, keepdims=True)
    if kind == "ctc":  # logits; labels 1 or 2, the last one dropped (0) every other row
        y_pred = (6 * _weyl(p_shape, 1) - 3).astype("float32")
        y_true = 1 + (_weyl(y_shape, 2) > 0.5).astype("int64")
        y_true[::2, -1] = 0
    elif kind in ("sparse", "generalized", "similarity"):
        y_true = classes.reshape(y_shape).astype("int64")
    elif kind == "categorical":
        y_true = np.eye(K, dtype="float32")[classes[:: y_shape[-1]]].reshape(y_shape)
    else:
        y_true = (_weyl(y_shape, 2) > 0.5).astype("float32")
    sw_shape = case_weights(loss, case)[weight]
    sw = None if sw_shape is None else (0.25 + _weyl(sw_shape, 3)).astype("float32")
    return y_true, y_pred, sw


def weight_group(y_shape: tuple, p_shape: tuple) -> str:
    """'sequence' when the per-sample losses are (n, t), else 'flat'.

    Labels (n, t) against an output (n, t, 1) give losses of shape (n,): the
    output is squeezed to (n, t) and the loss averages over its last axis.
    """
    _, p = rank_match(np.empty(y_shape), np.empty(p_shape))
    return "sequence" if p.ndim == 3 else "flat"


def case_weights(loss: str, case: str) -> dict:
    """The sample-weight cases of one loss and label|output case (name -> shape)."""
    kind = LOSS_KINDS[loss]
    if kind == "ctc":  # one loss per sequence
        return SAMPLE_WEIGHTS["flat"]
    return SAMPLE_WEIGHTS[weight_group(*SHAPES[kind][case])]


def all_cases() -> list[tuple[str, str, str]]:
    """Every (loss, label|output case, sample-weight case) of the parity test."""
    out = []
    for loss, kind in LOSS_KINDS.items():
        for case in SHAPES[kind]:
            for weight in case_weights(loss, case):
                out.append((loss, case, weight))
    return out


# ------------------------------------------------------- Keras's documented formulas
def rank_match(a: np.ndarray, b: np.ndarray) -> tuple:
    """Keras's squeeze_or_expand_to_same_rank: fix a last axis of 1 when ranks differ by one."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def _normalized(p):
    return np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)


def _unit(x):
    return x / np.maximum(np.sqrt((x * x).sum(-1, keepdims=True)), 1e-12)


def _bce(y, p):
    pc = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(pc) + (1 - y) * np.log(1 - pc))


def _hinge_margin(y, p):
    y = 2 * y - 1 if np.all((y == 0) | (y == 1)) else y
    return np.maximum(1 - y * p, 0)


def _sparse_index(y, p):
    y = y[..., 0] if y.ndim == p.ndim else y  # labels with a class axis of 1
    return y.astype(int)[..., None]


def _huber(y, p, delta=1.0):
    e = np.abs(p - y)
    return np.where(e <= delta, 0.5 * e**2, delta * e - 0.5 * delta**2)


def _logsumexp(x, axis):
    m = x.max(axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a row of -inf sums to -inf, as in Keras
    with np.errstate(divide="ignore"):
        return (m + np.log(np.exp(x - m).sum(axis, keepdims=True))).squeeze(axis)


def _circle(y, p, gamma=80.0, margin=0.4):
    labels = y.reshape(-1, 1).astype(int)
    d = np.maximum(1 - p @ p.T, 0)
    pos = (labels == labels.T) & ~np.eye(len(labels), dtype=bool)
    neg = labels != labels.T
    pos_w, neg_w = np.maximum((margin + d) * pos, 0), np.maximum((1 + margin - d) * neg, 0)
    p_loss = _logsumexp(np.where(pos, -gamma * pos_w * (margin - d), -np.inf), 1)
    n_loss = _logsumexp(np.where(neg, gamma * neg_w * (1 - margin - d), -np.inf), 1)
    return np.logaddexp(0, p_loss + n_loss)  # softplus; 0 only without a positive pair


def _ctc(y, p):
    """-log of the summed probability of every path that collapses to the labels (brute force)."""
    logp = p - np.log(np.exp(p).sum(-1, keepdims=True))
    steps, classes = logp.shape[1:]
    paths = np.array(np.meshgrid(*[range(classes)] * steps, indexing="ij")).reshape(steps, -1).T
    out = []
    for labels, lp in zip(y.astype(int), logp):
        target = [c for c in labels if c != 0]
        hits = []
        for path in paths:
            merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
            if [c for c in merged if c != 0] == target:
                hits.append(lp[np.arange(steps), path].sum())
        out.append(-np.logaddexp.reduce(hits))
    return np.array(out)


def _tversky(y, p, alpha=0.5, beta=0.5):
    tp, fp, fn = (y * p).sum(), ((1 - p) * y).sum(), (p * (1 - y)).sum()
    return 1 - tp / (tp + alpha * fp + beta * fn + EPS)


# Per-sample losses of the Keras docs, of rank-matched float64 labels and predictions.
FORMULAS = {
    "binary_crossentropy": lambda y, p: _bce(y, p).mean(-1),
    "binary_focal_crossentropy": lambda y, p: (
        (1 - (y * p + (1 - y) * (1 - p))) ** 2 * _bce(y, p)
    ).mean(-1),
    "categorical_crossentropy": lambda y, p: -(y * np.log(_normalized(p))).sum(-1),
    "categorical_focal_crossentropy": lambda y, p: (
        0.25 * (1 - _normalized(p)) ** 2 * -y * np.log(_normalized(p))
    ).sum(-1),
    "sparse_categorical_crossentropy": lambda y, p: (
        -np.log(np.take_along_axis(_normalized(p), _sparse_index(y, p), -1)[..., 0])
    ),
    "kl_divergence": lambda y, p: (
        np.clip(y, EPS, 1) * np.log(np.clip(y, EPS, 1) / np.clip(p, EPS, 1))
    ).sum(-1),
    "poisson": lambda y, p: (p - y * np.log(p + EPS)).mean(-1),
    "mean_squared_error": lambda y, p: ((y - p) ** 2).mean(-1),
    "mean_absolute_error": lambda y, p: np.abs(y - p).mean(-1),
    "mean_absolute_percentage_error": lambda y, p: (
        100 * np.abs((y - p) / np.maximum(np.abs(y), EPS)).mean(-1)
    ),
    "mean_squared_logarithmic_error": lambda y, p: (
        (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(y, EPS) + 1)) ** 2
    ).mean(-1),
    "cosine_similarity": lambda y, p: -(_unit(y) * _unit(p)).sum(-1),
    "huber": lambda y, p: _huber(y, p).mean(-1),
    "log_cosh": lambda y, p: np.log(np.cosh(p - y)).mean(-1),
    "hinge": lambda y, p: _hinge_margin(y, p).mean(-1),
    "squared_hinge": lambda y, p: (_hinge_margin(y, p) ** 2).mean(-1),
    "categorical_hinge": lambda y, p: np.maximum(((1 - y) * p).max(-1) - (y * p).sum(-1) + 1, 0),
    "dice": lambda y, p: 1 - 2 * (y * p).sum() / (y.sum() + p.sum() + EPS),
    "tversky": _tversky,
    "circle": _circle,
    "ctc": _ctc,
    "categorical_generalized_cross_entropy": lambda y, p: (
        (1 - np.take_along_axis(p, y.astype(int)[..., None], -1)[..., 0] ** 0.5) / 0.5
    ),
}


def reference_value(loss: str, y_true, y_pred, sample_weight) -> float:
    """Keras 3's compiled loss in float64 NumPy: rank-match, per-sample formula, weigh, mean.

    The weights are rank-matched to the per-sample losses and multiplied in;
    'sum_over_batch_size' divides the sum by the number of weighted entries.
    """
    y, p = rank_match(np.asarray(y_true, "float64"), np.asarray(y_pred, "float64"))
    values = np.asarray(FORMULAS[loss](y, p), "float64")
    if sample_weight is not None:
        values, w = rank_match(values, np.asarray(sample_weight, "float64"))
        values = values * w
    return float(values.sum() / max(values.size, 1))
