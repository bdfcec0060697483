"""The Keras 3 guide "Understanding masking & padding", step by step, in our own code.

Each test is one passage of the guide (guides/understanding_masking_and_padding.py
in keras-team/keras): the same APIs, with the outputs the guide prints checked.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops

RAW_INPUTS = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]]


@pytest.fixture
def padded_inputs():
    return keras.utils.pad_sequences(RAW_INPUTS, padding="post")


def _check_lstm_skips_padding(model, vocab: int) -> None:
    """Each padded row gives what its unpadded sequence gives alone."""
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, vocab, size=n) for n in (3, 7, 5)]
    padded = keras.utils.pad_sequences(seqs, padding="post")
    out = model(padded).numpy()
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(out[i], model(s[None]).numpy()[0], rtol=1e-5, atol=1e-6)


def test_padding_sequence_data(padded_inputs):
    np.testing.assert_array_equal(
        padded_inputs,
        [[711, 632, 71, 0, 0, 0], [73, 8, 3215, 55, 927, 0], [83, 91, 1, 645, 1253, 927]],
    )


def test_mask_generating_layers_embedding_and_masking(padded_inputs):
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)
    np.testing.assert_array_equal(masked_output._keras_mask.numpy(), padded_inputs != 0)

    masking_layer = layers.Masking()
    unmasked_embedding = ops.cast(
        ops.tile(ops.expand_dims(padded_inputs, axis=-1), [1, 1, 10]), dtype="float32"
    )
    masked_embedding = masking_layer(unmasked_embedding)
    mask = masked_embedding._keras_mask.numpy()
    assert mask.shape == (3, 6) and mask.dtype == bool
    np.testing.assert_array_equal(mask, padded_inputs != 0)


def test_mask_propagation_in_sequential_and_functional():
    model = keras.Sequential(
        [layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True), layers.LSTM(32)]
    )
    model(np.ones((1, 7), "int32"))  # builds it; the LSTM gets the mask from then on
    _check_lstm_skips_padding(model, 5000)

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    outputs = layers.LSTM(32)(x)
    model = keras.Model(inputs, outputs)
    _check_lstm_skips_padding(model, 5000)


class MyLayer(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
        self.lstm = layers.LSTM(32)

    def call(self, inputs):
        x = self.embedding(inputs)
        mask = self.embedding.compute_mask(inputs)  # passed by hand below
        return self.lstm(x, mask=mask)


def test_passing_mask_tensors_directly_to_layers():
    layer = MyLayer()
    x = (np.random.default_rng(1).random((32, 10)) * 100).astype("int32")
    assert layer(x).shape == (32, 32)
    _check_lstm_skips_padding(layer, 5000)


class TemporalSplit(layers.Layer):
    """Splits the input into 2 tensors along the time axis, and the mask with it."""

    def call(self, inputs):
        return ops.split(inputs, 2, axis=1)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return ops.split(mask, 2, axis=1)


def test_layer_that_modifies_the_mask(padded_inputs):
    masked_embedding = layers.Masking()(
        ops.cast(ops.tile(ops.expand_dims(padded_inputs, axis=-1), [1, 1, 10]), "float32")
    )
    first_half, second_half = TemporalSplit()(masked_embedding)
    np.testing.assert_array_equal(first_half._keras_mask.numpy(), np.ones((3, 3), bool))
    np.testing.assert_array_equal(
        second_half._keras_mask.numpy(), [[False, False, False], [True, True, False], [True] * 3]
    )


class CustomEmbedding(layers.Layer):
    def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.mask_zero = mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim), initializer="random_normal", dtype="float32"
        )

    def call(self, inputs):
        inputs = ops.cast(inputs, "int32")
        return ops.take(self.embeddings, inputs)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)


def test_layer_that_generates_a_mask():
    layer = CustomEmbedding(10, 32, mask_zero=True)
    x = (np.random.default_rng(2).random((3, 10)) * 9).astype("int32")
    y = layer(x)
    mask = layer.compute_mask(x)
    np.testing.assert_array_equal(np.asarray(mask), x != 0)
    np.testing.assert_array_equal(y._keras_mask.numpy(), x != 0)  # attached to the output too


class MyActivation(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # safe for mask propagation

    def call(self, inputs):
        return ops.relu(inputs)


def test_opting_in_to_mask_propagation():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    x = MyActivation()(x)
    assert x._keras_mask is not None  # "Mask found"
    assert x._keras_mask.shape == (None, None)
    outputs = layers.LSTM(32)(x)
    model = keras.Model(inputs, outputs)
    y = model(np.random.default_rng(3).integers(0, 5000, size=(32, 100)))
    assert y.shape == (32, 32)
    _check_lstm_skips_padding(model, 5000)


class TemporalSoftmax(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        assert mask is not None
        broadcast_float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
        inputs_exp = ops.exp(inputs) * broadcast_float_mask
        inputs_sum = ops.sum(inputs_exp * broadcast_float_mask, axis=-1, keepdims=True)
        return inputs_exp / inputs_sum


def test_writing_layers_that_need_mask_information():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=32, mask_zero=True)(inputs)
    x = layers.Dense(1)(x)
    outputs = TemporalSoftmax()(x)  # the assert in `call` holds while building
    model = keras.Model(inputs, outputs)
    tokens = np.random.default_rng(4).integers(0, 10, size=(32, 100))
    with np.errstate(invalid="ignore", divide="ignore"):
        y = model(tokens).numpy()
    assert y.shape == (32, 100, 1)
    # A softmax over the last axis (size 1): 1 on kept steps; 0/0 on masked ones, as in Keras.
    np.testing.assert_allclose(y[tokens != 0], 1.0, rtol=1e-6)
    assert np.isnan(y[tokens == 0]).all()
