"""StringLookup, IntegerLookup and Discretization against Keras 3.15.1.

Every expected vocabulary, output and bin boundary below was recorded from Keras 3.15.1
(TensorFlow backend, which its lookup layers use) on the same inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.backend import to_numpy
from tests.layers.harness import run_layer_test

WORDS = np.array(["b", "a", "c", "a", "b", "d", "b"])


def _np(x):
    return np.asarray(to_numpy(x.data if hasattr(x, "data") else x))


# ---------------------------------------------------------------- StringLookup
def test_string_lookup_adapt_orders_by_count_then_descending_token():
    layer = layers.StringLookup()
    layer.adapt(WORDS)
    # Keras 3.15.1: ['[UNK]', 'b', 'a', 'd', 'c'], [2 0 1]
    assert layer.get_vocabulary() == ["[UNK]", "b", "a", "d", "c"]
    assert layer.get_vocabulary(include_special_tokens=False) == ["b", "a", "d", "c"]
    assert layer.vocabulary_size() == 5
    np.testing.assert_array_equal(_np(layer(np.array(["a", "z", "b"]))), [2, 0, 1])
    np.testing.assert_array_equal(_np(layer(np.array([["a", "b"], ["z", "a"]]))), [[2, 1], [0, 2]])
    small = layers.StringLookup(max_tokens=3)
    small.adapt(np.array(["a", "b", "a", "c"]))
    assert small.get_vocabulary() == ["[UNK]", "a", "c"]  # Keras 3.15.1
    batched = layers.StringLookup()
    batched.adapt([WORDS[:3], WORDS[3:]])  # an iterable of batches counts the same
    assert batched.get_vocabulary() == layer.get_vocabulary()
    pairs = layers.StringLookup()
    pairs.adapt((WORDS[i : i + 2], np.zeros(2)) for i in range(0, 7, 2))  # (x, y) batches
    assert pairs.get_vocabulary() == layer.get_vocabulary()


def test_string_lookup_mask_token_and_invert():
    layer = layers.StringLookup(mask_token="")
    layer.adapt(WORDS)
    # Keras 3.15.1: ['', '[UNK]', 'b', 'a', 'd', 'c'], [3 1 0 1 2]
    assert layer.get_vocabulary() == ["", "[UNK]", "b", "a", "d", "c"]
    np.testing.assert_array_equal(_np(layer(np.array(["a", "z", "", "q", "b"]))), [3, 1, 0, 1, 2])
    inv = layers.StringLookup(vocabulary=["x", "y"], mask_token="", invert=True)
    # Keras 3.15.1: [b'' b'[UNK]' b'x' b'y' b'[UNK]']
    out = inv(np.array([0, 1, 2, 3, 9]))
    assert list(out) == ["", "[UNK]", "x", "y", "[UNK]"]
    # Special tokens at the head of a passed vocabulary are dropped (Keras 3.15.1).
    assert layers.StringLookup(vocabulary=["[UNK]", "x", "y"]).get_vocabulary() == [
        "[UNK]",
        "x",
        "y",
    ]


def test_string_lookup_bag_modes():
    onehot = layers.StringLookup(output_mode="one_hot")
    onehot.adapt(WORDS)
    # Keras 3.15.1
    np.testing.assert_array_equal(
        _np(onehot(np.array(["a", "z", "b"]))), [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
    )
    multi = layers.StringLookup(output_mode="multi_hot")
    multi.adapt(WORDS)
    # Keras 3.15.1: a rank-1 input is one sample; rank 2 is one sample per row.
    np.testing.assert_array_equal(_np(multi(np.array(["a", "z", "b"]))), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(
        _np(multi(np.array([["a"], ["z"]]))), [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]
    )
    masked = layers.StringLookup(output_mode="multi_hot", mask_token="")
    masked.adapt(np.array(["a", "b", "a"]))
    # Keras 3.15.1: outside 'int' mode the mask token has no index and is dropped.
    assert masked.get_vocabulary() == ["[UNK]", "a", "b"]
    np.testing.assert_array_equal(
        _np(masked(np.array([["a", ""], ["", "z"]]))), [[0, 1, 0], [1, 0, 0]]
    )
    masked1 = layers.StringLookup(output_mode="one_hot", mask_token="", vocabulary=["a", "b"])
    np.testing.assert_array_equal(
        _np(masked1(np.array(["a", "", "z"]))), [[0, 1, 0], [0, 0, 0], [1, 0, 0]]
    )
    padded = layers.StringLookup(pad_to_max_tokens=True, max_tokens=6, output_mode="count")
    padded.adapt(np.array(["a", "b", "a"]))
    np.testing.assert_array_equal(_np(padded(np.array(["a", "a", "z"]))), [1, 2, 0, 0, 0, 0])
    assert padded.compute_output_shape((None, 3)) == (None, 6)


def test_string_lookup_tf_idf():
    layer = layers.StringLookup(output_mode="tf_idf")
    layer.adapt(np.array([["a", "b"], ["a", "c"], ["b", "b"]]))
    # Keras 3.15.1 (one document per row; OOV weight is the mean)
    assert layer.get_vocabulary() == ["[UNK]", "b", "a", "c"]
    np.testing.assert_allclose(
        layer.idf_weights, [0.76752836, 0.6931472, 0.6931472, 0.91629076], rtol=1e-6
    )
    np.testing.assert_allclose(
        _np(layer(np.array([["a", "z", "b", "b"]]))),
        [[0.76752836, 1.3862944, 0.6931472, 0.0]],
        rtol=1e-6,
    )
    flat = layers.StringLookup(output_mode="tf_idf")
    flat.adapt(np.array(["a", "b", "a"]))  # Keras 3.15.1: each element is a document
    np.testing.assert_allclose(flat.idf_weights, [0.804719, 0.6931472, 0.91629076], rtol=1e-6)
    given = layers.StringLookup(output_mode="tf_idf", vocabulary=["a", "b"], idf_weights=[1, 2])
    np.testing.assert_allclose(_np(given(np.array([["a", "z"]]))), [[1.5, 1.0, 0.0]])


def test_string_lookup_vocabulary_file_and_set_vocabulary(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("x\ny\nz\n", encoding="utf-8")
    layer = layers.StringLookup(vocabulary=str(path))
    assert layer.get_vocabulary() == ["[UNK]", "x", "y", "z"]
    layer.set_vocabulary(["q", "r"])
    np.testing.assert_array_equal(_np(layer(np.array(["r", "x"]))), [2, 0])
    assert layer.vocabulary_size() == 3


def test_lookup_binary_alias_scalars_and_no_oov():
    # keras.io "Structured data classification from scratch" uses these settings per sample.
    layer = layers.StringLookup(
        vocabulary=["fixed", "normal", "reversible"], num_oov_indices=0, output_mode="binary"
    )
    # Keras 3.15.1: output_mode becomes 'multi_hot'; 'normal' -> [0 1 0]
    assert layer.output_mode == "multi_hot" and layer.get_config()["output_mode"] == "multi_hot"
    assert layer.get_vocabulary() == ["fixed", "normal", "reversible"]
    np.testing.assert_array_equal(_np(layer("normal")), [0, 1, 0])
    np.testing.assert_array_equal(_np(layer(np.array(["fixed", "reversible"]))), [1, 0, 1])
    ints = layers.IntegerLookup(vocabulary=[0, 1, 2, 3], num_oov_indices=0, output_mode="binary")
    np.testing.assert_array_equal(_np(ints(np.int64(2))), [0, 0, 1, 0])
    onehot = layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")
    np.testing.assert_array_equal(_np(onehot("b")), [[0, 0, 1]])  # Keras 3.15.1: (1, 3)
    assert int(_np(layers.StringLookup(vocabulary=["a", "b"])("b"))) == 2


# ---------------------------------------------------------------- IntegerLookup
def test_integer_lookup_keras_outputs():
    layer = layers.IntegerLookup()
    layer.adapt(np.array([5, 3, 5, 7, 3, 5, 9]))
    # Keras 3.15.1: [-1, 5, 3, 9, 7], [1 2 0]
    assert layer.get_vocabulary() == [-1, 5, 3, 9, 7]
    np.testing.assert_array_equal(_np(layer(np.array([5, 3, 42]))), [1, 2, 0])
    numeric = layers.IntegerLookup()
    numeric.adapt(np.array([10, 9, 10, 9, 2, 100]))
    assert numeric.get_vocabulary() == [-1, 10, 9, 100, 2]  # ties: numeric, descending
    masked = layers.IntegerLookup(mask_token=0)
    masked.adapt(np.array([5, 3, 5, 7, 0, 0, 0]))
    assert masked.get_vocabulary() == [0, -1, 5, 7, 3]
    np.testing.assert_array_equal(_np(masked(np.array([5, 0, 42]))), [2, 0, 1])
    oov3 = layers.IntegerLookup(num_oov_indices=3)
    oov3.adapt(np.array([10, 9]))
    # Keras 3.15.1: unknown values go to slot value mod 3 (floormod for negatives)
    assert oov3.get_vocabulary() == [-1, -1, -1, 10, 9]
    np.testing.assert_array_equal(_np(oov3(np.array([10, 4, 5, 6, -7, 100]))), [3, 1, 2, 0, 2, 1])
    inv = layers.IntegerLookup(vocabulary=[3, 4], invert=True)
    np.testing.assert_array_equal(_np(inv(np.array([0, 1, 2]))), [-1, 3, 4])


def test_integer_lookup_bag_modes():
    multi = layers.IntegerLookup(max_tokens=3, output_mode="multi_hot", pad_to_max_tokens=True)
    multi.adapt(np.array([5, 3, 5, 7, 3, 5, 9]))
    assert multi.get_vocabulary() == [-1, 5, 3]  # Keras 3.15.1
    np.testing.assert_array_equal(_np(multi(np.array([[5, 3], [42, 42]]))), [[0, 1, 1], [1, 0, 0]])
    count = layers.IntegerLookup(output_mode="count")
    count.adapt(np.array([5, 3, 5]))
    np.testing.assert_array_equal(
        _np(count(np.array([[5, 5, 1], [3, 5, 3]]))), [[1, 2, 0], [0, 1, 2]]
    )
    masked = layers.IntegerLookup(mask_token=0, output_mode="multi_hot")
    masked.adapt(np.array([5, 3, 5, 0]))
    assert masked.get_vocabulary() == [-1, 5, 3]
    np.testing.assert_array_equal(_np(masked(np.array([[5, 0], [0, 9]]))), [[0, 1, 0], [1, 0, 0]])
    run_layer_test(
        layers.IntegerLookup,
        {"vocabulary": [3, 4], "output_mode": "one_hot"},
        input_data=np.array([[3], [4], [7]]),
        input_dtype="int64",
        expected_output=np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]),
        check_input_grad=False,
    )


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: layers.StringLookup(output_mode="bad"), "output_mode=bad"),
        (lambda: layers.StringLookup(sparse=True, output_mode="one_hot"), "sparse=True"),
        (lambda: layers.StringLookup(max_tokens=1), "max_tokens=1"),
        (lambda: layers.StringLookup(num_oov_indices=-1), "num_oov_indices=-1"),
        (lambda: layers.StringLookup(invert=True, output_mode="one_hot"), "output_mode=one_hot"),
        (lambda: layers.StringLookup(vocabulary=["a", "a"]), "repeated"),
        (lambda: layers.StringLookup(vocabulary=["a"], idf_weights=[1.0]), "output_mode=int"),
        (lambda: layers.StringLookup(vocabulary=["a", "b", "c"], max_tokens=3), "max_tokens"),
        (lambda: layers.StringLookup(vocabulary=["a"])([1, 2]), "Received: inputs containing 1"),
        (lambda: layers.IntegerLookup(vocabulary=[1], num_oov_indices=0)([2]), "num_oov_indices=0"),
        (lambda: layers.IntegerLookup(oov_token="x"), "oov_token='x'"),
        (lambda: layers.StringLookup(vocabulary="/no/such/file.txt"), "does not exist"),
    ],
)
def test_lookup_errors(make, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        make()


def test_string_lookup_several_oov_indices_hash_like_keras():
    layer = layers.StringLookup(vocabulary=["a", "b"], num_oov_indices=3)
    words = np.array(["a", "z", "q", "hello", "b", "", "longer than sixteen bytes"])
    # Keras 3.15.1 (FarmHash64 of the string mod 3 picks the OOV slot)
    assert layer.get_vocabulary() == ["[UNK]"] * 3 + ["a", "b"]
    np.testing.assert_array_equal(_np(layer(words)), [3, 1, 2, 1, 4, 2, 1])
    inv = layers.StringLookup(vocabulary=["a", "b"], num_oov_indices=3, invert=True)
    assert list(inv(np.array([0, 1, 2, 3, 4, 5]))) == ["[UNK]"] * 3 + ["a", "b", "[UNK]"]
    count = layers.StringLookup(vocabulary=["a", "b"], num_oov_indices=2, output_mode="count")
    np.testing.assert_array_equal(_np(count(np.array([["z", "q", "hello", "a"]]))), [[1, 2, 1, 0]])
    masked = layers.StringLookup(mask_token="", num_oov_indices=2)
    masked.adapt(WORDS)
    # Keras 3.15.1: ['', '[UNK]', '[UNK]', 'b', 'a', 'd', 'c'], [4 2 0 2 3]
    assert masked.get_vocabulary() == ["", "[UNK]", "[UNK]", "b", "a", "d", "c"]
    np.testing.assert_array_equal(_np(masked(np.array(["a", "z", "", "q", "b"]))), [4, 2, 0, 2, 3])


def test_lookup_config_round_trip_keeps_adapted_vocabulary():
    layer = layers.StringLookup(output_mode="tf_idf", name="lk")
    layer.adapt(np.array([["a", "b"], ["a", "c"], ["b", "b"]]))
    data = np.array([["a", "z", "c"], ["b", "b", "a"]])
    for clone in (
        layers.StringLookup.from_config(layer.get_config()),
        layers.deserialize(layers.serialize(layer)),
    ):
        assert clone.get_vocabulary() == layer.get_vocabulary()
        np.testing.assert_allclose(_np(clone(data)), _np(layer(data)))
    ints = layers.IntegerLookup(mask_token=0)
    ints.adapt(np.array([4, 4, 2]))
    again = layers.IntegerLookup.from_config(ints.get_config())
    assert again.get_vocabulary() == [0, -1, 4, 2]


def test_string_input_model_fits_and_survives_save_load(tmp_path):
    lookup = layers.StringLookup(output_mode="one_hot")
    lookup.adapt(np.array(["a", "b", "c", "a"]))
    inputs = keras.Input(shape=(1,), dtype="string")
    outputs = layers.Dense(1, activation="sigmoid")(lookup(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="binary_crossentropy")
    x = np.array([["a"], ["b"], ["c"], ["z"]] * 8)
    y = np.array([1, 0, 1, 0] * 8, dtype="float32")
    history = model.fit(x, y, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    pred = np.asarray(model.predict(x[:4], verbose=0)).ravel()
    assert (pred[[0, 2]] > 0.5).all() and (pred[[1, 3]] < 0.5).all()
    path = str(tmp_path / "lookup.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[1].get_vocabulary() == lookup.get_vocabulary()
    np.testing.assert_allclose(np.asarray(loaded.predict(x[:4], verbose=0)).ravel(), pred)


# ---------------------------------------------------------------- Discretization
X12 = np.array([0.1, 0.5, 0.2, 0.9, 1.3, 2.0, 0.7, 0.4, 0.3, 5.0, -1.0, 0.6])

# Keras 3.15.1: Discretization(num_bins=n).adapt(X12) -> bin_boundaries, outputs on X12
KERAS_BINS = {
    2: ([0.5], [0, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1]),
    3: ([0.30000001192092896, 0.699999988079071], [0, 1, 0, 2, 2, 2, 2, 1, 1, 2, 0, 1]),
    4: ([0.20000000298023224, 0.5, 0.8999999761581421], [0, 2, 1, 3, 3, 3, 2, 1, 1, 3, 0, 2]),
    5: (
        [0.14000000059604645, 0.3800000250339508, 0.6200000047683716, 1.1399999856948853],
        [0, 2, 1, 3, 4, 4, 3, 2, 1, 4, 0, 2],
    ),
}


@pytest.mark.parametrize("num_bins", sorted(KERAS_BINS))
def test_discretization_adapt_matches_keras_small(num_bins):
    layer = layers.Discretization(num_bins=num_bins)
    layer.adapt(X12)
    bins, out = KERAS_BINS[num_bins]
    np.testing.assert_allclose(layer.bin_boundaries, bins, rtol=1e-7)
    np.testing.assert_array_equal(_np(layer(X12)), out)


def test_discretization_adapt_matches_keras_sketch():
    y = np.random.default_rng(0).normal(size=1000)
    # Keras 3.15.1 on the same 1000 values (one array, three batches, coarse epsilon)
    cases = [
        ({}, y, [-0.6909445524215698, -0.07557335495948792, 0.6131889224052429]),
        ({"epsilon": 0.1}, y, [-0.7025648355484009, -0.07557269185781479, 0.6113674640655518]),
        (
            {},
            [y[:400], y[400:800], y[800:]],
            [-0.6799322962760925, -0.06368415057659149, 0.6334525942802429],
        ),
    ]
    for kwargs, data, bins in cases:
        layer = layers.Discretization(num_bins=4, **kwargs)
        layer.adapt(data)
        np.testing.assert_allclose(layer.bin_boundaries, bins, rtol=1e-6)
    coarse = layers.Discretization(num_bins=3, epsilon=0.25)
    coarse.adapt(y)
    np.testing.assert_allclose(
        coarse.bin_boundaries, [-0.48582038283348083, 0.3836017847061157], rtol=1e-6
    )


def test_discretization_output_modes():
    x = np.array([[-1.0, 0.5, 0.7], [3.0, 3.0, 1.0]])
    # Keras 3.15.1 with bin_boundaries=[0, 1, 2]
    expected = {
        "one_hot": [
            [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]],
            [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 0]],
        ],
        "multi_hot": [[1, 1, 0, 0], [0, 0, 1, 1]],
        "count": [[1, 2, 0, 0], [0, 0, 1, 2]],
    }
    for mode, out in expected.items():
        layer = layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode=mode)
        np.testing.assert_array_equal(_np(layer(x)), out)
        assert layer.compute_output_shape(x.shape) == np.shape(out)
    run_layer_test(
        layers.Discretization,
        {"bin_boundaries": [0.0, 1.0, 2.0]},
        input_data=np.array([[-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]]),
        expected_output=np.array([[0, 1, 1, 2, 3, 3]]),  # Keras 3.15.1
        check_input_grad=False,
    )


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: layers.Discretization(), "num_bins=None"),
        (lambda: layers.Discretization(num_bins=3, bin_boundaries=[1.0]), "num_bins=3"),
        (lambda: layers.Discretization(num_bins=3, output_mode="tf_idf"), "output_mode=tf_idf"),
        (lambda: layers.Discretization(num_bins=3, sparse=True), "sparse=True"),
        (lambda: layers.Discretization(bin_boundaries=[0.0]).adapt(X12), "num_bins=None"),
        (lambda: layers.Discretization(num_bins=2)(X12), "bin_boundaries=None"),
    ],
)
def test_discretization_errors(make, needle):
    with pytest.raises(ValueError, match=needle):
        make()
