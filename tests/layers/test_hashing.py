"""Hashing against Keras 3.15.1 (which hashes with TensorFlow's FarmHash / SipHash).

Every expected bin below was recorded from Keras 3.15.1 (TensorFlow backend) on the same
inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.backend import to_numpy

STRINGS = np.array(
    [
        "",
        "a",
        "abcd",
        "twelve bytes",
        "seventeen bytes!!",
        "x" * 32,
        "y" * 33,
        "z" * 64,
        "w" * 65,
        "héllo wörld",
        "".join(chr(97 + i % 26) for i in range(200)),
    ]
)
WORDS = np.array(
    ["a", "b", "hello", "", "A longer string with more than sixty-four bytes in it, to loop once!"]
)


def _np(x):
    return np.asarray(to_numpy(x.data))


def test_hashing_strings_every_length_class():
    # Keras 3.15.1, num_bins=2**31-1: covers FarmHash's 0-16, 17-32, 33-64, >64 byte paths.
    fast = [
        1699943623,
        493484721,
        2127136445,
        485305481,
        859558449,
        848040801,
        470090442,
        2083540921,
        393034977,
        273425066,
        870948906,
    ]
    strong = [
        313311411,
        219370955,
        1983570072,
        296818629,
        664984006,
        1588015849,
        1284344556,
        1415377736,
        35727320,
        1092232591,
        726379265,
    ]
    np.testing.assert_array_equal(_np(layers.Hashing(num_bins=2**31 - 1)(STRINGS)), fast)
    salted = layers.Hashing(num_bins=2**31 - 1, salt=(7, 2**40 + 3))
    np.testing.assert_array_equal(_np(salted(STRINGS)), strong)


def test_hashing_small_bins_mask_and_salt():
    # Keras 3.15.1
    np.testing.assert_array_equal(_np(layers.Hashing(num_bins=7)(WORDS)), [5, 2, 5, 6, 5])
    np.testing.assert_array_equal(
        _np(layers.Hashing(num_bins=1000)(WORDS)), [939, 822, 296, 263, 9]
    )
    masked = layers.Hashing(num_bins=7, mask_value="")
    np.testing.assert_array_equal(_np(masked(WORDS)), [4, 5, 5, 0, 4])
    np.testing.assert_array_equal(_np(layers.Hashing(num_bins=7, salt=133)(WORDS)), [4, 5, 0, 6, 5])
    np.testing.assert_array_equal(
        _np(layers.Hashing(num_bins=7, salt=(1, 2))(WORDS)), [1, 1, 6, 5, 3]
    )
    assert layers.Hashing(num_bins=5, salt=3).get_config()["salt"] == [3, 3]


def test_hashing_numbers_hash_their_decimal_string():
    ints = np.array([[1, 2], [3, -5], [1000, 0]])
    # Keras 3.15.1 (floats are truncated to integers first)
    np.testing.assert_array_equal(_np(layers.Hashing(num_bins=7)(ints)), [[5, 5], [2, 0], [0, 2]])
    masked = layers.Hashing(num_bins=7, mask_value=0)
    np.testing.assert_array_equal(_np(masked(ints)), [[4, 2], [4, 1], [6, 0]])
    np.testing.assert_array_equal(
        _np(layers.Hashing(num_bins=7)(np.array([1.5, 2.0, -0.7]))), [5, 5, 2]
    )
    out = layers.Hashing(num_bins=7)(np.array([3]))
    assert str(out.dtype) == "int64"


def test_hashing_bag_modes():
    pairs = np.array([["a", "b"], ["hello", "hello"]])
    # Keras 3.15.1
    multi = layers.Hashing(num_bins=5, output_mode="multi_hot")
    np.testing.assert_array_equal(_np(multi(pairs)), [[0, 0, 1, 0, 1], [0, 1, 0, 0, 0]])
    np.testing.assert_array_equal(_np(multi(np.array(["a", "b"]))), [0, 0, 1, 0, 1])
    count = layers.Hashing(num_bins=5, output_mode="count")
    np.testing.assert_array_equal(_np(count(pairs)), [[0, 0, 1, 0, 1], [0, 2, 0, 0, 0]])
    onehot = layers.Hashing(num_bins=5, output_mode="one_hot")
    np.testing.assert_array_equal(
        _np(onehot(np.array([["a"], ["b"]]))), [[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]
    )
    assert onehot.compute_output_shape((None, 1)) == (None, 5)


def test_hashing_in_a_functional_model_and_config_round_trip():
    inputs = keras.Input(shape=(1,), dtype="string")
    outputs = layers.Hashing(num_bins=5, output_mode="one_hot", salt=9)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.array([["a"], ["hello"], ["zz"]])
    clone = keras.Model.from_config(model.get_config())
    np.testing.assert_array_equal(
        np.asarray(clone.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0))
    )
    layer = layers.Hashing(num_bins=9, mask_value="", salt=(3, 4))
    again = layers.deserialize(layers.serialize(layer))
    np.testing.assert_array_equal(_np(again(WORDS)), _np(layer(WORDS)))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_bins": 0}, "num_bins=0"),
        ({"num_bins": 3, "output_mode": "tf_idf"}, "output_mode=tf_idf"),
        ({"num_bins": 3, "salt": "x"}, "salt=x"),
        ({"num_bins": 3, "sparse": True}, "sparse=True"),
    ],
)
def test_hashing_errors(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        layers.Hashing(**kwargs)
