"""Keras guide "Understanding masking & padding", step by step.

The guide's own small inputs (token ids, shapes) are used as they are. Its
checks are structural (mask values, propagation), so the Keras-side check
here is the masking contract itself: a masked LSTM over a padded sequence
gives the LSTM's output on the unpadded sequence.
"""

from __future__ import annotations

import numpy as np

import distkeras as keras
from distkeras import layers, ops

RAW_INPUTS = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]]
# The padded batch and mask printed in the guide (Keras 3).
PADDED = [[711, 632, 71, 0, 0, 0], [73, 8, 3215, 55, 927, 0], [83, 91, 1, 645, 1253, 927]]
MASK = [[True, True, True, False, False, False], [True] * 5 + [False], [True] * 6]


def keras_mask(t):
    return getattr(t, "_keras_mask", None)


def test_padding_and_mask_generating_layers():
    padded_inputs = keras.utils.pad_sequences(RAW_INPUTS, padding="post")
    np.testing.assert_array_equal(padded_inputs, PADDED)

    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)
    np.testing.assert_array_equal(np.asarray(keras_mask(masked_output)), MASK)
    np.testing.assert_array_equal(np.asarray(embedding.compute_mask(padded_inputs)), MASK)

    masking_layer = layers.Masking()
    unmasked_embedding = ops.cast(
        ops.tile(ops.expand_dims(padded_inputs, axis=-1), [1, 1, 10]), "float32"
    )
    masked_embedding = masking_layer(unmasked_embedding)
    np.testing.assert_array_equal(np.asarray(keras_mask(masked_embedding)), MASK)


def test_mask_propagation_sequential_functional_and_explicit():
    padded = np.asarray(PADDED, dtype="int32")
    model = keras.Sequential(
        [layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True), layers.LSTM(8)]
    )
    out = np.asarray(model(padded))
    # The masked steps are skipped: the first sample's output is the LSTM's
    # output on its 3 real tokens alone.
    embedding, lstm = model.layers
    alone = np.asarray(lstm(embedding(padded[:1, :3])))
    np.testing.assert_allclose(out[:1], alone, rtol=1e-5, atol=1e-6)

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    outputs = layers.LSTM(8)(x)
    functional = keras.Model(inputs, outputs)
    out = np.asarray(functional(padded))
    np.testing.assert_allclose(
        out[1:2], np.asarray(functional(padded[1:2, :5])), rtol=1e-5, atol=1e-6
    )  # noqa: E501

    class MyLayer(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
            self.lstm = layers.LSTM(8)

        def call(self, inputs):
            x = self.embedding(inputs)
            mask = self.embedding.compute_mask(inputs)
            return self.lstm(x, mask=mask)

    layer = MyLayer()
    out = np.asarray(layer(padded))
    assert out.shape == (3, 8)
    np.testing.assert_allclose(out[:1], np.asarray(layer(padded[:1, :3])), rtol=1e-5, atol=1e-6)


def test_custom_layers_that_support_masking():
    class TemporalSplit(layers.Layer):
        """Splits the input along time into two tensors, and their masks."""

        def call(self, inputs):
            return ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            if mask is None:
                return None
            return ops.split(mask, 2, axis=1)

    first_half, second_half = TemporalSplit()(
        layers.Embedding(input_dim=10, output_dim=4, mask_zero=True)(np.array([[1, 2, 0, 0]]))
    )
    mask1, mask2 = keras_mask(first_half), keras_mask(second_half)
    assert mask1 is not None and mask2 is not None
    np.testing.assert_array_equal(np.asarray(mask1), [[True, True]])
    np.testing.assert_array_equal(np.asarray(mask2), [[False, False]])

    class CustomEmbedding(layers.Layer):
        def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
            super().__init__(**kwargs)
            self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero

        def build(self, input_shape):
            self.embeddings = self.add_weight(
                shape=(self.input_dim, self.output_dim), initializer="random_normal"
            )

        def call(self, inputs):
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)

        def compute_mask(self, inputs, mask=None):
            if not self.mask_zero:
                return None
            return ops.not_equal(inputs, 0)

    layer = CustomEmbedding(10, 32, mask_zero=True)
    x = np.random.default_rng(0).integers(0, 10, size=(3, 10))
    y = layer(x)
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(x)), x != 0)
    np.testing.assert_array_equal(np.asarray(keras_mask(y)), x != 0)

    class MyActivation(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True  # opt in to mask propagation

        def call(self, inputs):
            return ops.relu(inputs)

    class TemporalSoftmax(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            self.got_mask = mask is not None
            if mask is None:
                return inputs
            broadcast_float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
            inputs_exp = ops.exp(inputs) * broadcast_float_mask
            inputs_sum = ops.sum(inputs_exp * broadcast_float_mask, axis=-1, keepdims=True)
            return inputs_exp / inputs_sum

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=32, mask_zero=True)(inputs)
    x = MyActivation()(x)
    x = layers.Dense(1)(x)
    softmax = TemporalSoftmax()
    outputs = softmax(x)
    assert softmax.got_mask
    model = keras.Model(inputs, outputs)
    y = np.asarray(model(np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])))
    assert y.shape == (2, 5, 1)
    # The guide's layer divides each step by itself: 1 at real steps, 0/0 at padding.
    np.testing.assert_allclose(y[0, :3, 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(y[1, :2, 0], 1.0, rtol=1e-6)
