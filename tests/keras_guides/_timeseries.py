"""The FCN of the keras.io example "Timeseries classification from scratch",
written against a `keras` module passed in (test and reference share it)."""

from __future__ import annotations


def make_model(keras, input_shape, num_classes, filters=16):
    layers = keras.layers
    input_layer = keras.layers.Input(input_shape)
    x = input_layer
    for _ in range(3):
        x = layers.Conv1D(filters=filters, kernel_size=3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    gap = layers.GlobalAveragePooling1D()(x)
    output_layer = layers.Dense(num_classes, activation="softmax")(gap)
    return keras.models.Model(inputs=input_layer, outputs=output_layer)
