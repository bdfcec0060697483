"""The transfer-learning workflow of the Keras guide "Transfer learning &
fine-tuning", on 8x8 digits, written against a `keras` module passed in so the
test (distkeras) and its reference script (Keras 3) run the same steps."""

from __future__ import annotations

import numpy as np

from tests.keras_guides import _data


def base_model(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    return keras.Model(inputs, x, name="base")


def split():
    """Digits 0-4 "pre-train" the base; digits 5-9 (labels 0-4) are the new task."""
    (x_train, y_train), (x_test, y_test) = _data.digits_images()
    old = y_train < 5
    new_train, new_test = y_train >= 5, y_test >= 5
    return (
        (x_train[old], y_train[old]),
        (x_train[new_train], y_train[new_train] - 5),
        (x_test[new_test], y_test[new_test] - 5),
    )


def run(keras):
    """Pre-train, freeze, train a new head, fine-tune; returns the figures and checks."""
    (x_old, y_old), (x_new, y_new), (x_test, y_test) = split()
    base = base_model(keras)
    base.set_weights(_data.initial_weights(base.get_weights(), keep_vectors=True))
    pre = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    pre.layers[-1].set_weights(_data.initial_weights(pre.layers[-1].get_weights(), seed=1))
    sce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    pre.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sce)
    pre.fit(x_old, y_old, batch_size=64, epochs=2, shuffle=False, verbose=0)

    base.trainable = False  # freeze the base
    inputs = keras.Input(shape=(8, 8, 1))
    x = base(inputs, training=False)  # BatchNormalization stays in inference mode
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights(_data.initial_weights(model.layers[-1].get_weights(), seed=2))
    figures = {"trainable_frozen": len(model.trainable_weights)}
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=sce,
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    frozen = [np.array(w) for w in base.get_weights()]
    h = model.fit(x_new, y_new, batch_size=64, epochs=3, shuffle=False, verbose=0)
    figures["head_loss"] = h.history["loss"][-1]
    figures["base_unchanged"] = all(
        np.array_equal(a, np.array(b)) for a, b in zip(frozen, base.get_weights())
    )

    base.trainable = True  # fine-tune everything, with a low learning rate
    figures["trainable_unfrozen"] = len(model.trainable_weights)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=sce,
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    stats = [np.array(v) for v in base.non_trainable_weights]  # BN moving mean/variance
    h = model.fit(x_new, y_new, batch_size=64, epochs=2, shuffle=False, verbose=0)
    figures["finetune_loss"] = h.history["loss"][-1]
    figures["bn_stats_unchanged"] = all(
        np.array_equal(a, np.array(b)) for a, b in zip(stats, base.non_trainable_weights)
    )
    figures["test"] = model.evaluate(x_test, y_test, verbose=0)
    return figures
