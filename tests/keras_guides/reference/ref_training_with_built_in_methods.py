"""Keras 3 figures for test_training_with_built_in_methods.py (same data and steps)."""

import keras
from keras import layers, ops

from tests.keras_guides import _data
from tests.keras_guides.reference._common import over_seeds


def load():
    (x_train, y_train), (x_test, y_test) = _data.digits_flat()
    y_train, y_test = y_train.astype("float32"), y_test.astype("float32")
    return (x_train[:-300], y_train[:-300]), (x_train[-300:], y_train[-300:]), (x_test, y_test)


def model_fn():
    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def end_to_end(seed):
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load()
    model = model_fn()
    model.compile(
        optimizer=keras.optimizers.RMSprop(),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    model.fit(x_train, y_train, batch_size=64, epochs=5, validation_data=(x_val, y_val), verbose=0)
    loss, acc = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    return {"test_loss": loss, "test_accuracy": acc}


def class_weighted(seed):
    (x_train, y_train), _, (x_test, y_test) = load()
    class_weight = {i: 1.0 for i in range(10)}
    class_weight[5] = 2.0
    model = model_fn()
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, class_weight=class_weight, batch_size=64, epochs=3, verbose=0)
    pred = model.predict(x_test, verbose=0).argmax(1)
    return {"class5_recall": float((pred[y_test == 5] == 5).mean())}


class CategoricalTruePositives(keras.metrics.Metric):
    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
        values = ops.cast(
            ops.equal(ops.cast(y_true, "int32"), ops.cast(y_pred, "int32")), "float32"
        )
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives.value


def true_positives_formula():
    (x_train, y_train), _, _ = load()
    model = model_fn()
    model.compile(
        "rmsprop", "sparse_categorical_crossentropy", metrics=[CategoricalTruePositives()]
    )
    model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)
    logs = model.evaluate(x_train, y_train, verbose=0, return_dict=True)
    pred = model.predict(x_train, verbose=0).argmax(1)
    pairs = sum(
        (y_train[i : i + 32][None, :] == pred[i : i + 32][:, None]).sum()
        for i in range(0, len(pred), 32)
    )
    print(
        "ctp",
        logs["categorical_true_positives"],
        "broadcast formula",
        pairs,
        "diagonal",
        (pred == y_train).sum(),
    )


if __name__ == "__main__":
    over_seeds(end_to_end)
    over_seeds(class_weighted)
    true_positives_formula()
