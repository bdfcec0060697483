"""Metrics: values vs NumPy formulas (with sample weights), accumulation, reset,
sum-reducibility of the state, Keras's documented examples, get/serialize."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distkeras import metrics
from distkeras.backend import Tensor
from tests.module_harness import assert_metric_state_sums

N = 24
EPS = 1e-7


def _softmax_like(rng, n, c):
    x = rng.random((n, c)) + 0.01
    return (x / x.sum(-1, keepdims=True)).astype("float32")


def _one_hot(labels, c):
    return np.eye(c, dtype="float32")[labels]


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _topk(pred, labels, k):
    target = pred[np.arange(len(labels)), labels]
    return ((pred > target[:, None]).sum(-1) < k).astype(float)


# Each case: (factory, data(rng) -> (y_true, y_pred), per-sample values in NumPy).
CASES = {
    "accuracy": (
        metrics.Accuracy,
        lambda r: (r.integers(0, 3, (N, 1)), r.integers(0, 3, (N, 1))),
        lambda t, p: (t == p).mean(-1),
    ),
    "binary_accuracy": (
        metrics.BinaryAccuracy,
        lambda r: (r.integers(0, 2, (N, 3)).astype("float32"), r.random((N, 3), "float32")),
        lambda t, p: (t == (p > 0.5)).mean(-1),
    ),
    "binary_accuracy_threshold": (
        lambda: metrics.BinaryAccuracy(threshold=0.3),
        lambda r: (r.integers(0, 2, (N, 1)).astype("float32"), r.random((N, 1), "float32")),
        lambda t, p: (t == (p > 0.3)).mean(-1),
    ),
    "categorical_accuracy": (
        metrics.CategoricalAccuracy,
        lambda r: (_one_hot(r.integers(0, 4, N), 4), _softmax_like(r, N, 4)),
        lambda t, p: (t.argmax(-1) == p.argmax(-1)).astype(float),
    ),
    "sparse_categorical_accuracy": (
        metrics.SparseCategoricalAccuracy,
        lambda r: (r.integers(0, 4, N), _softmax_like(r, N, 4)),
        lambda t, p: (t == p.argmax(-1)).astype(float),
    ),
    "sparse_categorical_accuracy_col": (
        metrics.SparseCategoricalAccuracy,
        lambda r: (r.integers(0, 4, (N, 1)), _softmax_like(r, N, 4)),
        lambda t, p: (t[:, 0] == p.argmax(-1)).astype(float),
    ),
    "top_k_categorical_accuracy": (
        lambda: metrics.TopKCategoricalAccuracy(k=2),
        lambda r: (_one_hot(r.integers(0, 5, N), 5), _softmax_like(r, N, 5)),
        lambda t, p: _topk(p, t.argmax(-1), 2),
    ),
    "sparse_top_k_categorical_accuracy": (
        lambda: metrics.SparseTopKCategoricalAccuracy(k=3),
        lambda r: (r.integers(0, 5, N), _softmax_like(r, N, 5)),
        lambda t, p: _topk(p, t, 3),
    ),
    "mean_squared_error": (
        metrics.MeanSquaredError,
        lambda r: (r.normal(size=(N, 3)), r.normal(size=(N, 3))),
        lambda t, p: ((t - p) ** 2).mean(-1),
    ),
    "mean_absolute_error": (
        metrics.MeanAbsoluteError,
        lambda r: (r.normal(size=(N, 3)), r.normal(size=(N, 3))),
        lambda t, p: np.abs(t - p).mean(-1),
    ),
    "mean_absolute_percentage_error": (
        metrics.MeanAbsolutePercentageError,
        lambda r: (r.normal(size=(N, 2)), r.normal(size=(N, 2))),
        lambda t, p: 100 * np.abs((t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
    ),
    "mean_squared_logarithmic_error": (
        metrics.MeanSquaredLogarithmicError,
        lambda r: (r.random((N, 2)), r.random((N, 2))),
        lambda t, p: ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(
            -1
        ),
    ),
    "binary_crossentropy": (
        metrics.BinaryCrossentropy,
        lambda r: (r.integers(0, 2, (N, 2)).astype("float32"), r.random((N, 2), "float32")),
        lambda t, p: (
            -(
                t * np.log(np.clip(p, EPS, 1 - EPS))
                + (1 - t) * np.log(1 - np.clip(p, EPS, 1 - EPS))
            ).mean(-1)
        ),
    ),
    "categorical_crossentropy": (
        metrics.CategoricalCrossentropy,
        lambda r: (_one_hot(r.integers(0, 3, N), 3), _softmax_like(r, N, 3)),
        lambda t, p: -(t * np.log(np.clip(p, EPS, 1 - EPS))).sum(-1),
    ),
    "sparse_categorical_crossentropy": (
        metrics.SparseCategoricalCrossentropy,
        lambda r: (r.integers(0, 3, N), _softmax_like(r, N, 3)),
        lambda t, p: -np.log(np.clip(p[np.arange(len(t)), t], EPS, 1 - EPS)),
    ),
    "log_cosh_error": (
        metrics.LogCoshError,
        lambda r: (r.normal(size=(N, 3)), r.normal(size=(N, 3))),
        lambda t, p: np.log(np.cosh(p - t)).mean(-1),
    ),
    "cosine_similarity": (
        metrics.CosineSimilarity,
        lambda r: (r.normal(size=(N, 3)), r.normal(size=(N, 3))),
        lambda t, p: (_unit(t) * _unit(p)).sum(-1),
    ),
    "kl_divergence": (
        metrics.KLDivergence,
        lambda r: (_softmax_like(r, N, 3), _softmax_like(r, N, 3)),
        lambda t, p: (t * np.log(t / p)).sum(-1),
    ),
    "poisson": (
        metrics.Poisson,
        lambda r: (r.uniform(0.5, 3, (N, 2)), r.uniform(0.5, 3, (N, 2))),
        lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
    ),
    "hinge": (
        metrics.Hinge,
        lambda r: (r.integers(0, 2, (N, 3)).astype("float32"), r.normal(size=(N, 3))),
        lambda t, p: np.maximum(1 - (2 * t - 1) * p, 0).mean(-1),
    ),
    "squared_hinge": (
        metrics.SquaredHinge,
        lambda r: (r.integers(0, 2, (N, 3)).astype("float32"), r.normal(size=(N, 3))),
        lambda t, p: (np.maximum(1 - (2 * t - 1) * p, 0) ** 2).mean(-1),
    ),
    "categorical_hinge": (
        metrics.CategoricalHinge,
        lambda r: (_one_hot(r.integers(0, 4, N), 4), r.normal(size=(N, 4))),
        lambda t, p: np.maximum(((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0),
    ),
}


def _expected(values, weights=None):
    values = np.asarray(values, dtype=np.float64)
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("weighted", [False, True])
def test_value_accumulation_and_reset(case, weighted):
    factory, make, formula = CASES[case]
    rng = np.random.default_rng(0)
    m = factory()
    batches = [make(rng) for _ in range(3)]
    weights = [rng.random(N) if weighted else None for _ in batches]
    for (t, p), w in zip(batches, weights):
        m.update_state(t, p, sample_weight=w)
    values = np.concatenate([formula(t, p) for t, p in batches])
    w_all = np.concatenate(weights) if weighted else None
    result = m.result()
    assert isinstance(result, Tensor) and result.shape == ()
    np.testing.assert_allclose(float(result), _expected(values, w_all), rtol=2e-5, atol=1e-6)
    m.reset_state()
    assert all(float(np.abs(v.numpy()).sum()) == 0 for v in m.variables)
    assert float(m.result()) == 0.0


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_is_sum_reducible(case):
    """Two ranks on two parts, states summed variable-wise == one metric on all data."""
    factory, make, formula = CASES[case]
    rng = np.random.default_rng(1)
    t, p = make(rng)
    w = rng.random(N)
    whole = assert_metric_state_sums(factory, t, p, w, split=N // 3)
    np.testing.assert_allclose(whole, _expected(formula(t, p), w), rtol=2e-5, atol=1e-6)


def test_root_mean_squared_error_is_sum_reducible():
    rng = np.random.default_rng(2)
    t, p = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))
    whole, a, b = (metrics.RootMeanSquaredError() for _ in range(3))
    whole.update_state(t, p)
    a.update_state(t[:5], p[:5])
    b.update_state(t[5:], p[5:])
    a.merge_state([b])
    expected = np.sqrt(((t - p) ** 2).mean())
    np.testing.assert_allclose(float(whole.result()), expected, rtol=1e-6)
    np.testing.assert_allclose(float(a.result()), expected, rtol=1e-6)


# Keras's documented examples, verbatim.
KERAS_EXAMPLES = [
    (metrics.Accuracy, [[1], [2], [3], [4]], [[0], [2], [3], [4]], None, 0.75),
    (metrics.Accuracy, [[1], [2], [3], [4]], [[0], [2], [3], [4]], [1, 1, 0, 0], 0.5),
    (metrics.BinaryAccuracy, [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], None, 0.75),
    (metrics.BinaryAccuracy, [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], [1, 0, 0, 1], 0.5),
    (
        metrics.CategoricalAccuracy,
        [[0, 0, 1], [0, 1, 0]],
        [[0.1, 0.9, 0.8], [0.05, 0.95, 0]],
        [0.7, 0.3],
        0.3,
    ),
    (
        metrics.SparseCategoricalAccuracy,
        [[2], [1]],
        [[0.1, 0.6, 0.3], [0.05, 0.95, 0]],
        None,
        0.5,
    ),
    (
        lambda: metrics.TopKCategoricalAccuracy(k=1),
        [[0, 0, 1], [0, 1, 0]],
        [[0.1, 0.9, 0.8], [0.05, 0.95, 0]],
        [0.7, 0.3],
        0.3,
    ),
    (
        lambda: metrics.SparseTopKCategoricalAccuracy(k=1),
        [2, 1],
        [[0.1, 0.9, 0.8], [0.05, 0.95, 0]],
        None,
        0.5,
    ),
    (metrics.MeanSquaredError, [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 0.25),
    (metrics.MeanSquaredError, [[0, 1], [0, 0]], [[1, 1], [0, 0]], [1, 0], 0.5),
    (metrics.MeanAbsoluteError, [[0, 1], [0, 0]], [[1, 1], [0, 0]], [1, 0], 0.5),
    (metrics.RootMeanSquaredError, [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 0.5),
    (metrics.LogCoshError, [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 0.10844523),
    (
        lambda: metrics.CosineSimilarity(axis=1),
        [[0.0, 1.0], [1.0, 1.0]],
        [[1.0, 0.0], [1.0, 1.0]],
        None,
        0.49999997,
    ),
    (metrics.KLDivergence, [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], None, 0.45814306),
    (metrics.Poisson, [[0, 1], [0, 0]], [[1, 1], [0, 0]], None, 0.49999997),
    (metrics.Hinge, [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], None, 1.3),
    (metrics.SquaredHinge, [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], None, 1.86),
    (metrics.CategoricalHinge, [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], None, 1.4000001),
    (metrics.Precision, [0, 1, 1, 1], [1, 0, 1, 1], None, 2 / 3),
    (metrics.Precision, [0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0], 1.0),
    (lambda: metrics.Precision(top_k=2), [0, 0, 1, 1], [1, 1, 1, 1], None, 0.0),
    (lambda: metrics.Precision(top_k=4), [0, 0, 1, 1], [1, 1, 1, 1], None, 0.5),
    (metrics.Recall, [0, 1, 1, 1], [1, 0, 1, 1], None, 2 / 3),
    (metrics.Recall, [0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0], 1.0),
    (metrics.TruePositives, [0, 1, 1, 1], [1, 0, 1, 1], None, 2.0),
    (metrics.TruePositives, [0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0], 1.0),
    (metrics.FalseNegatives, [0, 1, 1, 1], [1, 0, 1, 1], None, 1.0),
    (metrics.FalseNegatives, [0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0], 0.0),
    (metrics.FalsePositives, [0, 1, 0, 0], [0, 0, 1, 1], None, 2.0),
    (metrics.FalsePositives, [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0], 1.0),
    (metrics.TrueNegatives, [0, 1, 0, 0], [1, 1, 0, 0], None, 2.0),
    (metrics.TrueNegatives, [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], 1.0),
    (lambda: metrics.AUC(num_thresholds=3), [0, 0, 1, 1], [0, 0.5, 0.3, 0.9], None, 0.75),
    (
        lambda: metrics.AUC(num_thresholds=3),
        [0, 0, 1, 1],
        [0, 0.5, 0.3, 0.9],
        [1, 0, 0, 1],
        1.0,
    ),
    (
        lambda: metrics.F1Score(threshold=0.5),
        [[1, 1, 1], [1, 0, 0], [1, 1, 0]],
        [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]],
        None,
        [0.5, 0.8, 0.6666667],
    ),
    (
        lambda: metrics.FBetaScore(beta=2.0, threshold=0.5),
        [[1, 1, 1], [1, 0, 0], [1, 1, 0]],
        [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]],
        None,
        [0.3846154, 0.90909094, 0.8333334],
    ),
    (lambda: metrics.MeanIoU(num_classes=2), [0, 0, 1, 1], [0, 1, 0, 1], None, 1 / 3),
    (
        lambda: metrics.MeanIoU(num_classes=2),
        [0, 0, 1, 1],
        [0, 1, 0, 1],
        [0.3, 0.3, 0.3, 0.1],
        0.23809525,
    ),
    (
        lambda: metrics.IoU(num_classes=2, target_class_ids=[0]),
        [0, 0, 1, 1],
        [0, 1, 0, 1],
        [0.3, 0.3, 0.3, 0.1],
        1 / 3,
    ),
    (
        lambda: metrics.BinaryIoU(target_class_ids=[0, 1], threshold=0.3),
        [0, 1, 0, 1],
        [0.1, 0.2, 0.4, 0.7],
        [0.2, 0.3, 0.4, 0.1],
        0.17361112,
    ),
    (
        lambda: metrics.OneHotIoU(num_classes=3, target_class_ids=[0, 2]),
        [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]],
        [[0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.5, 0.3, 0.1], [0.1, 0.4, 0.5]],
        [0.1, 0.2, 0.3, 0.4],
        0.07142857,
    ),
    (
        lambda: metrics.OneHotMeanIoU(num_classes=3),
        [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]],
        [[0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.5, 0.3, 0.1], [0.1, 0.4, 0.5]],
        [0.1, 0.2, 0.3, 0.4],
        1 / 21,  # Keras's docstring prints it rounded: 0.048
    ),
    (metrics.R2Score, [[1], [4], [3]], [[2], [4], [4]], None, 0.57142854),
]


@pytest.mark.parametrize("index", range(len(KERAS_EXAMPLES)))
def test_keras_documented_examples(index):
    factory, y_true, y_pred, weights, expected = KERAS_EXAMPLES[index]
    m = factory()
    m.update_state(y_true, y_pred, sample_weight=weights)
    np.testing.assert_allclose(m.result().numpy(), expected, rtol=1e-6, atol=1e-7)


def test_mean_and_sum():
    m = metrics.Mean()
    m.update_state([1, 3, 5, 7])
    assert float(m.result()) == 4.0
    m.update_state([[2, 4], [6, 8]])  # 2-D values: per-sample means 3 and 7
    assert float(m.result()) == pytest.approx((16 + 10) / 6)
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert float(m.result()) == 2.0
    assert float(m([10.0])) == pytest.approx(14.0 / 3)  # __call__ updates then returns
    s = metrics.Sum()
    s.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    s.update_state([[1, 1], [1, 1]])
    assert float(s.result()) == 8.0
    assert [v.path for v in s.variables] == ["sum/total"]


def test_keras_mask_on_predictions_excludes_entries():
    y_pred = Tensor(np.array([[0.9], [0.2], [0.8], [0.7]], "float32"))
    y_pred._keras_mask = Tensor(np.array([True, True, False, False]))
    m = metrics.BinaryAccuracy()
    m.update_state(np.array([[1.0], [1.0], [0.0], [0.0]]), y_pred)
    assert float(m.result()) == 0.5  # only the two unmasked samples count


def test_in_top_k_counts_ties_as_inside():
    pred = np.array([[0.5, 0.5, 0.1], [0.2, 0.3, np.nan], [0.1, 0.2, 0.3]])
    got = metrics.in_top_k(np.array([1, 2, 0]), pred, k=1).numpy()
    np.testing.assert_array_equal(got, [True, False, False])


def test_function_forms_return_per_sample_values():
    y_true, y_pred = np.array([[0, 1], [1, 0]]), np.array([[0.3, 0.7], [0.4, 0.6]])
    np.testing.assert_array_equal(metrics.categorical_accuracy(y_true, y_pred).numpy(), [1, 0])
    np.testing.assert_array_equal(
        metrics.sparse_categorical_accuracy(np.array([1, 1]), y_pred).numpy(), [1, 1]
    )
    np.testing.assert_allclose(
        metrics.binary_accuracy(y_true, y_pred, threshold=0.5).numpy(), [1.0, 0.0]
    )
    np.testing.assert_array_equal(
        metrics.top_k_categorical_accuracy(y_true, y_pred, k=1).numpy(), [1, 0]
    )


# ---------------------------------------------------------------- get / serialize / resolve
@pytest.mark.parametrize(
    "name, cls",
    [
        ("accuracy", metrics.Accuracy),
        ("binary_accuracy", metrics.BinaryAccuracy),
        ("CategoricalAccuracy", metrics.CategoricalAccuracy),
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
        ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy),
        ("mse", metrics.MeanSquaredError),
        ("MAE", metrics.MeanAbsoluteError),
        ("mean_squared_error", metrics.MeanSquaredError),
        ("bce", metrics.BinaryCrossentropy),
    ],
)
def test_get_by_name(name, cls):
    assert type(metrics.get(name)) is cls


def test_get_passthrough_and_errors():
    m = metrics.Mean(name="loss")
    assert metrics.get(m) is m
    assert metrics.get(metrics.binary_accuracy) is metrics.binary_accuracy
    assert metrics.get(None) is None
    with pytest.raises(ValueError, match="not_a_metric"):
        metrics.get("not_a_metric")


@pytest.mark.parametrize(
    "metric",
    [
        metrics.Mean(name="m"),
        metrics.Sum(),
        metrics.BinaryAccuracy(threshold=0.7),
        metrics.TopKCategoricalAccuracy(k=3, name="top3"),
        metrics.SparseTopKCategoricalAccuracy(k=2),
        metrics.MeanSquaredError(dtype="float64"),
        metrics.RootMeanSquaredError(),
        metrics.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics.MeanMetricWrapper(metrics.binary_accuracy, name="ba", threshold=0.3),
    ],
    ids=lambda m: m.name,
)
def test_serialize_round_trip(metric):
    config = metrics.serialize(metric)
    restored = metrics.deserialize(config)
    assert type(restored) is type(metric)
    assert metrics.serialize(restored) == config
    restored = metrics.get(config)
    assert restored.get_config() == metric.get_config()


def test_wrapper_round_trip_computes_the_same():
    m = metrics.MeanMetricWrapper(metrics.binary_accuracy, name="ba", threshold=0.3)
    r = metrics.deserialize(metrics.serialize(m))
    for x in (m, r):
        x.update_state([[1.0], [0.0]], [[0.35], [0.35]])
    assert float(r.result()) == float(m.result()) == 0.5


@pytest.mark.parametrize(
    "loss, y_true, y_pred, expected",
    [
        # Keras 3 decides from the shapes only: a multi-label sigmoid output trained with
        # binary crossentropy gets categorical accuracy (checked with Keras 3.15.1).
        ("binary_crossentropy", (None, 3), (None, 3), metrics.CategoricalAccuracy),
        ("binary_crossentropy", None, (None, 3), metrics.BinaryAccuracy),
        ("mse", (None, 1), (None, 1), metrics.BinaryAccuracy),
        (None, (None,), (None, 10), metrics.SparseCategoricalAccuracy),
        ("categorical_crossentropy", (None, 1), (None, 10), metrics.SparseCategoricalAccuracy),
        ("sparse_categorical_crossentropy", None, (None, 10), metrics.SparseCategoricalAccuracy),
        ("categorical_crossentropy", (None, 10), (None, 10), metrics.CategoricalAccuracy),
        (metrics.binary_crossentropy, (None, 4), (None,), metrics.BinaryAccuracy),
        (metrics.BinaryCrossentropy(), (None, 4), (None, 1), metrics.BinaryAccuracy),
        ("SparseCategoricalCrossentropy", (None, 5), (None, 5), metrics.CategoricalAccuracy),
        (
            "SparseCategoricalCrossentropy",
            (None, 5),
            (None, None),
            metrics.SparseCategoricalAccuracy,
        ),
    ],
)
def test_resolve_accuracy(loss, y_true, y_pred, expected):
    for name in ("accuracy", "acc"):
        m = metrics.resolve_accuracy(loss, y_true, y_pred, name=name)
        assert type(m) is expected and m.name == name


def test_get_metric_names_like_compile():
    assert metrics.get_metric("mse").name == "mse"
    acc = metrics.get_metric("acc", (None, 1), (None, 1))
    assert isinstance(acc, metrics.BinaryAccuracy) and acc.name == "acc"
    wrapped = metrics.get_metric(metrics.categorical_accuracy)
    assert isinstance(wrapped, metrics.MeanMetricWrapper)
    assert wrapped.name == "categorical_accuracy"
    mine = metrics.Mean(name="mine")
    assert metrics.get_metric(mine) is mine


def test_custom_metric_subclass_with_tracked_sub_metric():
    class Ratio(metrics.Metric):
        def __init__(self, name="ratio", dtype=None):
            super().__init__(name=name, dtype=dtype)
            self.hits = self.add_variable((), name="hits")
            self.inner = metrics.Sum(name="inner")

        def update_state(self, values):
            self.hits.assign_add(float(np.sum(values)))
            self.inner.update_state(np.ones(len(values)))

        def result(self):
            return Tensor(self.hits.data / self.inner.total.data)

    r = Ratio()
    r.update_state([1.0, 0.0, 1.0, 1.0])
    assert float(r.result()) == 0.75
    assert [v.path for v in r.variables] == ["ratio/hits", "inner/total"]
    r.reset_state()
    assert float(r.hits.numpy()) == 0.0 and float(r.inner.total.numpy()) == 0.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="threshold=1.5"):
        metrics.BinaryAccuracy(threshold=1.5)
    with pytest.raises(ValueError, match="aggregation='max'"):
        metrics.Mean().add_variable((), aggregation="max")


# Constructor arguments for the classes that have required ones.
REQUIRED_ARGS = {
    "MeanMetricWrapper": {"fn": metrics.mean_squared_error},
    "IoU": {"num_classes": 3, "target_class_ids": [0, 2]},
    "MeanIoU": {"num_classes": 3},
    "OneHotIoU": {"num_classes": 3, "target_class_ids": [1]},
    "OneHotMeanIoU": {"num_classes": 3},
}


@pytest.mark.parametrize("name", sorted(k for k in metrics.ALL_OBJECTS_DICT if k != "Metric"))
def test_every_name_resolves_and_round_trips(name):
    cls = metrics.ALL_OBJECTS_DICT[name]
    kwargs = REQUIRED_ARGS.get(cls.__name__)
    if kwargs is None:
        obj = metrics.get(name)
        assert type(obj) is cls
    else:
        obj = cls(**kwargs)
    config = json.loads(json.dumps(metrics.serialize(obj)))
    restored = metrics.get(config)
    assert type(restored) is cls and restored.get_config() == obj.get_config()
    assert metrics.serialize(restored) == config


@pytest.mark.parametrize("name", sorted(metrics.FUNCTIONS))
def test_every_function_round_trips(name):
    fn = metrics.FUNCTIONS[name]
    assert metrics.deserialize(json.loads(json.dumps(metrics.serialize(fn)))) is fn
    wrapped = metrics.get_metric(fn)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == name


@pytest.mark.parametrize(
    "typo, suggestion",
    [("precison", "precision"), ("f1score", "F1Score"), ("mean_io_u2", "mean_io_u")],
)
def test_unknown_names_suggest_the_closest(typo, suggestion):
    with pytest.raises(ValueError, match=f"Could not interpret metric identifier: '{typo}'") as e:
        metrics.get(typo)
    assert f"Did you mean: '{suggestion}'" in str(e.value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mean_scalar_fast_path_matches_the_array_path_bitwise(dtype):
    # The loss trackers feed a Python float and an int weight every step; that path
    # skips the shape handling and must keep the same float arithmetic.
    rng = np.random.default_rng(0)
    fast, arrays = metrics.Mean(dtype=dtype), metrics.Mean(dtype=dtype)
    for _ in range(500):
        v, n = float(rng.normal() * 1e3), int(rng.integers(1, 300))
        fast.update_state(v, sample_weight=n)
        arrays.update_state(np.asarray([v]), sample_weight=np.asarray([n]))
    assert fast.total.numpy().tobytes() == arrays.total.numpy().tobytes()
    assert fast.count.numpy().tobytes() == arrays.count.numpy().tobytes()
    assert fast.result().numpy().tobytes() == arrays.result().numpy().tobytes()
