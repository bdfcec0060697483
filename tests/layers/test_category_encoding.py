"""CategoryEncoding against Keras 3.15.1 (jax) outputs on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.backend import to_numpy
from tests.layers.harness import run_layer_test

L = layers.CategoryEncoding


def test_one_hot_multi_hot_and_count_match_keras():
    one_hot = to_numpy(L(num_tokens=4, output_mode="one_hot")(np.array([3, 2, 0, 1])))
    np.testing.assert_array_equal(one_hot, np.eye(4)[[3, 2, 0, 1]])
    assert L(num_tokens=4, output_mode="one_hot")(np.array([[3], [2]])).shape == (2, 4)
    assert L(num_tokens=4, output_mode="one_hot")(np.array([[3, 1], [2, 0]])).shape == (2, 2, 4)
    multi = to_numpy(
        L(num_tokens=4, output_mode="multi_hot")(np.array([[0, 1], [0, 0], [1, 2], [3, 1]]))
    )
    np.testing.assert_array_equal(multi, [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]])
    # a rank-1 input is one sample
    np.testing.assert_array_equal(to_numpy(L(num_tokens=4)(np.array([3, 2]))), [0, 0, 1, 1])
    ids = np.array([[0, 1, 1], [3, 3, 3]])
    count = to_numpy(L(num_tokens=4, output_mode="count")(ids))
    np.testing.assert_array_equal(count, [[1, 2, 0, 0], [0, 0, 0, 3]])
    weighted = L(num_tokens=4, output_mode="count")(
        ids, count_weights=np.array([[0.1, 0.2, 0.3], [1.0, 1.0, 2.0]])
    )
    np.testing.assert_allclose(to_numpy(weighted), [[0.1, 0.5, 0, 0], [0, 0, 0, 4.0]], rtol=1e-6)
    out = L(num_tokens=3)(np.array([[5], [-1]]))  # out of range: zeros (Keras on JAX)
    assert out.dtype == "float32"
    np.testing.assert_array_equal(to_numpy(out), np.zeros((2, 3)))


def test_shapes_config_and_errors():
    assert L(num_tokens=4).compute_output_shape((None, 3)) == (None, 4)
    one_hot = L(num_tokens=3, output_mode="one_hot")
    assert one_hot.compute_output_shape((None,)) == (None, 3)
    assert one_hot.compute_output_shape((None, 1)) == (None, 3)
    assert one_hot.compute_output_shape((None, 2)) == (None, 2, 3)
    config = L(num_tokens=4).get_config()
    assert config["num_tokens"] == 4 and config["output_mode"] == "multi_hot"
    with pytest.raises(ValueError, match="num_tokens must be set.*Received: num_tokens=None"):
        L()
    with pytest.raises(ValueError, match="Received: num_tokens=0"):
        L(num_tokens=0)
    with pytest.raises(ValueError, match="Received: output_mode='tf_idf'"):
        L(num_tokens=3, output_mode="tf_idf")
    with pytest.raises(ValueError, match="count_weights"):
        L(num_tokens=3)(np.array([[1]]), count_weights=np.array([[1.0]]))


@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "count"])
def test_harness_and_functional_model(mode):
    run_layer_test(
        L,
        {"num_tokens": 5, "output_mode": mode},
        input_shape=(3, 2),
        input_dtype="int64",
        expected_output_shape=(3, 2, 5) if mode == "one_hot" else (3, 5),
    )
    inputs = keras.Input((2,), dtype="int64")
    model = keras.Model(inputs, keras.layers.Dense(1)(L(num_tokens=5, output_mode=mode)(inputs)))
    expected = (None, 2, 1) if mode == "one_hot" else (None, 1)
    assert model.output_shape == expected
    batch = np.array([[0, 4], [2, 2]])
    np.testing.assert_allclose(model.predict(batch, verbose=0), to_numpy(model(batch)), rtol=1e-6)
