"""Models of the guide "The Functional API", written against a `keras` module
passed in, so the test (distkeras) and its reference script (Keras 3) share them."""

from __future__ import annotations

import numpy as np

NUM_TAGS, NUM_WORDS, NUM_DEPARTMENTS = 12, 1000, 4


def mnist_model(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(64,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")


def ticket_model(keras):
    layers = keras.layers
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(NUM_TAGS,), name="tags")
    title_features = layers.Embedding(NUM_WORDS, 16)(title_input)
    body_features = layers.Embedding(NUM_WORDS, 16)(body_input)
    title_features = layers.LSTM(8)(title_features)
    body_features = layers.LSTM(4)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    return keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )


def ticket_data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    title = rng.integers(0, NUM_WORDS, size=(n, 10)).astype("int32")
    body = rng.integers(0, NUM_WORDS, size=(n, 20)).astype("int32")
    tags = rng.integers(0, 2, size=(n, NUM_TAGS)).astype("float32")
    priority = rng.random(size=(n, 1)).astype("float32")
    department = rng.integers(0, 2, size=(n, NUM_DEPARTMENTS)).astype("float32")
    return (title, body, tags), (priority, department)


def toy_resnet(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(16, 16, 3), name="img")
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(16, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")
