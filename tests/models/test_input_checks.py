"""Bad data at the API boundary, written as the user's mistakes: each fails at once, by name."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import layers
from distkeras.models import Model, Sequential
from distkeras.models.input_checks import first_nonfinite
from distkeras.utils import set_random_seed


def compiled_model():
    set_random_seed(0)
    model = Sequential(
        [
            layers.Dense(8, activation="tanh", input_shape=(4,)),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def data(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_untouched(model, before):
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- NaN / inf
def test_nan_in_x_is_refused_before_training_naming_the_first_bad_index():
    model = compiled_model()
    model.predict(np.zeros((1, 4), "float32"), verbose=0)  # built: weights exist
    before = weights_of(model)
    x, y = data()
    x[3, 2] = np.nan  # a missing value left in a feature table
    x[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf.*Received: x\[3, 2\]=nan"):
        model.fit(x, y, epochs=1, verbose=0)
    assert_untouched(model, before)


def test_inf_in_y_is_refused():
    model = compiled_model()
    x, _ = data()
    y = np.linspace(0.0, 1.0, 40).astype("float32")
    y[11] = np.inf  # a division by zero upstream
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"`y` contains NaN or inf.*Received: y\[11\]=inf"):
        model.fit(x, y, verbose=0)


def test_nan_in_sample_weight_is_refused():
    model = compiled_model()
    x, y = data()
    sw = np.ones(40, "float32")
    sw[5] = np.nan
    with pytest.raises(
        ValueError, match=r"`sample_weight` contains NaN.*Received: sample_weight\[5\]=nan"
    ):
        model.fit(x, y, sample_weight=sw, verbose=0)


def test_nan_in_validation_data_evaluate_and_predict_is_refused():
    model = compiled_model()
    x, y = data()
    bad = x.copy()
    bad[0, 1] = -np.inf
    with pytest.raises(ValueError, match=r"Received: x\[0, 1\]=-inf"):
        model.fit(x, y, validation_data=(bad, y), verbose=0)
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf"):
        model.evaluate(bad, y, verbose=0)
    with pytest.raises(ValueError, match=r"`x` contains NaN or inf"):
        model.predict(bad, verbose=0)


def test_nan_in_one_input_of_a_dict_names_that_input():
    from distkeras.layers import Concatenate, Dense, Input

    a, b = Input((2,), name="a"), Input((3,), name="b")
    model = Model({"a": a, "b": b}, Dense(1)(Concatenate()([a, b])))
    model.compile(optimizer="sgd", loss="mse")
    xb = np.ones((6, 3), "float32")
    xb[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"`x\['b'\]` contains NaN.*x\['b'\]\[4, 2\]=nan"):
        model.fit({"a": np.ones((6, 2), "float32"), "b": xb}, np.ones((6, 1)), verbose=0)


def test_the_on_batch_methods_refuse_nan_too():
    model = compiled_model()
    x, y = data(8)
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"Received: x\[2, 3\]=nan"):
        model.train_on_batch(x, y)
    with pytest.raises(ValueError, match=r"Received: x\[2, 3\]=nan"):
        model.test_on_batch(x, y)
    with pytest.raises(ValueError, match=r"Received: x\[2, 3\]=nan"):
        model.predict_on_batch(x)


def test_check_finite_false_trains_silently_to_nan_like_keras():
    # Keras 3.15.1 (jax backend) on this model and data with x[3, 2] = NaN,
    # batch_size=8, shuffle=False: history {'loss': [nan]}, every kernel NaN.
    model = compiled_model()
    x, y = data()
    x[3, 2] = np.nan
    history = model.fit(x, y, batch_size=8, shuffle=False, verbose=0, check_finite=False)
    assert np.isnan(history.history["loss"][0])
    assert np.isnan(model.get_weights()[0]).all()
    assert np.isnan(model.evaluate(x, y, verbose=0, check_finite=False))
    pred = model.predict(x, verbose=0, check_finite=False)
    assert pred.shape == (40, 3) and np.isnan(pred).all()


def test_an_overflowing_sum_of_finite_values_is_not_an_error():
    x = np.full((4, 3), 3e38, "float32")  # the sum overflows to inf; every value is finite
    with np.errstate(over="ignore"):
        assert not np.isfinite(x.sum())
    assert first_nonfinite(x) is None
    x[2, 1] = np.nan
    assert first_nonfinite(x) == (2, 1)


# ---------------------------------------------------------------- empty data
def test_zero_samples_are_refused_naming_x_and_its_shape():
    model = compiled_model()
    x, y = data()
    empty_x, empty_y = x[:0], y[:0]  # a filter that kept nothing
    with pytest.raises(ValueError, match=r"at least one sample in `x`.*shape \(0, 4\)"):
        model.fit(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match=r"at least one sample in `x`.*shape \(0, 4\)"):
        model.evaluate(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match=r"at least one sample in `x`.*shape \(0, 4\)"):
        model.predict(empty_x, verbose=0)
    with pytest.raises(ValueError, match=r"at least one sample in `x`"):
        model.train_on_batch(empty_x, empty_y)


def test_an_empty_batch_from_a_generator_is_refused():
    model = compiled_model()
    x, y = data()

    def batches():
        yield x[:8], y[:8]
        yield x[8:8], y[8:8]

    with pytest.raises(ValueError, match=r"at least one sample in `x`.*shape \(0, 4\)"):
        model.fit(batches(), steps_per_epoch=2, verbose=0)


# ---------------------------------------------------------------- non-numeric data
def test_a_string_array_x_is_refused_naming_x_and_its_dtype():
    model = compiled_model()
    _, y = data(3)
    x = np.array([["1.0", "2", "3", "4"]] * 3)  # numbers read from a CSV as text
    with pytest.raises(ValueError, match=r"numeric data .* in `x`.*Received: x with dtype <U3"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"Received: x with dtype <U3"):
        model.predict(x, verbose=0)


def test_an_object_array_y_is_refused_naming_y():
    model = compiled_model()
    x, _ = data(3)
    y = np.array([0, 1, None], dtype=object)  # a pandas column with a missing label
    with pytest.raises(ValueError, match=r"in `y`.*Received: y with dtype object"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"in `y`.*Received: y with dtype object"):
        model.test_on_batch(x, y)
    with pytest.raises(ValueError, match=r"in `y`.*Received: y with dtype object"):
        model.fit(x, y, class_weight={0: 2.0}, verbose=0)  # checked before weighting
    with pytest.raises(ValueError, match=r"in `y`.*Received: y with dtype object"):
        model.train_on_batch(x, y, class_weight={0: 2.0})


def test_a_generator_yielding_object_labels_is_refused():
    model = compiled_model()
    x, _ = data(8)
    gen = iter([(x, np.array(["a"] * 8, dtype=object))])
    with pytest.raises(ValueError, match=r"Received: y with dtype object"):
        model.fit(gen, steps_per_epoch=1, verbose=0)


def test_bool_and_integer_arrays_still_work_cast_like_floats():
    model = compiled_model()
    x_int = np.random.default_rng(1).integers(-3, 4, size=(12, 4))
    x_bool = x_int > 0
    y = np.arange(12) % 3
    model.fit(x_int, y, verbose=0)
    model.fit(x_bool, y.astype("int32"), verbose=0)
    np.testing.assert_allclose(
        model.predict(x_bool, verbose=0),
        model.predict(x_bool.astype("float32"), verbose=0),
        rtol=1e-6,
    )
    assert np.isfinite(model.evaluate(x_int, y, verbose=0))


def test_text_models_still_take_string_arrays():
    vectorizer = layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    vectorizer.adapt(["the cat sat", "a dog ran", "the dog sat"])
    model = Sequential([vectorizer, layers.Embedding(20, 3), layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    texts = np.array(["the cat", "a dog ran", "sat"])
    history = model.fit(texts, np.ones((3, 1), "float32"), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(texts.astype(object), verbose=0).shape == (3, 1)
    with pytest.raises(ValueError, match=r"Received: y with dtype <U1"):
        model.fit(texts, np.array(["1", "0", "1"]), verbose=0)  # labels left as text
