"""keras.io example "Simple MNIST convnet", step by step.

Stand-in data: the bundled 8x8 digits upsampled to 16x16 (n, 16, 16, 1)
float32 in place of MNIST's 28x28, one-hot labels from `to_categorical`;
filters 8 and 16 in place of 32 and 64, batch 32 for 5 epochs in place of
batch 128 for 15 (to take a comparable number of steps on 1437 images). Both
frameworks start from `_data.initial_weights`; only the shuffling and the
Dropout masks differ. Keras figures from `reference/ref_mnist_convnet.py`.
"""

from __future__ import annotations

import numpy as np

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _data

# Keras 3.15.1 (JAX backend), same start: test loss and accuracy after 5 epochs,
# mean of seeds 1, 2, 3 (ranges 0.988-1.020 and 0.864-0.883, from shuffling and
# Dropout). We allow 6% on the loss and 0.04 on the accuracy (2x Keras's ranges).
KERAS_TEST_LOSS, KERAS_TEST_ACCURACY = 0.9997, 0.8713


def test_simple_convnet():
    keras.utils.set_random_seed(1)
    num_classes, input_shape = 10, (16, 16, 1)
    (x_train, y_train), (x_test, y_test) = _data.digits_images(scale=2)
    assert x_train.shape[1:] == input_shape and x_train.dtype == np.float32
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )
    assert model.output_shape == (None, 10)
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=5, validation_split=0.1, verbose=0)
    assert history.history["val_accuracy"][-1] > history.history["val_accuracy"][0]
    score = model.evaluate(x_test, y_test, verbose=0)
    assert abs(score[0] - KERAS_TEST_LOSS) < 0.06 * KERAS_TEST_LOSS
    assert abs(score[1] - KERAS_TEST_ACCURACY) < 0.04
