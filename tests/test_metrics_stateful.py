"""Metrics whose result is not a mean of per-sample values (confusion counts, Precision,
Recall, AUC, F-scores, IoU, R2): results vs NumPy float64 references over several
weighted batches, exact merge-by-sum of the state, reset, config round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distkeras import metrics
from tests.module_harness import assert_metric_state_sums

N = 24
EPS = 1e-7


# ---------------------------------------------------------------- NumPy references
def _w(w, shape):
    if w is None:
        return np.ones(shape)
    w = np.asarray(w, dtype=np.float64)
    return np.broadcast_to(w.reshape((-1,) + (1,) * (len(shape) - 1)), shape)


def _counts(t, p, w, thresholds, multi_label=False, label_weights=None):
    """Confusion counts at each threshold: `pred > threshold`, label != 0."""
    t = np.asarray(t, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    ww = _w(w, t.shape)
    if label_weights is not None and not multi_label:
        ww = ww * np.asarray(label_weights)
    th = np.asarray(thresholds, dtype=np.float64).reshape((-1,) + (1,) * t.ndim)
    pos, lab = p[None] > th, (t != 0)[None]
    axes = 1 if multi_label else tuple(range(1, t.ndim + 1))
    return {
        "tp": ((lab & pos) * ww).sum(axes),
        "fp": ((~lab & pos) * ww).sum(axes),
        "tn": ((~lab & ~pos) * ww).sum(axes),
        "fn": ((lab & ~pos) * ww).sum(axes),
    }


def _div(a, b):
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1, b))


def _one(x):
    return x[0] if len(x) == 1 else x


def ref_count(key, thresholds=(0.5,)):
    return lambda t, p, w: _one(_counts(t, p, w, thresholds)[key])


def _top_k_mask(p, k):
    order = np.argsort(-p, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(p.shape, bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return mask


def ref_precision_recall(kind, thresholds=None, top_k=None, class_id=None):
    def ref(t, p, w):
        t, p = np.asarray(t, float), np.asarray(p, float)
        ths = thresholds if thresholds is not None else ((0.5,) if top_k is None else (-1e10,))
        if top_k is not None:
            p = np.where(_top_k_mask(p, top_k), p, -1e10)
        if class_id is not None:
            t, p = t[:, class_id], p[:, class_id]
        c = _counts(t, p, w, ths)
        other = c["fp"] if kind == "precision" else c["fn"]
        return _one(_div(c["tp"], c["tp"] + other))

    return ref


def _auc_thresholds(n):
    return [-EPS] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + EPS]


def ref_auc(
    num_thresholds=200,
    curve="ROC",
    summation="interpolation",
    multi_label=False,
    label_weights=None,
    from_logits=False,
    thresholds=None,
):
    """Riemann sums over Keras's thresholds (PR interpolation: Davis & Goadrich 2006)."""

    def ref(t, p, w):
        p = np.asarray(p, float)
        if from_logits:
            p = 1 / (1 + np.exp(-p))
        if thresholds is not None:
            ths = [-EPS, *sorted(thresholds), 1 + EPS]
        else:
            ths = _auc_thresholds(num_thresholds)
        c = _counts(t, p, w, ths, multi_label, label_weights)
        tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
        if curve == "PR" and summation == "interpolation":
            dtp = tp[:-1] - tp[1:]
            pp = tp + fp
            dp = pp[:-1] - pp[1:]
            slope = _div(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - slope * pp[1:]
            ok = (pp[:-1] > 0) & (pp[1:] > 0)
            ratio = np.where(ok, _div(pp[:-1], np.maximum(pp[1:], 0)), 1.0)
            terms = _div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        else:
            recall = _div(tp, tp + fn)
            if curve == "ROC":
                x, y = _div(fp, fp + tn), recall
            else:
                x, y = recall, _div(tp, tp + fp)
            heights = {
                "interpolation": (y[:-1] + y[1:]) / 2,
                "minoring": np.minimum(y[:-1], y[1:]),
                "majoring": np.maximum(y[:-1], y[1:]),
            }[summation]
            terms = (x[:-1] - x[1:]) * heights
        if not multi_label:
            return terms.sum()
        by_label = terms.sum(0)
        if label_weights is None:
            return by_label.mean()
        return (by_label * label_weights).sum() / np.sum(label_weights)

    return ref


def ref_fbeta(beta=1.0, average=None, threshold=None):
    def ref(t, p, w):
        t, p = np.asarray(t, float), np.asarray(p, float)
        if threshold is None:
            pred = (p >= p.max(-1, keepdims=True)) & (np.abs(p) > 1e-9)
        else:
            pred = p > threshold
        pred = pred.astype(float)
        ww = _w(w, t.shape)
        axis = None if average == "micro" else 0
        tp = (pred * t * ww).sum(axis)
        fp = (pred * (1 - t) * ww).sum(axis)
        fn = ((1 - pred) * t * ww).sum(axis)
        support = (t * ww).sum(axis)
        prec, rec = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
        f = (1 + beta**2) * prec * rec / (beta**2 * prec + rec + EPS)
        if average == "weighted":
            return (f * support / (support.sum() + EPS)).sum()
        return f if average is None else f.mean()

    return ref


def ref_iou(num_classes, target=None, ignore_class=None, one_hot=False, binary_threshold=None):
    def ref(t, p, w):
        t, p = np.asarray(t), np.asarray(p)
        if one_hot:
            t, p = t.argmax(-1), p.argmax(-1)
        if binary_threshold is not None:
            p = (p >= binary_threshold).astype(int)
        ww = np.ones(t.shape) if w is None else np.asarray(w, float)
        keep = np.ones(t.shape, bool) if ignore_class is None else t != ignore_class
        cm = np.zeros((num_classes, num_classes))
        np.add.at(cm, (t[keep].astype(int), p[keep].astype(int)), ww[keep])
        diag = np.diag(cm)
        den = cm.sum(0) + cm.sum(1) - diag
        ids = list(range(num_classes)) if target is None else list(target)
        iou = diag[ids] / (den[ids] + EPS)
        return iou.sum() / ((den[ids] > 1e-9).sum() + EPS)

    return ref


def ref_r2(aggregation="uniform_average", num_regressors=0):
    def ref(t, p, w):
        t, p = np.asarray(t, float), np.asarray(p, float)
        ww = _w(w, t.shape)
        mean = (ww * t).sum(0) / ww.sum(0)
        ss_tot = (ww * (t - mean) ** 2).sum(0)
        raw = 1 - (ww * (t - p) ** 2).sum(0) / ss_tot
        if aggregation == "uniform_average":
            score = raw.mean()
        elif aggregation == "variance_weighted_average":
            score = (ss_tot * raw).sum() / ss_tot.sum()
        else:
            score = raw
        if num_regressors:
            n = t.size  # Keras counts every entry
            score = 1 - (1 - score) * (n - 1) / (n - num_regressors - 1)
        return score

    return ref


# ---------------------------------------------------------------- data
def _binary(r):
    return r.integers(0, 2, (N, 3)).astype("float32"), r.random((N, 3), dtype="float32")


def _multi_hot(r):
    return r.integers(0, 2, (N, 4)).astype("float32"), r.random((N, 4), dtype="float32")


def _one_hot(r):
    return np.eye(4, dtype="float32")[r.integers(0, 4, N)], r.random((N, 4), dtype="float32")


def _logits(r):
    return r.integers(0, 2, (N, 3)).astype("float32"), (3 * r.normal(size=(N, 3))).astype("float32")


def _classes(r):
    return r.integers(0, 4, N), r.integers(0, 4, N)


def _regression(r):
    t = r.normal(size=(N, 3))
    return t, t + 0.7 * r.normal(size=(N, 3))


M = metrics
# name: (factory, data(rng) -> (y_true, y_pred), reference(y_true, y_pred, w) -> result)
CASES = {
    "true_positives": (
        lambda: M.TruePositives(thresholds=[0.3, 0.5, 0.8]),
        _binary,
        ref_count("tp", (0.3, 0.5, 0.8)),
    ),
    "true_negatives": (
        lambda: M.TrueNegatives(thresholds=[0.2, 0.7]),
        _binary,
        ref_count("tn", (0.2, 0.7)),
    ),
    "false_positives": (M.FalsePositives, _binary, ref_count("fp")),
    "false_negatives": (M.FalseNegatives, _binary, ref_count("fn")),
    "precision": (M.Precision, _binary, ref_precision_recall("precision")),
    "precision_thresholds": (
        lambda: M.Precision(thresholds=[0.25, 0.5, 0.75]),
        _binary,
        ref_precision_recall("precision", thresholds=(0.25, 0.5, 0.75)),
    ),
    "precision_top_k": (
        lambda: M.Precision(top_k=2),
        _multi_hot,
        ref_precision_recall("precision", top_k=2),
    ),
    "precision_class_id": (
        lambda: M.Precision(class_id=1),
        _multi_hot,
        ref_precision_recall("precision", class_id=1),
    ),
    "precision_top_k_class_id": (
        lambda: M.Precision(top_k=2, class_id=0),
        _multi_hot,
        ref_precision_recall("precision", top_k=2, class_id=0),
    ),
    "recall": (M.Recall, _binary, ref_precision_recall("recall")),
    "recall_thresholds": (
        lambda: M.Recall(thresholds=[0.1, 0.9]),
        _binary,
        ref_precision_recall("recall", thresholds=(0.1, 0.9)),
    ),
    "recall_top_k": (lambda: M.Recall(top_k=1), _one_hot, ref_precision_recall("recall", top_k=1)),
    "recall_class_id": (
        lambda: M.Recall(class_id=2),
        _multi_hot,
        ref_precision_recall("recall", class_id=2),
    ),
    "auc": (M.AUC, _binary, ref_auc()),
    "auc_roc_minoring": (
        lambda: M.AUC(num_thresholds=20, summation_method="minoring"),
        _binary,
        ref_auc(20, summation="minoring"),
    ),
    "auc_roc_majoring": (
        lambda: M.AUC(num_thresholds=20, summation_method="majoring"),
        _binary,
        ref_auc(20, summation="majoring"),
    ),
    "auc_pr": (lambda: M.AUC(num_thresholds=50, curve="PR"), _binary, ref_auc(50, "PR")),
    "auc_pr_minoring": (
        lambda: M.AUC(num_thresholds=30, curve="pr", summation_method="minoring"),
        _binary,
        ref_auc(30, "PR", "minoring"),
    ),
    "auc_pr_majoring": (
        lambda: M.AUC(num_thresholds=30, curve="PR", summation_method="majoring"),
        _binary,
        ref_auc(30, "PR", "majoring"),
    ),
    "auc_multi_label": (
        lambda: M.AUC(num_thresholds=30, multi_label=True),
        _binary,
        ref_auc(30, multi_label=True),
    ),
    "auc_multi_label_weights": (
        lambda: M.AUC(num_thresholds=30, multi_label=True, num_labels=3, label_weights=[1, 2, 0.5]),
        _binary,
        ref_auc(30, multi_label=True, label_weights=np.array([1, 2, 0.5])),
    ),
    "auc_pr_multi_label": (
        lambda: M.AUC(num_thresholds=30, curve="PR", multi_label=True),
        _binary,
        ref_auc(30, "PR", multi_label=True),
    ),
    "auc_label_weights_pooled": (
        lambda: M.AUC(num_thresholds=30, label_weights=[0.5, 1.0, 2.0]),
        _binary,
        ref_auc(30, label_weights=np.array([0.5, 1.0, 2.0])),
    ),
    "auc_from_logits": (
        lambda: M.AUC(num_thresholds=40, from_logits=True),
        _logits,
        ref_auc(40, from_logits=True),
    ),
    "auc_thresholds": (
        lambda: M.AUC(thresholds=[0.9, 0.1, 0.4, 0.6]),
        _binary,
        ref_auc(thresholds=[0.1, 0.4, 0.6, 0.9]),
    ),
    "f1": (M.F1Score, _one_hot, ref_fbeta()),
    "f1_threshold": (lambda: M.F1Score(threshold=0.5), _multi_hot, ref_fbeta(threshold=0.5)),
    "f1_micro": (
        lambda: M.F1Score(average="micro", threshold=0.5),
        _multi_hot,
        ref_fbeta(average="micro", threshold=0.5),
    ),
    "f1_macro": (lambda: M.F1Score(average="macro"), _one_hot, ref_fbeta(average="macro")),
    "f1_weighted": (
        lambda: M.F1Score(average="weighted", threshold=0.4),
        _multi_hot,
        ref_fbeta(average="weighted", threshold=0.4),
    ),
    "fbeta_2_macro": (
        lambda: M.FBetaScore(average="macro", beta=2.0, threshold=0.5),
        _multi_hot,
        ref_fbeta(2.0, "macro", 0.5),
    ),
    "fbeta_half_none": (
        lambda: M.FBetaScore(beta=0.5),
        _one_hot,
        ref_fbeta(0.5),
    ),
    "mean_iou": (lambda: M.MeanIoU(num_classes=4), _classes, ref_iou(4)),
    "mean_iou_ignore": (
        lambda: M.MeanIoU(num_classes=4, ignore_class=0),
        _classes,
        ref_iou(4, ignore_class=0),
    ),
    "iou_targets": (
        lambda: M.IoU(num_classes=4, target_class_ids=[1, 3]),
        _classes,
        ref_iou(4, target=[1, 3]),
    ),
    "binary_iou": (
        lambda: M.BinaryIoU(threshold=0.4),
        lambda r: (r.integers(0, 2, N), r.random(N, dtype="float32")),
        ref_iou(2, binary_threshold=0.4),
    ),
    "one_hot_mean_iou": (
        lambda: M.OneHotMeanIoU(num_classes=4),
        _one_hot,
        ref_iou(4, one_hot=True),
    ),
    "one_hot_iou": (
        lambda: M.OneHotIoU(num_classes=4, target_class_ids=[0, 2]),
        _one_hot,
        ref_iou(4, target=[0, 2], one_hot=True),
    ),
    "r2": (M.R2Score, _regression, ref_r2()),
    "r2_variance_weighted": (
        lambda: M.R2Score(class_aggregation="variance_weighted_average"),
        _regression,
        ref_r2("variance_weighted_average"),
    ),
    "r2_raw": (lambda: M.R2Score(class_aggregation=None), _regression, ref_r2(None)),
    "r2_adjusted": (lambda: M.R2Score(num_regressors=3), _regression, ref_r2(num_regressors=3)),
}


def _batches(make, weighted, seed=0, n=3):
    rng = np.random.default_rng(seed)
    data = [make(rng) for _ in range(n)]
    weights = [rng.random(N) if weighted else None for _ in data]
    return data, weights


def _cat(arrays):
    return None if arrays[0] is None else np.concatenate(arrays)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("weighted", [False, True])
def test_value_accumulation_and_reset(case, weighted):
    factory, make, ref = CASES[case]
    data, weights = _batches(make, weighted)
    m = factory()
    for (t, p), w in zip(data, weights):
        m.update_state(t, p, sample_weight=w)
    expected = ref(_cat([t for t, _ in data]), _cat([p for _, p in data]), _cat(weights))
    np.testing.assert_allclose(m.result().numpy(), expected, rtol=2e-5, atol=2e-6)
    assert m.variable_aggregations == ["sum"] * len(m.variables)
    m.reset_state()
    assert all(float(np.abs(v.numpy()).sum()) == 0 for v in m.variables)


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_is_sum_reducible(case):
    """Two ranks on disjoint data, states summed == one metric on all of it == the reference."""
    factory, make, ref = CASES[case]
    (data,), (w,) = _batches(make, True, seed=1, n=1)
    t, p = data
    whole = assert_metric_state_sums(factory, t, p, w, split=N // 3)
    np.testing.assert_allclose(whole, ref(t, p, w), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip_computes_the_same(case):
    factory, make, _ = CASES[case]
    (data,), (w,) = _batches(make, True, seed=2, n=1)
    m = factory()
    m.update_state(*data, sample_weight=w)
    config = json.loads(json.dumps(metrics.serialize(m)))
    restored = metrics.deserialize(config)
    assert type(restored) is type(m) and restored.get_config() == m.get_config()
    restored.update_state(*data, sample_weight=w)
    np.testing.assert_allclose(restored.result().numpy(), m.result().numpy(), rtol=1e-6)


def test_roc_auc_approaches_the_rank_statistic():
    """With many thresholds, ROC AUC -> P(score of a positive > score of a negative)."""
    rng = np.random.default_rng(3)
    t = rng.integers(0, 2, 400)
    p = np.clip(0.5 + 0.25 * (2 * t - 1) + 0.3 * rng.normal(size=400), 0, 1)
    m = metrics.AUC(num_thresholds=2001)
    m.update_state(t, p)
    pos, neg = p[t == 1], p[t == 0]
    rank_auc = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert float(m.result()) == pytest.approx(rank_auc, abs=2e-3)


def test_result_shapes_and_names():
    assert metrics.Precision(thresholds=[0.2, 0.8]).result().shape == (2,)
    assert metrics.Precision().result().shape == ()
    assert metrics.F1Score().name == "f1_score" and metrics.R2Score().name == "r2_score"
    assert metrics.AUC(name=None).name.startswith("auc")
    assert metrics.MeanIoU(num_classes=2).name.startswith("mean_io_u")
    m = metrics.AUC(multi_label=True)
    m.update_state(np.eye(3)[[0, 1, 2, 0]], np.random.default_rng(0).random((4, 3)))
    assert m.true_positives.shape == (200, 3) and m.get_config()["num_labels"] == 3


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: metrics.AUC(num_thresholds=1), "num_thresholds=1"),
        (lambda: metrics.AUC(curve="XY"), "curve='XY'"),
        (lambda: metrics.AUC(summation_method="simpson"), "summation_method='simpson'"),
        (lambda: metrics.AUC(label_weights=[1, -1]), "label_weights"),
        (lambda: metrics.AUC(num_labels=3), "num_labels=3"),
        (lambda: metrics.Precision(thresholds=[0.5, 1.5]), "thresholds=\\[0.5, 1.5\\]"),
        (lambda: metrics.Recall(top_k=0), "top_k=0"),
        (lambda: metrics.TruePositives(thresholds=-0.1), "thresholds=-0.1"),
        (lambda: metrics.F1Score(average="mean"), "average='mean'"),
        (lambda: metrics.FBetaScore(beta=0.0), "beta=0.0"),
        (lambda: metrics.FBetaScore(beta=2), "beta=2"),
        (lambda: metrics.F1Score(threshold=1.5), "threshold=1.5"),
        (lambda: metrics.MeanIoU(num_classes=0), "num_classes=0"),
        (lambda: metrics.IoU(num_classes=2, target_class_ids=[2]), "target_class_ids=\\[2\\]"),
        (lambda: metrics.R2Score(class_aggregation="max"), "class_aggregation='max'"),
        (lambda: metrics.R2Score(num_regressors=-1), "num_regressors=-1"),
    ],
)
def test_invalid_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_invalid_inputs():
    with pytest.raises(ValueError, match="2D inputs"):
        metrics.F1Score().update_state(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="2D inputs"):
        metrics.R2Score().update_state(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="class ids in"):
        metrics.MeanIoU(num_classes=2).update_state([0, 1], [0, 5])


def test_adjusted_r2_falls_back_with_a_warning():
    m = metrics.R2Score(num_regressors=5)
    m.update_state([[1.0], [2.0], [4.0]], [[1.5], [2.0], [3.0]])
    with pytest.warns(UserWarning, match="More independent predictors"):
        value = float(m.result())
    assert value == pytest.approx(
        ref_r2()(np.array([[1.0], [2.0], [4.0]]), [[1.5], [2], [3]], None)
    )
