"""Embedding and Masking: the shared harness, reference values, masks, errors."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import layers, ops
from distkeras.backend import GradientTape, to_numpy
from tests.layers.harness import run_layer_test

CASES = [
    ("embedding", layers.Embedding, {"input_dim": 10, "output_dim": 3}, (2, 4), (2, 4, 3)),
    (
        "embedding_mask_zero",
        layers.Embedding,
        {"input_dim": 10, "output_dim": 2, "mask_zero": True},
        (3, 5),
        (3, 5, 2),
    ),
    (
        "embedding_3d_regularized",
        layers.Embedding,
        {
            "input_dim": 12,
            "output_dim": 2,
            "embeddings_regularizer": "l2",
            "embeddings_initializer": "random_normal",
        },
        (2, 2, 3),
        (2, 2, 3, 2),
    ),
]


@pytest.mark.parametrize("name,cls,kwargs,in_shape,out_shape", CASES, ids=[c[0] for c in CASES])
def test_embedding_harness(name, cls, kwargs, in_shape, out_shape):
    run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=1,
        input_dtype="int32",
    )


def test_masking_harness():
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    x[0, 1] = 0.0
    expected = x.copy()
    run_layer_test(
        layers.Masking,
        {"mask_value": 0.0},
        input_data=x,
        expected_output=expected,
        expected_output_shape=(2, 4, 3),
        expected_num_trainable_weights=0,
        # Finite differences would move the padded step off mask_value (a jump).
        check_input_grad=False,
    )
    run_layer_test(layers.Masking, {"mask_value": 5.0}, input_shape=(2, 3, 2))


def test_embedding_values_mask_and_gradient():
    layer = layers.Embedding(6, 4, mask_zero=True)
    ids = np.array([[1, 5, 5, 0], [0, 2, 1, 1]], dtype="int64")
    out = layer(ids)
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(to_numpy(out), table[ids])
    np.testing.assert_array_equal(np.asarray(out._keras_mask), ids != 0)
    assert out.dtype == "float32"
    w = np.random.default_rng(1).normal(size=out.shape).astype("float32")
    with GradientTape() as tape:
        loss = ops.sum(ops.multiply(layer(ids), w))
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    expected = np.zeros_like(table)
    np.add.at(expected, ids.ravel(), w.reshape(-1, 4))
    np.testing.assert_allclose(to_numpy(grad), expected, rtol=1e-6)
    # Float ids are cast to integers, as Keras does.
    np.testing.assert_array_equal(to_numpy(layer(ids.astype("float32"))), table[ids])
    assert layers.Embedding(6, 4)(ids)._keras_mask is None


def test_embedding_defaults_config_and_keras2_arguments():
    layer = layers.Embedding(100, 8, input_length=5)
    cfg = layer.get_config()
    assert (cfg["input_dim"], cfg["output_dim"], cfg["mask_zero"]) == (100, 8, False)
    assert cfg["embeddings_initializer"]["class_name"] == "RandomUniform"
    assert "input_length" not in cfg
    assert layer.compute_output_shape((None, 5)) == (None, 5, 8)
    weights = np.arange(12.0).reshape(4, 3).astype("float32")
    preset = layers.Embedding(4, 3, weights=[weights])
    np.testing.assert_array_equal(to_numpy(preset(np.array([[3, 0]]))), weights[[[3, 0]]])
    assert layers.Embedding(4, 3, weights=weights).embeddings.numpy()[3, 2] == 11.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"input_dim": 0, "output_dim": 3}, "Received: input_dim=0"),
        ({"input_dim": 5, "output_dim": -1}, "Received: output_dim=-1"),
        ({"input_dim": 2.5, "output_dim": 3}, "Received: input_dim=2.5"),
    ],
)
def test_embedding_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.Embedding(**kwargs)


def test_masking_mask_and_zeroed_steps():
    x = np.ones((2, 3, 2), "float32")
    x[0, 1] = -1.0
    x[1, 2] = [-1.0, 0.5]  # not every feature equals mask_value: kept
    out = layers.Masking(mask_value=-1.0)(x)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), [[1, 0, 1], [1, 1, 1]])
    np.testing.assert_array_equal(to_numpy(out)[0, 1], 0.0)
    np.testing.assert_array_equal(to_numpy(out)[1, 2], x[1, 2])
    with pytest.raises(ValueError, match="Received: mask_value='x'"):
        layers.Masking("x")
