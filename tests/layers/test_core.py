"""Core layers through the shared harness, plus their argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import layers, ops
from tests.layers.harness import run_layer_test

CORE_CASES = [
    ("dense", layers.Dense, {"units": 4}, (2, 3), (2, 4), 2),
    (
        "dense_relu_nobias",
        layers.Dense,
        {"units": 3, "activation": "tanh", "use_bias": False},
        (2, 5),
        (2, 3),
        1,
    ),
    ("dense_3d", layers.Dense, {"units": 2}, (2, 3, 4), (2, 3, 2), 2),
    ("activation", layers.Activation, {"activation": "sigmoid"}, (2, 3), (2, 3), 0),
    ("dropout_inference", layers.Dropout, {"rate": 0.5}, (2, 3), (2, 3), 0),
    ("flatten", layers.Flatten, {}, (2, 3, 4), (2, 12), 0),
    ("flatten_cf", layers.Flatten, {"data_format": "channels_first"}, (2, 3, 4), (2, 12), 0),
    ("reshape", layers.Reshape, {"target_shape": (4, -1)}, (2, 3, 4), (2, 4, 3), 0),
    ("permute", layers.Permute, {"dims": (2, 1)}, (2, 3, 4), (2, 4, 3), 0),
    ("repeat_vector", layers.RepeatVector, {"n": 3}, (2, 4), (2, 3, 4), 0),
    (
        "activity_regularization",
        layers.ActivityRegularization,
        {"l1": 0.1, "l2": 0.2},
        (2, 3),
        (2, 3),
        0,
    ),
    ("identity", layers.Identity, {}, (2, 3), (2, 3), 0),
]


@pytest.mark.parametrize(
    "name,cls,kwargs,in_shape,out_shape,n_weights", CORE_CASES, ids=[c[0] for c in CORE_CASES]
)
def test_core_layer(name, cls, kwargs, in_shape, out_shape, n_weights):
    run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=n_weights,
    )


def test_dense_matches_the_guide_example():
    layer = layers.Dense(2, use_bias=False, kernel_initializer="zeros")
    layer.build((None, 2))
    layer.set_weights([np.array([[0.5, 0.75], [0.25, 0.5]])])
    out = layer(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(np.asarray(out), [[1.0, 1.75], [2.5, 4.25]])


def test_dense_formula_with_bias_and_activation():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    layer = layers.Dense(2, activation="relu", bias_initializer="ones")
    out = np.asarray(layer(x))
    k, b = layer.get_weights()
    np.testing.assert_allclose(out, np.maximum(x @ k + b, 0), rtol=1e-6)


def test_lambda_layer_gradients_flow():
    run_layer_test(
        layers.Lambda, {"function": ops.square}, input_shape=(2, 3), expected_output_shape=(2, 3)
    )


def test_dropout_training_scales_kept_units_and_is_seeded():
    x = np.ones((200, 50), dtype="float32")
    a = np.asarray(layers.Dropout(0.3, seed=1)(x, training=True))
    b = np.asarray(layers.Dropout(0.3, seed=1)(x, training=True))
    np.testing.assert_array_equal(a, b)
    kept = a[a != 0]
    np.testing.assert_allclose(kept, 1 / 0.7, rtol=1e-6)
    assert abs((a == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(np.asarray(layers.Dropout(0.3)(x)), x)  # inference


def test_dropout_noise_shape_broadcasts_the_mask():
    x = np.ones((4, 5, 6), dtype="float32")
    out = np.asarray(layers.Dropout(0.5, noise_shape=(None, 1, 6), seed=3)(x, training=True))
    assert (out == out[:, :1, :]).all()


def test_activity_regularization_adds_per_sample_penalty():
    layer = layers.ActivityRegularization(l1=0.1, l2=0.2)
    x = np.array([[1.0, -2.0], [3.0, 0.0]], dtype="float32")
    layer(x)
    (loss,) = layer.losses
    expected = (0.1 * np.abs(x).sum() + 0.2 * (x**2).sum()) / 2
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.Dense(-3), "Received: units=-3"),
        (lambda: layers.Dense(0), "Received: units=0"),
        (lambda: layers.Dense(2.5), "Received: units=2.5"),
        (lambda: layers.Dropout(1.0), "Received: rate=1.0"),
        (lambda: layers.Dropout(-0.1), "Received: rate=-0.1"),
        (lambda: layers.Dense(3, activation="nope"), "nope"),
        (lambda: layers.Dense(3, kernel_initializer="nope"), "nope"),
        (lambda: layers.Reshape((2, -1, -1)), "target_shape"),
        (lambda: layers.Permute((1, 3)), "dims"),
        (lambda: layers.RepeatVector(0), "Received: n=0"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unitz"):
        layers.Dense(3, unitz=4)


def test_built_dense_rejects_wrong_input_dim():
    layer = layers.Dense(2)
    layer(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3"):
        layer(np.zeros((1, 4)))


def test_custom_layer_gets_gradients_without_backward_code():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x):
            return ops.tanh(ops.multiply(x, self.w))

        def get_config(self):
            return super().get_config()

    from distkeras.saving import register_keras_serializable

    register_keras_serializable("tests")(Scale)
    run_layer_test(
        Scale,
        {},
        input_shape=(3, 4),
        expected_output_shape=(3, 4),
        expected_num_trainable_weights=1,
    )


def test_trainable_flag_freezes_weights():
    layer = layers.Dense(2)
    layer(np.zeros((1, 3)))
    assert len(layer.trainable_weights) == 2
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    layer.trainable = True
    assert len(layer.trainable_weights) == 2


def test_set_weights_validates_count_and_shapes():
    layer = layers.Dense(2)
    layer(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="expects 2 weights"):
        layer.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"not compatible"):
        layer.set_weights([np.zeros((2, 2)), np.zeros(2)])
