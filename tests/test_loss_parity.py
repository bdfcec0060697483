"""Every built-in loss, given to `compile` as a string, a function or a class, against Keras 3.

For each loss x label/output shape x sample-weight shape (tests/loss_cases.py),
a model whose output is its input is compiled with the loss given three ways
and evaluated on one batch; the value must equal (a) Keras's documented formula
computed in NumPy and (b) the value real Keras 3.15.1 computed on the same
inputs (KERAS_VALUES). Shapes Keras rejects must raise a ValueError naming both.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import distkeras as keras
from distkeras import losses
from distkeras.models.compile_utils import CompileLoss
from tests.loss_cases import (
    CLASS_NAMES,
    LOSS_KINDS,
    N,
    all_cases,
    case_weights,
    make_case,
    reference_value,
)

# Keras 3.15.1, jax backend: for each (loss, case), the loss `model.evaluate` reports for
# keras.Model(inp, keras.layers.Identity()(inp)) compiled with loss=<name> (string, function
# and class instance all gave these values to 1e-6), batch_size=n, on make_case(loss, case,
# weight) for the weights of the case's group in SAMPLE_WEIGHTS order (none first). Those
# values also agreed with reference_value() to 2e-7.
KERAS_VALUES = {
    ("binary_crossentropy", "(n,)|(n,1)"): (1.4426808, 1.0492381, 1.0492381),
    ("binary_crossentropy", "(n,1)|(n,1)"): (1.4426808, 1.0492381, 1.0492381),
    ("binary_crossentropy", "(n,)|(n,)"): (1.4426808, 1.1083531, 1.1083531),
    ("binary_crossentropy", "(n,k)|(n,k)"): (1.3890995, 1.0700306, 1.0700306),
    ("binary_crossentropy", "(n,t)|(n,t,1)"): (1.3222419, 1.0382974, 1.0382974),
    ("binary_crossentropy", "(n,t,k)|(n,t,k)"): (1.2930808, 0.96160513, 0.95079952, 0.95079952),
    ("binary_focal_crossentropy", "(n,)|(n,1)"): (0.88298458, 0.61174172, 0.61174172),
    ("binary_focal_crossentropy", "(n,1)|(n,1)"): (0.88298458, 0.61174172, 0.61174172),
    ("binary_focal_crossentropy", "(n,)|(n,)"): (0.88298458, 0.67836118, 0.67836118),
    ("binary_focal_crossentropy", "(n,k)|(n,k)"): (0.82263523, 0.63450617, 0.63450617),
    ("binary_focal_crossentropy", "(n,t)|(n,t,1)"): (0.77308798, 0.61174953, 0.61174953),
    ("binary_focal_crossentropy", "(n,t,k)|(n,t,k)"): (
        0.75985569,
        0.56043792,
        0.56212491,
        0.56212491,
    ),
    ("categorical_crossentropy", "(n,k)|(n,k)"): (1.3985656, 1.0419601, 1.0419601),
    ("categorical_crossentropy", "(n,t,k)|(n,t,k)"): (
        1.2615838,
        0.97030538,
        0.97775126,
        0.97775126,
    ),
    ("categorical_focal_crossentropy", "(n,k)|(n,k)"): (0.21438994, 0.15693107, 0.15693107),
    ("categorical_focal_crossentropy", "(n,t,k)|(n,t,k)"): (
        0.17864799,
        0.13758509,
        0.14562808,
        0.14562808,
    ),
    ("sparse_categorical_crossentropy", "(n,)|(n,k)"): (1.3868456, 1.0607942, 1.0607942),
    ("sparse_categorical_crossentropy", "(n,1)|(n,k)"): (1.3868456, 1.0607942, 1.0607942),
    ("sparse_categorical_crossentropy", "(n,t)|(n,t,k)"): (
        1.2599338,
        0.91582203,
        0.94078833,
        0.94078833,
    ),
    ("sparse_categorical_crossentropy", "(n,t,1)|(n,t,k)"): (
        1.2599338,
        0.91582203,
        0.94078833,
        0.94078833,
    ),
    ("kl_divergence", "(n,)|(n,1)"): (1.0288348, 0.57810813, 0.57810813),
    ("kl_divergence", "(n,1)|(n,1)"): (1.0288348, 0.57810813, 0.57810813),
    ("kl_divergence", "(n,)|(n,)"): (6.1730094, 4.7424722, 4.7424722),
    ("kl_divergence", "(n,k)|(n,k)"): (2.3688385, 1.6478281, 1.6478281),
    ("kl_divergence", "(n,t)|(n,t,1)"): (2.7896826, 2.1421826, 2.1421826),
    ("kl_divergence", "(n,t,k)|(n,t,k)"): (2.0737593, 1.5568533, 1.5424246, 1.5424246),
    ("poisson", "(n,)|(n,1)"): (1.419556, 0.94185978, 0.94185978),
    ("poisson", "(n,1)|(n,1)"): (1.419556, 0.94185978, 0.94185978),
    ("poisson", "(n,)|(n,)"): (1.419556, 1.0905873, 1.0905873),
    ("poisson", "(n,k)|(n,k)"): (1.2566737, 0.92872697, 0.92872697),
    ("poisson", "(n,t)|(n,t,1)"): (1.2026511, 0.92284614, 0.92284614),
    ("poisson", "(n,t,k)|(n,t,k)"): (1.1893412, 0.90293342, 0.87909621, 0.87909621),
    ("mean_squared_error", "(n,)|(n,1)"): (0.55558687, 0.40823302, 0.40823302),
    ("mean_squared_error", "(n,1)|(n,1)"): (0.55558687, 0.40823302, 0.40823302),
    ("mean_squared_error", "(n,)|(n,)"): (0.55558687, 0.42683482, 0.42683482),
    ("mean_squared_error", "(n,k)|(n,k)"): (0.53964835, 0.4160392, 0.4160392),
    ("mean_squared_error", "(n,t)|(n,t,1)"): (0.51270151, 0.40279725, 0.40279725),
    ("mean_squared_error", "(n,t,k)|(n,t,k)"): (0.49563599, 0.36740601, 0.36485454, 0.36485454),
    ("mean_absolute_error", "(n,)|(n,1)"): (0.73642635, 0.55358541, 0.55358541),
    ("mean_absolute_error", "(n,1)|(n,1)"): (0.73642635, 0.55358541, 0.55358541),
    ("mean_absolute_error", "(n,)|(n,)"): (0.73642635, 0.56576645, 0.56576645),
    ("mean_absolute_error", "(n,k)|(n,k)"): (0.72588223, 0.55876178, 0.55876178),
    ("mean_absolute_error", "(n,t)|(n,t,1)"): (0.69698793, 0.54452294, 0.54452294),
    ("mean_absolute_error", "(n,t,k)|(n,t,k)"): (0.67816263, 0.50687987, 0.49676251, 0.49676251),
    ("mean_absolute_percentage_error", "(n,)|(n,1)"): (2.3024038e08, 2.5813742e08, 2.5813742e08),
    ("mean_absolute_percentage_error", "(n,1)|(n,1)"): (2.3024038e08, 2.5813742e08, 2.5813742e08),
    ("mean_absolute_percentage_error", "(n,)|(n,)"): (2.3024038e08, 1.7688434e08, 1.7688434e08),
    ("mean_absolute_percentage_error", "(n,k)|(n,k)"): (3.1869354e08, 2.742193e08, 2.742193e08),
    ("mean_absolute_percentage_error", "(n,t)|(n,t,1)"): (3.3027565e08, 2.636636e08, 2.636636e08),
    ("mean_absolute_percentage_error", "(n,t,k)|(n,t,k)"): (
        3.311807e08,
        2.5010718e08,
        2.3490891e08,
        2.3490891e08,
    ),
    ("mean_squared_logarithmic_error", "(n,)|(n,1)"): (0.25246689, 0.19391811, 0.19391811),
    ("mean_squared_logarithmic_error", "(n,1)|(n,1)"): (0.25246689, 0.19391811, 0.19391811),
    ("mean_squared_logarithmic_error", "(n,)|(n,)"): (0.25246689, 0.19396006, 0.19396006),
    ("mean_squared_logarithmic_error", "(n,k)|(n,k)"): (0.25300804, 0.19803633, 0.19803633),
    ("mean_squared_logarithmic_error", "(n,t)|(n,t,1)"): (0.24286042, 0.19121955, 0.19121955),
    ("mean_squared_logarithmic_error", "(n,t,k)|(n,t,k)"): (
        0.23842649,
        0.1780252,
        0.17374404,
        0.17374404,
    ),
    ("cosine_similarity", "(n,)|(n,1)"): (-0.66666669, -0.4010618, -0.4010618),
    ("cosine_similarity", "(n,1)|(n,1)"): (-0.66666669, -0.4010618, -0.4010618),
    ("cosine_similarity", "(n,)|(n,)"): (-0.42902359, -0.32960141, -0.32960141),
    ("cosine_similarity", "(n,k)|(n,k)"): (-0.39104974, -0.2756615, -0.2756615),
    ("cosine_similarity", "(n,t)|(n,t,1)"): (-0.4029026, -0.29254612, -0.29254612),
    ("cosine_similarity", "(n,t,k)|(n,t,k)"): (-0.41183218, -0.32626992, -0.31166437, -0.31166437),
    ("huber", "(n,)|(n,1)"): (0.27779344, 0.20411651, 0.20411651),
    ("huber", "(n,1)|(n,1)"): (0.27779344, 0.20411651, 0.20411651),
    ("huber", "(n,)|(n,)"): (0.27779344, 0.21341743, 0.21341743),
    ("huber", "(n,k)|(n,k)"): (0.26982418, 0.20801957, 0.20801957),
    ("huber", "(n,t)|(n,t,1)"): (0.25635076, 0.20139863, 0.20139863),
    ("huber", "(n,t,k)|(n,t,k)"): (0.24781799, 0.18370301, 0.18242727, 0.18242727),
    ("log_cosh", "(n,)|(n,1)"): (0.25372928, 0.18713437, 0.18713437),
    ("log_cosh", "(n,1)|(n,1)"): (0.25372928, 0.18713437, 0.18713437),
    ("log_cosh", "(n,)|(n,)"): (0.25372928, 0.1949299, 0.1949299),
    ("log_cosh", "(n,k)|(n,k)"): (0.24704228, 0.19042766, 0.19042766),
    ("log_cosh", "(n,t)|(n,t,1)"): (0.23490991, 0.18445243, 0.18445243),
    ("log_cosh", "(n,t,k)|(n,t,k)"): (0.22708309, 0.16844428, 0.1670755, 0.1670755),
    ("hinge", "(n,)|(n,1)"): (1.0697597, 0.92078298, 0.92078298),
    ("hinge", "(n,1)|(n,1)"): (1.0697597, 0.92078298, 0.92078298),
    ("hinge", "(n,)|(n,)"): (1.0697597, 0.82185292, 0.82185292),
    ("hinge", "(n,k)|(n,k)"): (1.1703267, 0.93724751, 0.93724751),
    ("hinge", "(n,t)|(n,t,1)"): (1.1553212, 0.90828657, 0.90828657),
    ("hinge", "(n,t,k)|(n,t,k)"): (1.1642737, 0.88449192, 0.8336885, 0.8336885),
    ("squared_hinge", "(n,)|(n,1)"): (1.3494009, 1.2917054, 1.2917054),
    ("squared_hinge", "(n,1)|(n,1)"): (1.3494009, 1.2917054, 1.2917054),
    ("squared_hinge", "(n,)|(n,)"): (1.3494009, 1.0366899, 1.0366899),
    ("squared_hinge", "(n,k)|(n,k)"): (1.6214796, 1.3429633, 1.3429633),
    ("squared_hinge", "(n,t)|(n,t,1)"): (1.6315861, 1.2938881, 1.2938881),
    ("squared_hinge", "(n,t,k)|(n,t,k)"): (1.6441084, 1.2452321, 1.1715982, 1.1715982),
    ("categorical_hinge", "(n,)|(n,1)"): (1.0697597, 0.92078298, 0.92078298),
    ("categorical_hinge", "(n,1)|(n,1)"): (1.0697597, 0.92078298, 0.92078298),
    ("categorical_hinge", "(n,)|(n,)"): (0.83814222, 0.64391071, 0.64391071),
    ("categorical_hinge", "(n,k)|(n,k)"): (1.3087281, 1.0527833, 1.0527833),
    ("categorical_hinge", "(n,t)|(n,t,1)"): (1.1083391, 0.90401554, 0.90401554),
    ("categorical_hinge", "(n,t,k)|(n,t,k)"): (1.2308272, 0.91562748, 0.87752587, 0.87752587),
    ("dice", "(n,)|(n,1)"): (0.69645828, 0.53506064, 0.53506064),
    ("dice", "(n,1)|(n,1)"): (0.69645828, 0.53506064, 0.53506064),
    ("dice", "(n,)|(n,)"): (0.69645828, 0.53506064, 0.53506064),
    ("dice", "(n,k)|(n,k)"): (0.70982879, 0.54533261, 0.54533261),
    ("dice", "(n,t)|(n,t,1)"): (0.66576576, 0.51148081, 0.51148081),
    ("dice", "(n,t,k)|(n,t,k)"): (0.67013675, 0.51483887, 0.48841247, 0.48841247),
    ("tversky", "(n,)|(n,1)"): (0.69645834, 0.5350607, 0.5350607),
    ("tversky", "(n,1)|(n,1)"): (0.69645834, 0.5350607, 0.5350607),
    ("tversky", "(n,)|(n,)"): (0.69645834, 0.5350607, 0.5350607),
    ("tversky", "(n,k)|(n,k)"): (0.70982867, 0.54533261, 0.54533261),
    ("tversky", "(n,t)|(n,t,1)"): (0.66576576, 0.51148081, 0.51148081),
    ("tversky", "(n,t,k)|(n,t,k)"): (0.67013675, 0.51483887, 0.48841247, 0.48841247),
    # Keras 3.15.1 as above; categorical_generalized_cross_entropy given as the class only
    # (Keras resolves no string for it, and its function needs `q`).
    ("circle", "(n,)|(n,k)"): (127.70853, 84.82132, 84.82132),
    ("circle", "(n,1)|(n,k)"): (127.70853, 84.82132, 84.82132),
    ("categorical_generalized_cross_entropy", "(n,)|(n,k)"): (0.76473683, 0.56011021, 0.56011021),
    ("categorical_generalized_cross_entropy", "(n,t)|(n,t,k)"): (
        0.64659899,
        0.46092275,
        0.48205808,
        0.48205808,
    ),
    ("ctc", "(n,l)|(n,2l,k)"): (5.0142889, 3.79866, 3.79866),
}
_CLASS_ONLY = {"categorical_generalized_cross_entropy": {"q": 0.5}}


def _identity_model(p_shape: tuple, loss) -> keras.Model:
    inp = keras.Input(p_shape[1:])
    model = keras.Model(inp, keras.layers.Identity()(inp))
    model.compile(loss=loss)
    return model


def _given_as(loss: str) -> dict:
    if loss in _CLASS_ONLY:  # its function needs arguments: given wrapped with them
        fn = losses.LossFunctionWrapper(getattr(losses, loss), **_CLASS_ONLY[loss])
        return {"function": fn, "class": getattr(losses, CLASS_NAMES[loss])()}
    return {
        "string": loss,
        "function": getattr(losses, loss),
        "class": getattr(losses, CLASS_NAMES[loss])(),
    }


def _keras_value(loss: str, case: str, weight: str) -> float:
    return KERAS_VALUES[loss, case][list(case_weights(loss, case)).index(weight)]


def test_table_covers_every_case():
    cases = all_cases()
    assert {(lo, c) for lo, c, _ in cases} == set(KERAS_VALUES)
    functions = {
        name
        for name, obj in losses.ALL_OBJECTS_DICT.items()
        if inspect.isfunction(obj) and obj.__name__ == name
    }
    assert set(LOSS_KINDS) == functions  # every built-in loss
    for (loss, case), values in KERAS_VALUES.items():
        assert len(values) == sum(1 for lo, c, _ in cases if (lo, c) == (loss, case))


@pytest.mark.parametrize("loss, case, weight", all_cases())
def test_compiled_loss_matches_keras(loss, case, weight):
    y, p, sw = make_case(loss, case, weight)
    expected_keras = _keras_value(loss, case, weight)
    expected_formula = reference_value(loss, y, p, sw)
    np.testing.assert_allclose(expected_keras, expected_formula, rtol=2e-6)  # the table itself
    for given_as, identifier in _given_as(loss).items():
        model = _identity_model(p.shape, identifier)
        got = model.evaluate(p, y, sample_weight=sw, batch_size=N, verbose=0)
        np.testing.assert_allclose(got, expected_keras, rtol=2e-6, atol=1e-7, err_msg=given_as)
        # The compiled loss object itself, as an overridden compute_loss would call it.
        got = float(CompileLoss(identifier)(y, p, sw))
        np.testing.assert_allclose(got, expected_keras, rtol=2e-6, atol=1e-7, err_msg=given_as)
    # Called directly, as a custom train_step does: the class, and the wrapped function.
    wrapped = losses.LossFunctionWrapper(getattr(losses, loss), **_CLASS_ONLY.get(loss, {}))
    for direct in (_given_as(loss)["class"], wrapped):
        got = float(direct(y, p, sample_weight=sw))
        np.testing.assert_allclose(got, expected_keras, rtol=2e-6, atol=1e-7, err_msg=direct.name)


# Keras 3.15.1, as KERAS_VALUES, with the class given a reduction: (class, case, weight) -> loss.
KERAS_REDUCED = {
    "sum": [
        ("BinaryCrossentropy", "(n,)|(n,1)", "(n,)", 6.2954278),
        ("SparseCategoricalCrossentropy", "(n,t)|(n,t,k)", "(n,t)", 22.57892),
        ("MeanSquaredError", "(n,t,k)|(n,t,k)", "(n,1)", 8.8177443),
        ("MeanSquaredError", "(n,t,k)|(n,t,k)", "none", 11.895264),
    ],
    "mean_with_sample_weight": [
        ("BinaryCrossentropy", "(n,)|(n,1)", "(n,)", 1.3657341),
        ("SparseCategoricalCrossentropy", "(n,t)|(n,t,k)", "(n,t)", 1.2908289),
        ("MeanSquaredError", "(n,t,k)|(n,t,k)", "(n,1)", 1.912927),
        ("MeanSquaredError", "(n,t,k)|(n,t,k)", "none", 0.49563599),
    ],
}
_LOSS_OF_CLASS = {cls: loss for loss, cls in CLASS_NAMES.items()}


@pytest.mark.parametrize("reduction", sorted(KERAS_REDUCED))
def test_reductions_match_keras(reduction):
    for cls, case, weight, expected in KERAS_REDUCED[reduction]:
        y, p, sw = make_case(_LOSS_OF_CLASS[cls], case, weight)
        model = _identity_model(p.shape, getattr(losses, cls)(reduction=reduction))
        got = model.evaluate(p, y, sample_weight=sw, batch_size=N, verbose=0)
        np.testing.assert_allclose(got, expected, rtol=2e-6, err_msg=f"{cls} {case} {weight}")
        compiled = CompileLoss(getattr(losses, cls)(reduction=reduction), loss_weights=0.5)
        np.testing.assert_allclose(float(compiled(y, p, sw)), 0.5 * expected, rtol=2e-6)


# Keras 3.15.1, as KERAS_VALUES: (string given to compile, loss of the inputs, case) -> loss,
# with the (n,) weights; 'crossentropy'/'ce' pick binary, sparse or categorical from the shapes.
KERAS_ALIASES = [
    ("bce", "binary_crossentropy", "(n,)|(n,1)", 1.0492381),
    ("mse", "mean_squared_error", "(n,)|(n,1)", 0.40823302),
    ("mae", "mean_absolute_error", "(n,t)|(n,t,1)", 0.54452294),
    ("kld", "kl_divergence", "(n,)|(n,1)", 0.57810813),
    ("msle", "mean_squared_logarithmic_error", "(n,)|(n,1)", 0.19391811),
    ("mape", "mean_absolute_percentage_error", "(n,)|(n,1)", 2.5813742e08),
    ("crossentropy", "binary_crossentropy", "(n,)|(n,1)", 1.0492381),
    ("ce", "sparse_categorical_crossentropy", "(n,)|(n,k)", 1.0607942),
    ("crossentropy", "sparse_categorical_crossentropy", "(n,1)|(n,k)", 1.0607942),
    ("crossentropy", "categorical_crossentropy", "(n,k)|(n,k)", 1.0419601),
]


@pytest.mark.parametrize("alias, loss, case, expected", KERAS_ALIASES)
def test_string_aliases_match_keras(alias, loss, case, expected):
    y, p, sw = make_case(loss, case, "(n,)")
    got = _identity_model(p.shape, alias).evaluate(p, y, sample_weight=sw, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=2e-6)


# --------------------------------------------------------------- shapes Keras rejects
def _rejected_shapes(loss: str) -> list[tuple]:
    """(y_true shape, y_pred shape) pairs Keras 3.15.1 rejects for this loss (all checked)."""
    out = [((N, 3), (N, 5))]
    if loss in ("binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy"):
        out += [((N, 3), (N, 1)), ((N, 1), (N, 3)), ((N,), (N, 3))]
    elif loss == "sparse_categorical_crossentropy":
        out += [((N,), (N,)), ((N, 3), (N, 1)), ((N, 4), (N, 4, 1))]
    elif loss in ("circle", "categorical_generalized_cross_entropy"):
        out += [((N, 2), (N, 3))]
    elif loss == "ctc":
        out += [((N,), (N, 4, 3)), ((N, 2, 1), (N, 4, 3))]
    else:
        out += [((N,), (N, 3)), ((N, 2), (N,))]
    return out


def _labels(loss: str, shape: tuple) -> np.ndarray:
    integer = LOSS_KINDS[loss] in ("sparse", "generalized", "similarity", "ctc")
    return np.ones(shape, "int64" if integer else "float32")


@pytest.mark.parametrize("loss", sorted(LOSS_KINDS))
def test_rejected_label_shapes_raise_naming_both(loss):
    for y_shape, p_shape in _rejected_shapes(loss):
        y, p = _labels(loss, y_shape), np.full(p_shape, 0.5, "float32")
        for given_as, identifier in _given_as(loss).items():
            model = _identity_model(p_shape, identifier)
            with pytest.raises(ValueError, match="Received:") as err:
                model.evaluate(p, y, verbose=0)
            # Both shapes, as the loss sees them (an output (n, t, 1) is squeezed to (n, t)).
            squeezed = len(p_shape) == len(y_shape) + 1 > 2 and p_shape[-1] == 1
            seen = p_shape[:-1] if squeezed else p_shape
            assert f"y_true.shape={y_shape}, y_pred.shape={seen}" in str(err.value), given_as


# Keras 3.15.1 accepts (7,) labels against a (6, 1) output in the generalized crossentropy
# (its one-hot labels broadcast to (7, 6, 1)), and so do we; every other loss rejects them.
@pytest.mark.parametrize(
    "loss", sorted(set(LOSS_KINDS) - {"categorical_generalized_cross_entropy"})
)
def test_batch_size_mismatch_raises(loss):
    y, p = _labels(loss, (N + 1,)), np.full((N, 1), 0.5, "float32")
    for identifier in _given_as(loss).values():
        with pytest.raises(ValueError, match=r"y_true.*\(7.*y_pred.*\(6"):
            CompileLoss(identifier).weighted_sum(y, p, None)


def test_per_sample_weights_against_sequence_losses_raise():
    # Keras 3 rank-matches weights to the (n, t) losses; (n,) does not broadcast there.
    y, p, _ = make_case("sparse_categorical_crossentropy", "(n,t)|(n,t,k)", "none")
    model = _identity_model(p.shape, "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=re.escape("sample_weight.shape=(6,)")) as err:
        model.evaluate(p, y, sample_weight=np.ones(N, "float32"), verbose=0)
    assert "losses.shape=(6, 4)" in str(err.value)


# ----------------------------------------------------------- the model, trained
def _separable(n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n * 10).reshape(n, 10) + 1
    x = 2 * ((idx * 0.7548776662466927 + (idx // 10) * 0.5698402909980532) % 1.0) - 1
    return x.astype("float32"), (x @ np.cos(np.arange(10) * 1.3) > 0).astype("float32")


def _binary_classifier() -> keras.Sequential:
    layers = keras.layers
    return keras.Sequential(
        [keras.Input((10,)), layers.Dense(16, activation="relu"), layers.Dense(1, "sigmoid")]
    )


def test_binary_classifier_with_1d_labels_learns_as_keras():
    # Keras 3.15.1 (jax) on these data, keras.utils.set_random_seed(s), epochs=10,
    # batch_size=32: evaluate accuracy 0.9785 (s=0), 0.9199 (s=1), 1.0 (s=2). Before the fix
    # the (n,) labels broadcast to (n, n) against the (n, 1) output and accuracy stayed ~0.6.
    x, y = _separable()
    assert y.shape == (512,) and 0.45 < y.mean() < 0.55
    keras.utils.set_random_seed(0)
    model = _binary_classifier()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy >= 0.9
    p = np.asarray(model.predict(x, verbose=0), "float64")[:, 0]
    np.testing.assert_allclose(accuracy, np.mean((p > 0.5) == (y > 0.5)))


@pytest.mark.parametrize("loss", ["binary_crossentropy", "hinge", "poisson", "kl_divergence"])
def test_string_loss_with_1d_labels_trains_as_the_class_with_2d_labels(loss):
    # The string (a function, wrapped by compile) with labels (n,) and the class with labels
    # (n, 1) must give the same training trajectory, to the last bit.
    x, y = _separable(96)
    start = _binary_classifier().get_weights()
    weights = []
    for identifier, labels in ((loss, y), (getattr(losses, CLASS_NAMES[loss])(), y[:, None])):
        model = _binary_classifier()
        model.set_weights(start)
        model.compile(optimizer="adam", loss=identifier)
        history = model.fit(x, labels, epochs=2, batch_size=32, shuffle=False, verbose=0)
        weights.append((model.get_weights(), history.history["loss"]))
    (w_string, h_string), (w_class, h_class) = weights
    assert h_string == h_class
    for a, b, s in zip(w_string, w_class, start):
        assert np.array_equal(a, b) and not np.array_equal(a, s)


# --------------------------------------------------- masks: ignore_class and y_pred's mask
_S = 5  # time steps of the masked cases


def _sequence_inputs() -> tuple:
    idx = np.arange(N * _S * 3).reshape(N, _S, 3) + 1
    p = (0.05 + 0.9 * ((idx * 0.7548776662466927) % 1.0)).astype("float32")
    labels = (np.arange(N * _S).reshape(N, _S) * 2 + 1) % 3
    sw = (0.25 + ((np.arange(N * _S) * 0.37) % 1.0)).reshape(N, _S).astype("float32")
    return idx, p, labels, {"none": None, "(n,1)": sw[:, :1], "(n,t)": sw}


# Keras 3.15.1: compile(loss=SparseCategoricalCrossentropy(ignore_class=0, reduction=r)) on
# an Identity model, evaluate(p, labels, sample_weight) of _sequence_inputs(), one batch.
KERAS_IGNORE_CLASS = {
    ("sum_over_batch_size", "none"): 1.1600406,
    ("sum", "none"): 23.200811,
    ("sum_over_batch_size", "(n,1)"): 0.86870307,
    ("sum", "(n,1)"): 17.37406,
    ("sum_over_batch_size", "(n,t)"): 0.88256925,
    ("sum", "(n,t)"): 17.651384,
}


@pytest.mark.parametrize("reduction, weight", sorted(KERAS_IGNORE_CLASS))
def test_ignore_class_in_compile_matches_keras(reduction, weight):
    _, p, labels, weights = _sequence_inputs()
    sw = weights[weight]
    loss = losses.SparseCategoricalCrossentropy(ignore_class=0, reduction=reduction)
    got = _identity_model(p.shape, loss).evaluate(p, labels, sample_weight=sw, verbose=0)
    np.testing.assert_allclose(got, KERAS_IGNORE_CLASS[reduction, weight], rtol=2e-6)
    # The formula: labels 0 get no loss and, for the mean, no share of the divisor.
    probs = p / p.sum(-1, keepdims=True)
    per_step = -np.log(np.take_along_axis(probs, labels[..., None], -1)[..., 0])
    total = (per_step * (labels != 0) * (1.0 if sw is None else sw)).sum()
    expected = total if reduction == "sum" else total / (labels != 0).sum()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# Keras 3.15.1: an output masked by keras.layers.Masking(0.5) (steps whose features are all
# 0.5 are masked, and zeroed), compile(loss=...), evaluate(x, y, sample_weight) in one batch.
KERAS_MASKED = {
    ("binary_crossentropy", "none"): 0.89548349,
    ("binary_crossentropy", "(n,1)"): 0.65828007,
    ("binary_crossentropy", "(n,t)"): 0.69763094,
    ("mse", "none"): 0.29593053,
    ("mse", "(n,1)"): 0.19770546,
    ("mse", "(n,t)"): 0.21682864,
}


def _masked_case(loss: str) -> tuple:
    idx, p, labels, weights = _sequence_inputs()
    p[1, 3:], p[4, 1:], p[0, 0] = 0.5, 0.5, 0.5
    if loss == "mse":
        return p, (idx % 2).astype("float32"), weights
    return p[..., :1], (labels[..., None] > 0).astype("float32"), weights


@pytest.mark.parametrize("loss, weight", sorted(KERAS_MASKED))
def test_masked_output_matches_keras(loss, weight):
    x, y, weights = _masked_case(loss)
    inp = keras.Input(x.shape[1:])
    model = keras.Model(inp, keras.layers.Masking(0.5)(inp))
    model.compile(loss=loss)
    got = model.evaluate(x, y, sample_weight=weights[weight], batch_size=N, verbose=0)
    np.testing.assert_allclose(got, KERAS_MASKED[loss, weight], rtol=2e-6)


def test_step_mask_against_losses_averaged_over_steps_raises():
    # Labels (n, t) against an output (n, t, 1): the loss averages over the steps, so the
    # per-step mask cannot weigh it. Keras 3.15.1 raises too (a broadcasting error).
    x, y, _ = _masked_case("binary_crossentropy")
    inp = keras.Input(x.shape[1:])
    model = keras.Model(inp, keras.layers.Masking(0.5)(inp))
    model.compile(loss="binary_crossentropy")
    with pytest.raises(
        ValueError, match=re.escape("sample_weight.shape=(6, 5), losses.shape=(6,)")
    ):
        model.evaluate(x, y[..., 0], verbose=0)


def test_a_users_loss_function_is_rank_matched_too():
    # Keras 3 wraps any function given to compile in LossFunctionWrapper: a user's squared
    # error sees labels (n, 1) for an (n, 1) output and gives Keras's mean_squared_error.
    def my_squared_error(y_true, y_pred):
        assert tuple(y_true.shape) == tuple(y_pred.shape) == (N, 1)
        return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    for weight in ("none", "(n,)", "(n,1)"):
        y, p, sw = make_case("mean_squared_error", "(n,)|(n,1)", weight)
        got = _identity_model(p.shape, my_squared_error).evaluate(p, y, sample_weight=sw, verbose=0)
        expected = _keras_value("mean_squared_error", "(n,)|(n,1)", weight)
        np.testing.assert_allclose(got, expected, rtol=2e-6)
