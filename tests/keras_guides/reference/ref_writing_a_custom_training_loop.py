"""Keras 3 figures for test_writing_a_custom_training_loop.py.

Keras's JAX backend has no GradientTape; the guide's loop (forward, loss,
gradients, SGD update per batch of 32, in order) is what `fit` does with
shuffle=False, so the reference runs that.
"""

import keras
from keras import layers, ops

from tests.keras_guides import _data


class ActivityRegularizationLayer(layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-2 * ops.sum(inputs))
        return inputs


def get_model(with_activity_loss=False):
    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu")(inputs)
    if with_activity_loss:
        x = ActivityRegularizationLayer()(x)
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs=inputs, outputs=layers.Dense(10, name="predictions")(x))


def main():
    (x_train, y_train), (x_test, y_test) = _data.digits_flat()
    for flag in (False, True):
        model = get_model(flag)
        model.set_weights(_data.initial_weights(model.get_weights()))
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )
        h = model.fit(
            x_train,
            y_train,
            batch_size=32,
            epochs=2,
            shuffle=False,
            verbose=0,
            validation_data=(x_test, y_test),
        )
        print(flag, {k: [round(v, 5) for v in vals] for k, vals in h.history.items()})


if __name__ == "__main__":
    main()
