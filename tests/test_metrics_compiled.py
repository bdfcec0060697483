"""Metrics given to `compile` as strings, with labels (n,) or (n, 1) against an (n, 1) output.

Keras rank-matches labels only where its metric functions do (accuracy,
regression errors, confusion counts); for hinge, squared hinge, categorical
hinge, KL divergence and Poisson its metric functions broadcast labels (n,)
against (n, 1), and these tests hold us to Keras's numbers either way.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import distkeras as keras

N = 16
_W = ((np.arange(N) + 1) * 0.7548776662466927) % 1.0
PRED = (0.05 + 0.9 * _W).astype("float32")[:, None]
LABELS = (((np.arange(N) + 1) * 0.5698402909980532) % 1.0 > 0.4).astype("float32")
WEIGHTS = (0.25 + (np.arange(N) * 0.37) % 1.0).astype("float32")

# Keras 3.15.1 (jax backend): model.evaluate(PRED, labels, batch_size=16, return_dict=True)
# of keras.Model(inp, keras.layers.Identity()(inp)), compiled with loss="binary_crossentropy"
# and these names as `metrics` (False) or as `weighted_metrics` with sample_weight=WEIGHTS
# (True); labels LABELS of shape (n,) or LABELS[:, None].
KERAS_METRICS = {
    ("(n,)", False): {
        "acc": 0.5625,
        "accuracy": 0.5625,
        "auc": 0.61818182,
        "binary_accuracy": 0.5625,
        "binary_io_u": 0.38076925,
        "categorical_accuracy": 1,
        "categorical_hinge": 0.029575754,
        "cosine_similarity": 0.6875,
        "false_negatives": 5,
        "hinge": 0.84069467,
        "kl_divergence": 12.246471,
        "log_cosh_error": 0.13974555,
        "mae": 0.48573282,
        "mape": 1.1152351e08,
        "mean_absolute_error": 0.48573282,
        "mean_squared_error": 0.30260715,
        "mse": 0.30260715,
        "msle": 0.13155881,
        "poisson": 1.1902187,
        "precision": 0.75,
        "r2_score": -0.40849876,
        "recall": 0.54545456,
        "root_mean_squared_error": 0.55009741,
        "squared_hinge": 0.92307788,
        "true_positives": 6,
    },
    ("(n,)", True): {
        "acc": 0.57192981,
        "accuracy": 0.57192981,
        "auc": 0.54070783,
        "binary_accuracy": 0.57192981,
        "binary_io_u": 0.33333334,
        "categorical_accuracy": 1,
        "categorical_hinge": 0.021209141,
        "cosine_similarity": 0.65438586,
        "false_negatives": 3.05,
        "hinge": 0.83207673,
        "kl_divergence": 11.254071,
        "log_cosh_error": 0.14308818,
        "mae": 0.49924597,
        "mape": 1.4632774e08,
        "mean_absolute_error": 0.49924597,
        "mean_squared_error": 0.30921787,
        "mse": 0.30921787,
        "msle": 0.13743493,
        "poisson": 1.1511751,
        "precision": 0.70673078,
        "r2_score": -0.36722255,
        "recall": 0.59115279,
        "root_mean_squared_error": 0.55607361,
        "squared_hinge": 0.92192078,
        "true_positives": 4.4099998,
    },
    ("(n,1)", False): {
        "acc": 0.5625,
        "accuracy": 0.5625,
        "auc": 0.61818182,
        "binary_accuracy": 0.5625,
        "binary_io_u": 0.38076925,
        "categorical_accuracy": 1,
        "categorical_hinge": 0.79823285,
        "cosine_similarity": 0.6875,
        "false_negatives": 5,
        "hinge": 0.79823285,
        "kl_divergence": 0.68290991,
        "log_cosh_error": 0.13974555,
        "mae": 0.48573282,
        "mape": 1.1152351e08,
        "mean_absolute_error": 0.48573282,
        "mean_squared_error": 0.30260715,
        "mse": 0.30260715,
        "msle": 0.13155881,
        "poisson": 1.1077243,
        "precision": 0.75,
        "r2_score": -0.40849876,
        "recall": 0.54545456,
        "root_mean_squared_error": 0.55009741,
        "squared_hinge": 0.8381542,
        "true_positives": 6,
    },
    ("(n,1)", True): {
        "acc": 0.57192981,
        "accuracy": 0.57192981,
        "auc": 0.54070783,
        "binary_accuracy": 0.57192981,
        "binary_io_u": 0.33333334,
        "categorical_accuracy": 1,
        "categorical_hinge": 0.84485996,
        "cosine_similarity": 0.65438586,
        "false_negatives": 3.05,
        "hinge": 0.84485996,
        "kl_divergence": 0.62999684,
        "log_cosh_error": 0.14308818,
        "mae": 0.49924597,
        "mape": 1.4632774e08,
        "mean_absolute_error": 0.49924597,
        "mean_squared_error": 0.30921787,
        "mse": 0.30921787,
        "msle": 0.13743493,
        "poisson": 1.0777924,
        "precision": 0.70673078,
        "r2_score": -0.36722255,
        "recall": 0.59115279,
        "root_mean_squared_error": 0.55607361,
        "squared_hinge": 0.94748735,
        "true_positives": 4.4099998,
    },
}
# Keras casts BinaryIoU's float sample weights to int (and warns that the result may be
# wrong); ours weighs with the floats, so the weighted binary_io_u is not compared.
_NOT_COMPARED = {("binary_io_u", True)}


def _evaluate(labels, names, weighted):
    inp = keras.Input((1,))
    model = keras.Model(inp, keras.layers.Identity()(inp))
    kwargs = {"weighted_metrics": names} if weighted else {"metrics": names}
    model.compile(loss="binary_crossentropy", **kwargs)
    sw = WEIGHTS if weighted else None
    return model.evaluate(PRED, labels, sample_weight=sw, batch_size=N, verbose=0, return_dict=True)


@pytest.mark.parametrize("label_shape, weighted", sorted(KERAS_METRICS))
def test_string_metrics_match_keras(label_shape, weighted):
    labels = LABELS if label_shape == "(n,)" else LABELS[:, None]
    expected = KERAS_METRICS[label_shape, weighted]
    logs = _evaluate(labels, sorted(expected), weighted)
    for name, value in expected.items():
        if (name, weighted) not in _NOT_COMPARED:
            np.testing.assert_allclose(logs[name], value, rtol=2e-6, atol=1e-7, err_msg=name)


def test_rank_matching_metrics_agree_across_label_shapes():
    # The rank-matched metrics must not depend on labels being (n,) or (n, 1) (a broadcast
    # to (n, n) would change them); the values themselves are checked above.
    for weighted in (False, True):
        flat, column = KERAS_METRICS["(n,)", weighted], KERAS_METRICS["(n,1)", weighted]
        same = {k for k in flat if k not in ("hinge", "squared_hinge", "categorical_hinge")}
        same -= {"kl_divergence", "poisson"}
        assert all(flat[k] == column[k] for k in same)


def test_binary_crossentropy_metric_rejects_labels_of_lower_rank():
    # Keras 3 raises here too: its metric function does not rank-match.
    with pytest.raises(ValueError, match=re.escape("y_true.shape=(16,), y_pred.shape=(16, 1)")):
        _evaluate(LABELS, ["binary_crossentropy"], False)
    logs = _evaluate(LABELS[:, None], ["binary_crossentropy"], False)
    p = PRED[:, 0].astype("float64")
    expected = -np.mean(LABELS * np.log(p) + (1 - LABELS) * np.log(1 - p))
    np.testing.assert_allclose(logs["binary_crossentropy"], expected, rtol=1e-6)


def test_accuracy_of_a_multi_label_output_is_categorical():
    # Keras 3.15.1 on these inputs: accuracy 0.3125 (categorical), binary_accuracy 0.47916669.
    n = 16
    idx = np.arange(n * 3) + 1
    p = (0.05 + 0.9 * ((idx * 0.7548776662466927) % 1.0)).reshape(n, 3).astype("float32")
    y = (((idx * 0.5698402909980532) % 1.0) > 0.5).reshape(n, 3).astype("float32")
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Identity()(inp))
    model.compile(loss="binary_crossentropy", metrics=["accuracy", "binary_accuracy"])
    logs = model.evaluate(p, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["accuracy"], np.mean(p.argmax(-1) == y.argmax(-1)))
    np.testing.assert_allclose(logs["accuracy"], 0.3125)
    np.testing.assert_allclose(logs["binary_accuracy"], 0.47916669, rtol=1e-6)


def test_per_class_results_of_one_class_are_logged_as_arrays():
    # Keras 3.15.1 on these inputs: f1_score [0.81481475], f1_half [0.63157898]; the logs
    # used to fail converting the one-element per-class result to a float.
    inp = keras.Input((1,))
    model = keras.Model(inp, keras.layers.Identity()(inp))
    f1_half = keras.metrics.F1Score(threshold=0.5, name="f1_half")
    model.compile(loss="binary_crossentropy", metrics=["f1_score", f1_half])
    logs = model.evaluate(PRED, LABELS[:, None], verbose=0, return_dict=True)
    assert logs["f1_score"].shape == (1,) and logs["f1_half"].shape == (1,)
    np.testing.assert_allclose(logs["f1_score"], [0.81481475], rtol=1e-6)
    np.testing.assert_allclose(logs["f1_half"], [0.63157898], rtol=1e-6)
    tp = np.sum((PRED[:, 0] > 0.5) & (LABELS > 0))
    precision, recall = tp / np.sum(PRED[:, 0] > 0.5), tp / np.sum(LABELS > 0)
    np.testing.assert_allclose(logs["f1_half"], 2 * precision * recall / (precision + recall))


def test_top_k_accuracy_with_labels_that_are_not_one_hot_raises_naming_both():
    # Keras 3.15.1 raises too (a ValueError from its gather); ours names both shapes.
    with pytest.raises(ValueError, match=re.escape("y_true.shape=(16,), y_pred.shape=(16, 1)")):
        _evaluate(LABELS, ["top_k_categorical_accuracy"], False)
