"""Keras 3 figures for test_sequential_model.py: shapes and parameter counts."""

import keras
from keras import layers


def main():
    model = keras.Sequential()
    model.add(keras.Input(shape=(250, 250, 3)))
    model.add(layers.Conv2D(32, 5, strides=2, activation="relu"))
    model.add(layers.Conv2D(32, 3, activation="relu"))
    model.add(layers.MaxPooling2D(3))
    print("after first block", model.output_shape, model.count_params())
    for _ in range(2):
        model.add(layers.Conv2D(32, 3, activation="relu"))
        model.add(layers.Conv2D(32, 3, activation="relu"))
        model.add(layers.MaxPooling2D(3 if _ == 0 else 2))
    print("after third block", model.output_shape, model.count_params())
    model.add(layers.GlobalMaxPooling2D())
    model.add(layers.Dense(10))
    print("final", model.output_shape, model.count_params())
    print([tuple(layer.output.shape) for layer in model.layers])


if __name__ == "__main__":
    main()
