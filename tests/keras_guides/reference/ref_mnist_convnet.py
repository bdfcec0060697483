"""Keras 3 figures for test_mnist_convnet.py."""

import keras
from keras import layers

from tests.keras_guides import _data
from tests.keras_guides.reference._common import over_seeds


def convnet(seed):
    (x_train, y_train), (x_test, y_test) = _data.digits_images(scale=2)
    y_train, y_test = (
        keras.utils.to_categorical(y_train, 10),
        keras.utils.to_categorical(y_test, 10),
    )
    model = keras.Sequential(
        [
            keras.Input(shape=(16, 16, 1)),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=5, validation_split=0.1, verbose=0)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    return {"test_loss": loss, "test_accuracy": acc}


if __name__ == "__main__":
    over_seeds(convnet)
