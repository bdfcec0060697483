"""Keras guide "The Sequential model", step by step.

Shapes and parameter counts are shape inference only, so the guide's own
250x250x3 input is kept. Keras figures from `reference/ref_sequential_model.py`.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import numpy as np

import distkeras as keras
from distkeras import layers, ops

# Keras 3.15.1: the guide's add() + summary() conv stack on (250, 250, 3) inputs:
# output shape and parameter count after each block, and every layer's output shape.
KERAS_BLOCKS = [((None, 40, 40, 32), 11680), ((None, 4, 4, 32), 48672), ((None, 10), 49002)]
KERAS_LAYER_OUTPUTS = [
    (None, 123, 123, 32),
    (None, 121, 121, 32),
    (None, 40, 40, 32),
    (None, 38, 38, 32),
    (None, 36, 36, 32),
    (None, 12, 12, 32),
    (None, 10, 10, 32),
    (None, 8, 8, 32),
    (None, 4, 4, 32),
    (None, 32),
    (None, 10),
]


def layer_outputs(model):
    """`[layer.output for layer in model.layers]`, as the guide's feature extraction."""
    return [layer.output for layer in model.layers]


def test_sequential_is_a_stack_of_layers():
    model = keras.Sequential(
        [
            layers.Dense(2, activation="relu", name="layer1"),
            layers.Dense(3, activation="relu", name="layer2"),
            layers.Dense(4, name="layer3"),
        ]
    )
    x = ops.ones((3, 3))
    y = model(x)
    # ... is equivalent to calling the three layers in turn.
    l1, l2, l3 = (model.get_layer(n) for n in ("layer1", "layer2", "layer3"))
    np.testing.assert_allclose(np.asarray(y), np.asarray(l3(l2(l1(x)))), rtol=1e-6)

    model = keras.Sequential()
    model.add(layers.Dense(2, activation="relu"))
    model.add(layers.Dense(3, activation="relu"))
    model.add(layers.Dense(4))
    assert len(model.layers) == 3
    model.pop()
    assert len(model.layers) == 2
    assert keras.Sequential(name="my_sequential").name == "my_sequential"


def test_input_shape_in_advance_and_summary():
    layer = layers.Dense(3)
    assert layer.weights == []  # Empty
    layer(ops.ones((1, 4)))
    assert [tuple(w.shape) for w in layer.weights] == [(4, 3), (3,)]

    model = keras.Sequential(
        [layers.Dense(2, activation="relu"), layers.Dense(3, activation="relu"), layers.Dense(4)]
    )
    assert not model.built
    out = io.StringIO()
    with redirect_stdout(out):
        model.summary()  # Keras 3.15.1 lists the layers as "0 (unbuilt)"
    assert out.getvalue().count("0 (unbuilt)") == 3
    model(ops.ones((1, 4)))
    assert len(model.weights) == 6

    model = keras.Sequential()
    model.add(keras.Input(shape=(4,)))
    model.add(layers.Dense(2, activation="relu"))
    out = io.StringIO()
    with redirect_stdout(out):
        model.summary()
    assert "Total params: 10" in out.getvalue()
    assert len(model.layers) == 1  # the Input object is not a layer


def test_add_and_summary_debugging_workflow():
    model = keras.Sequential()
    model.add(keras.Input(shape=(250, 250, 3)))
    model.add(layers.Conv2D(32, 5, strides=2, activation="relu"))
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.MaxPooling2D(3))
    assert (model.output_shape, model.count_params()) == KERAS_BLOCKS[0]
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.MaxPooling2D(3))
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.MaxPooling2D(2))
    assert (model.output_shape, model.count_params()) == KERAS_BLOCKS[1]
    model.add(layers.GlobalMaxPooling2D())
    model.add(layers.Dense(10))
    assert (model.output_shape, model.count_params()) == KERAS_BLOCKS[2]
    assert [tuple(t.shape) for t in layer_outputs(model)] == KERAS_LAYER_OUTPUTS


def test_transfer_learning_freezes_all_but_the_last_layer():
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(32, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(10),
        ]
    )
    for layer in model.layers[:-1]:
        layer.trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 4
    frozen = [w.numpy().copy() for w in model.non_trainable_weights]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.random((64, 784)), rng.integers(0, 10, 64), epochs=1, verbose=0)
    for w, before in zip(model.non_trainable_weights, frozen):
        np.testing.assert_array_equal(w.numpy(), before)


def test_feature_extraction():
    initial_model = keras.Sequential(
        [
            keras.Input(shape=(20, 20, 3)),
            layers.Conv2D(4, 5, strides=2, activation="relu"),
            layers.Conv2D(4, 3, activation="relu", name="my_intermediate_layer"),
            layers.Conv2D(4, 3, activation="relu"),
        ]
    )
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=layer_outputs(initial_model),
    )
    x = np.ones((1, 20, 20, 3), dtype="float32")
    features = feature_extractor(x)
    assert [tuple(f.shape) for f in features] == [(1, 8, 8, 4), (1, 6, 6, 4), (1, 4, 4, 4)]
    np.testing.assert_allclose(np.asarray(features[-1]), np.asarray(initial_model(x)), rtol=1e-5)

    extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=initial_model.get_layer(name="my_intermediate_layer").output,
    )
    np.testing.assert_allclose(np.asarray(extractor(x)), np.asarray(features[1]), rtol=1e-5)
