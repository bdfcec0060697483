"""Keras 3 figures for test_writing_your_own_callbacks.py."""

import keras
import numpy as np

from tests.keras_guides import _data
from tests.keras_guides.reference._common import over_seeds

HOOKS = [
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
]


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []
        for name in HOOKS:
            setattr(self, name, self._make(name))

    def _make(self, name):
        def hook(*args, logs=None):
            self.events.append((name, *args, tuple(sorted(logs or {}))))

        return hook


def get_model():
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(
        keras.optimizers.RMSprop(learning_rate=0.1),
        "mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


def load():
    (x_train, y_train), (x_test, y_test) = _data.digits_flat()
    return (x_train[:1000], y_train[:1000]), (x_test, y_test)


def trace():
    (x_train, y_train), (x_test, y_test) = load()
    model = get_model()
    rec = Recorder()
    model.fit(
        x_train, y_train, batch_size=128, epochs=1, verbose=0, validation_split=0.5, callbacks=[rec]
    )
    model.evaluate(x_test, y_test, batch_size=128, verbose=0, callbacks=[rec])
    model.predict(x_test, batch_size=128, verbose=0, callbacks=[rec])
    for e in rec.events:
        print(e)


def early_stop(seed):
    (x_train, y_train), _ = load()
    model = get_model()
    history = model.fit(x_train, y_train, batch_size=64, epochs=30, verbose=0)
    losses = np.array(history.history["loss"])
    return {"loss_epoch2": losses[1], "best_loss": losses.min(), "argmin": losses.argmin()}


def lr_sched(seed):
    (x_train, y_train), _ = load()
    schedule = [(3, 0.05), (6, 0.01), (9, 0.005), (12, 0.001)]

    def lr_schedule(epoch, lr):
        if epoch < schedule[0][0] or epoch > schedule[-1][0]:
            return lr
        for e, value in schedule:
            if epoch == e:
                return value
        return lr

    model = get_model()
    history = model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=15,
        verbose=0,
        callbacks=[keras.callbacks.LearningRateScheduler(lr_schedule)],
    )
    return {"loss_epoch15": history.history["loss"][-1]}


if __name__ == "__main__":
    trace()
    over_seeds(early_stop)
    over_seeds(lr_sched)
