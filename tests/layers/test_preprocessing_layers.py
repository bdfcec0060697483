"""Preprocessing layers: the shared harness plus hand-worked reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distkeras import layers
from distkeras.backend import to_numpy
from distkeras.layers.preprocessing import image_ops
from distkeras.utils import PyDataset
from tests.layers.harness import run_layer_test

IMG = (2, 5, 4, 3)
CASES = [
    ("rescaling", layers.Rescaling, {"scale": 1 / 255, "offset": -0.5}, IMG, IMG, False),
    ("rescaling_channels", layers.Rescaling, {"scale": [1.0, 2.0, 3.0]}, IMG, IMG, False),
    ("resizing_up", layers.Resizing, {"height": 7, "width": 6}, IMG, (2, 7, 6, 3), False),
    ("resizing_down", layers.Resizing, {"height": 3, "width": 2}, IMG, (2, 3, 2, 3), False),
    (
        "resizing_nearest",
        layers.Resizing,
        {"height": 3, "width": 3, "interpolation": "nearest"},
        IMG,
        (2, 3, 3, 3),
        False,
    ),
    (
        "resizing_crop",
        layers.Resizing,
        {"height": 2, "width": 2, "crop_to_aspect_ratio": True},
        IMG,
        (2, 2, 2, 3),
        False,
    ),
    (
        "resizing_pad",
        layers.Resizing,
        {"height": 2, "width": 2, "pad_to_aspect_ratio": True},
        IMG,
        (2, 2, 2, 3),
        False,
    ),
    (
        "resizing_cf",
        layers.Resizing,
        {"height": 3, "width": 3, "data_format": "channels_first"},
        (2, 3, 5, 4),
        (2, 3, 3, 3),
        False,
    ),
    ("center_crop", layers.CenterCrop, {"height": 3, "width": 2}, IMG, (2, 3, 2, 3), False),
    ("center_crop_up", layers.CenterCrop, {"height": 6, "width": 6}, IMG, (2, 6, 6, 3), False),
    ("normalization", layers.Normalization, {}, (4, 3), (4, 3), False),
    (
        "normalization_given",
        layers.Normalization,
        {"mean": [1.0, 2.0, 3.0], "variance": [4.0, 1.0, 0.25]},
        (4, 3),
        (4, 3),
        False,
    ),
    (
        "normalization_invert",
        layers.Normalization,
        {"mean": 2.0, "variance": 9.0, "invert": True, "axis": None},
        (4, 3),
        (4, 3),
        False,
    ),
]
RANDOM = [
    ("flip", layers.RandomFlip, {"seed": 1}),
    ("flip_h", layers.RandomFlip, {"mode": "horizontal", "seed": 1}),
    ("rotation", layers.RandomRotation, {"factor": 0.2, "seed": 1}),
    ("zoom", layers.RandomZoom, {"height_factor": (-0.3, 0.3), "seed": 1}),
    ("zoom_wh", layers.RandomZoom, {"height_factor": 0.2, "width_factor": 0.1, "seed": 1}),
    (
        "translation",
        layers.RandomTranslation,
        {"height_factor": 0.2, "width_factor": 0.3, "fill_mode": "constant", "seed": 1},
    ),
    ("contrast", layers.RandomContrast, {"factor": 0.5, "value_range": (-10, 10), "seed": 1}),
]


@pytest.mark.parametrize("name,cls,kwargs,shape,out_shape,_", CASES, ids=[c[0] for c in CASES])
def test_preprocessing_layer_harness(name, cls, kwargs, shape, out_shape, _):
    run_layer_test(
        cls,
        kwargs,
        input_shape=shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize("name,cls,kwargs", RANDOM, ids=[c[0] for c in RANDOM])
@pytest.mark.parametrize("training", [False, True])
def test_random_layer_harness(name, cls, kwargs, training):
    x = np.random.default_rng(0).uniform(0, 5, IMG)
    layer = run_layer_test(
        cls,
        kwargs,
        input_shape=IMG,
        input_data=x,
        expected_output_shape=IMG,
        training=training,
        expected_output=None if training else x,  # inference is the identity
    )
    assert layer.get_config()["seed"] == 1


@pytest.mark.parametrize("name,cls,kwargs", RANDOM, ids=[c[0] for c in RANDOM])
def test_random_layers_are_reproducible_with_a_seed(name, cls, kwargs):
    x = np.random.default_rng(1).uniform(0, 5, (6, 5, 4, 3)).astype("float32")
    a = to_numpy(cls(**kwargs)(x, training=True))
    b = to_numpy(cls(**kwargs)(x, training=True))
    np.testing.assert_array_equal(a, b)
    other = dict(kwargs, seed=2)
    c = to_numpy(cls(**other)(x, training=True))
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- reference values
@pytest.mark.parametrize("name,cls,kwargs", RANDOM, ids=[c[0] for c in RANDOM])
def test_random_layers_called_on_their_own_train_as_in_keras(name, cls, kwargs):
    # Keras 3.15: `training` is the explicit value, else the enclosing call's, else the
    # default of `call` (True for these layers). So `layer(x)`, a Sequential of them and
    # a Functional model called directly augment; training=False and predict() do not.
    import distkeras as keras

    x = np.random.default_rng(0).uniform(0, 5, (16, *IMG[1:])).astype("float32")
    layer = cls(**kwargs)
    assert not np.allclose(to_numpy(layer(x)), x)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x)
    seq = keras.Sequential([cls(**kwargs)])
    assert not np.allclose(to_numpy(seq(x)), x)
    np.testing.assert_array_equal(to_numpy(seq(x, training=False)), x)
    np.testing.assert_array_equal(seq.predict(x, verbose=0), x)
    inputs = keras.Input(IMG[1:])
    model = keras.Model(inputs, cls(**kwargs)(inputs))
    assert not np.allclose(to_numpy(model(x)), x)


def test_call_default_of_training_is_used_when_nothing_decides():
    # Keras 3.15: a custom layer's `call(x, training=True)` default holds on its own and
    # under a caller that leaves training=None; an outer training=False wins; Dropout's
    # default (False) keeps it off.
    class Doubles(layers.Layer):
        def call(self, x, training=True):
            return x * (2.0 if training else 1.0)

    class Outer(layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = Doubles()

        def call(self, x, training=None):
            return self.inner(x)

    one = np.ones((1, 1), "float32")
    assert float(to_numpy(Doubles()(one))[0, 0]) == 2.0
    assert float(to_numpy(Outer()(one))[0, 0]) == 2.0
    assert float(to_numpy(Outer()(one, training=False))[0, 0]) == 1.0
    np.testing.assert_array_equal(to_numpy(layers.Dropout(0.5)(np.ones((4, 4)))), 1.0)


def test_rescaling_formula():
    x = np.array([[0, 51, 255]], dtype="uint8")
    out = to_numpy(layers.Rescaling(1 / 255.0, offset=-1.0)(x))
    np.testing.assert_allclose(out, [[-1.0, -0.8, 0.0]], rtol=1e-6)
    assert out.dtype == np.float32


def test_resizing_bilinear_half_pixel_hand_values():
    # One axis [0, 4] -> 4 samples: sources -0.25, 0.25, 0.75, 1.25 (clamped).
    x = np.array([0.0, 4.0], dtype="float32").reshape(1, 1, 2, 1)
    out = to_numpy(layers.Resizing(1, 4)(x)).reshape(-1)
    np.testing.assert_allclose(out, [0.0, 1.0, 3.0, 4.0])
    # Downscaling 4 -> 2 reads source 0.5 and 2.5.
    x = np.arange(4, dtype="float32").reshape(1, 4, 1, 1)
    np.testing.assert_allclose(to_numpy(layers.Resizing(2, 1)(x)).reshape(-1), [0.5, 2.5])
    nearest = layers.Resizing(2, 1, interpolation="nearest")(x)
    np.testing.assert_allclose(to_numpy(nearest).reshape(-1), [1.0, 3.0])


def test_resizing_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 5, 7, 2))

    def ref_axis(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for i in range(n_out):
            src = (i + 0.5) * n_in / n_out - 0.5
            f = math.floor(src)
            lo, hi = min(max(f, 0), n_in - 1), min(max(f + 1, 0), n_in - 1)
            m[i, lo] += 1 - (src - f)
            m[i, hi] += src - f
        return m

    mh, mw = ref_axis(5, 3), ref_axis(7, 9)
    expected = np.einsum("ih,jw,nhwc->nijc", mh, mw, x)
    np.testing.assert_allclose(to_numpy(layers.Resizing(3, 9, dtype="float64")(x)), expected)


def test_unbatched_images():
    x = np.random.default_rng(0).normal(size=(5, 4, 3)).astype("float32")
    assert to_numpy(layers.Resizing(2, 6)(x)).shape == (2, 6, 3)
    out = to_numpy(layers.RandomFlip(seed=0)(x, training=True))
    assert out.shape == x.shape


def test_center_crop_and_smart_resize():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    out = to_numpy(layers.CenterCrop(2, 2)(x))[0, :, :, 0]
    np.testing.assert_array_equal(out, [[5, 6], [9, 10]])
    # smart_resize of a 2x4 image to 2x2 keeps the central 2x2 box.
    img = np.arange(8, dtype="float32").reshape(2, 4, 1)
    np.testing.assert_allclose(image_ops.smart_resize(img, (2, 2))[..., 0], [[1, 2], [5, 6]])


def test_random_rotation_by_a_quarter_turn_is_rot90():
    x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    out = to_numpy(layers.RandomRotation((0.25, 0.25), seed=0)(x, training=True))
    np.testing.assert_allclose(out[0, :, :, 0], np.rot90(x[0, :, :, 0]), atol=1e-5)


def test_random_translation_and_zoom_hand_values():
    x = np.tile(np.arange(1, 5, dtype="float32")[:, None], (1, 4)).reshape(1, 4, 4, 1)
    down = layers.RandomTranslation((0.5, 0.5), 0.0, fill_mode="constant", seed=0)
    np.testing.assert_allclose(to_numpy(down(x, training=True))[0, :, 0, 0], [0, 0, 1, 2])
    ramp = np.tile(np.arange(5, dtype="float32")[:, None], (1, 5)).reshape(1, 5, 5, 1)
    zoom_in = layers.RandomZoom((-0.5, -0.5), seed=0)  # grid scaled by 0.5 about the centre
    out = to_numpy(zoom_in(ramp, training=True))[0, :, :, 0]
    np.testing.assert_allclose(out, np.tile([[1.0], [1.5], [2.0], [2.5], [3.0]], (1, 5)))


@pytest.mark.parametrize(
    "fill_mode,expected",
    [
        ("constant", [0, 0, 1, 2]),
        ("nearest", [1, 1, 1, 2]),
        ("reflect", [2, 1, 1, 2]),
        ("wrap", [3, 4, 1, 2]),
    ],
)
def test_fill_modes_shift_right_by_two(fill_mode, expected):
    row = np.array([1, 2, 3, 4], dtype="float32").reshape(1, 1, 4, 1)
    t = image_ops.translation_transforms(np.array([2.0]), np.array([0.0]))
    out = image_ops.keras_transform(row, t, "nearest", fill_mode, 0.0)
    np.testing.assert_array_equal(out.reshape(-1), expected)


def test_random_flip_outputs_are_flips_of_each_image():
    x = np.random.default_rng(0).normal(size=(16, 3, 4, 1)).astype("float32")
    out = to_numpy(layers.RandomFlip("horizontal", seed=3)(x, training=True))
    flipped = [np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_random_contrast_formula():
    x = np.random.default_rng(0).uniform(0, 1, (4, 3, 3, 2))
    out = to_numpy(
        layers.RandomContrast(0.5, value_range=(-100, 100), seed=1, dtype="float64")(
            x, training=True
        )
    )
    mean = x.mean(axis=(1, 2), keepdims=True)
    ratio = (out - mean) / (x - mean)
    for r in ratio:
        assert np.allclose(r, r.flat[0]) and 0.5 <= r.flat[0] <= 1.5


# ---------------------------------------------------------------- Normalization
class _Batches(PyDataset):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return self.x[i * 4 : (i + 1) * 4], None


def test_normalization_adapt_matches_numpy_on_arrays_and_batches():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(12, 3))
    norm = layers.Normalization()
    norm.adapt(x)
    np.testing.assert_allclose(norm.mean.reshape(-1), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.variance.reshape(-1), x.var(0), rtol=1e-5)
    out = to_numpy(norm(x))
    np.testing.assert_allclose(out, (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)
    streamed = layers.Normalization()
    streamed.adapt(_Batches(x))
    np.testing.assert_allclose(streamed.get_weights()[0], norm.get_weights()[0], rtol=1e-6)
    np.testing.assert_allclose(streamed.get_weights()[1], norm.get_weights()[1], rtol=1e-6)
    scalar = layers.Normalization(axis=None)
    scalar.adapt(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_allclose(to_numpy(scalar(np.array([3.0, 5.0]))), [0, 2 / math.sqrt(2)])


def test_normalization_given_stats_and_invert():
    x = np.array([[1.0, 4.0]])
    out = to_numpy(layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 4.0])(x))
    np.testing.assert_allclose(out, [[0.0, 1.0]])
    back = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 4.0], invert=True)(out)
    np.testing.assert_allclose(to_numpy(back), x)


# ---------------------------------------------------------------- TextVectorization
DOCS = ["the cat sat", "the dog", "The cat!"]


def test_text_vectorization_int_mode_vocabulary_and_padding():
    tv = layers.TextVectorization()
    tv.adapt(DOCS)
    # the:3, cat:2, then sat/dog (1 each) in descending token order.
    assert tv.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat", "dog"]
    out = to_numpy(tv(["the dog ran", "cat"]))
    np.testing.assert_array_equal(out, [[2, 5, 1], [3, 0, 0]])
    fixed = layers.TextVectorization(output_sequence_length=4, vocabulary=tv.get_vocabulary())
    np.testing.assert_array_equal(to_numpy(fixed(["the dog ran cat sat"])), [[2, 5, 1, 3]])
    small = layers.TextVectorization(max_tokens=4)
    small.adapt(DOCS)
    assert small.get_vocabulary() == ["", "[UNK]", "the", "cat"]


def test_text_vectorization_bag_modes_and_tf_idf():
    expected = {"multi_hot": [1, 1, 0, 0, 0], "count": [1, 2, 0, 0, 0]}
    for mode, row in expected.items():
        tv = layers.TextVectorization(output_mode=mode)
        tv.adapt(DOCS)
        assert tv.get_vocabulary() == ["[UNK]", "the", "cat", "sat", "dog"]
        np.testing.assert_array_equal(to_numpy(tv(["the the bird"])), [row])
    tv = layers.TextVectorization(output_mode="tf_idf")
    tv.adapt(DOCS)
    idf = np.log(1 + 3 / (1 + np.array([3.0, 2.0, 1.0, 1.0])))  # the, cat, sat, dog
    out = to_numpy(tv(["the the bird cat"]))[0]
    np.testing.assert_allclose(out, [idf.mean(), 2 * idf[0], idf[1], 0, 0], rtol=1e-6)
    padded = layers.TextVectorization(output_mode="multi_hot", max_tokens=8, pad_to_max_tokens=True)
    padded.adapt(DOCS)
    assert to_numpy(padded(["cat"])).shape == (1, 8)


def test_text_vectorization_ngrams_split_and_config_round_trip():
    tv = layers.TextVectorization(ngrams=2, standardize=None)
    assert tv.tokenize("a b c") == ["a", "b", "c", "a b", "b c"]
    chars = layers.TextVectorization(split="character", standardize="lower")
    assert chars.tokenize("Ab") == ["a", "b"]
    tv = layers.TextVectorization(output_mode="tf_idf")
    tv.adapt(DOCS)
    clone = layers.deserialize(layers.serialize(tv))
    np.testing.assert_allclose(to_numpy(clone(DOCS)), to_numpy(tv(DOCS)))
    assert clone.get_config() == tv.get_config()


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.TextVectorization(output_mode="onehot"), "output_mode='onehot'"),
        (lambda: layers.TextVectorization(max_tokens=1), "max_tokens=1"),
        (lambda: layers.TextVectorization(standardize="upper"), "standardize='upper'"),
        (
            lambda: layers.TextVectorization(output_mode="count", output_sequence_length=3),
            "output_sequence_length=3",
        ),
        (lambda: layers.TextVectorization()([1, 2]), "Received: inputs containing 1"),
        (lambda: layers.TextVectorization().adapt(["ok", None]), "None"),
        (lambda: layers.TextVectorization(vocabulary=["a", "a"]), "repeated"),
        (lambda: layers.Resizing(0, 3), "Received: height=0"),
        (lambda: layers.Resizing(2, 3, interpolation="cubic"), "interpolation='cubic'"),
        (lambda: layers.CenterCrop(2, -1), "Received: width=-1"),
        (lambda: layers.RandomFlip("diagonal"), "mode='diagonal'"),
        (lambda: layers.RandomRotation((0.3, 0.1)), "factor=\\(0.3, 0.1\\)"),
        (lambda: layers.RandomRotation(0.1, fill_mode="mirror"), "fill_mode='mirror'"),
        (lambda: layers.RandomZoom(-1.5), "height_factor=-1.5"),
        (lambda: layers.RandomTranslation(1.5, 0.1), "height_factor=1.5"),
        (lambda: layers.RandomContrast(1.5), "factor=1.5"),
        (lambda: layers.Normalization(mean=1.0), "variance=None"),
        (lambda: layers.Normalization(mean=1.0, variance=1.0).adapt(np.ones(3)), "adapt"),
        (lambda: layers.Resizing(2, 2)(np.ones((2, 3))), "inputs.shape=\\(2, 3\\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
