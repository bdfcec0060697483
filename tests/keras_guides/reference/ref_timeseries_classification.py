"""Keras 3 figures for test_timeseries_classification.py."""

import os
import tempfile

import keras

from tests.keras_guides import _data, _timeseries


def main():
    x_train, y_train = _data.wave_series(n=300, length=64, seed=0)
    x_test, y_test = _data.wave_series(n=100, length=64, seed=1)
    model = _timeseries.make_model(keras, x_train.shape[1:], 2)
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    with tempfile.TemporaryDirectory() as tmp:
        callbacks = [
            keras.callbacks.ModelCheckpoint(
                os.path.join(tmp, "best_model.keras"), save_best_only=True, monitor="val_loss"
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=2, min_lr=0.0001
            ),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, verbose=0),
        ]
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["sparse_categorical_accuracy"],
        )
        h = model.fit(
            x_train,
            y_train,
            batch_size=32,
            epochs=6,
            callbacks=callbacks,
            validation_split=0.2,
            shuffle=False,
            verbose=0,
        )
        print({k: [round(float(v), 5) for v in vals] for k, vals in h.history.items()})
        best = keras.models.load_model(os.path.join(tmp, "best_model.keras"))
        print("best test", best.evaluate(x_test, y_test, verbose=0))


if __name__ == "__main__":
    main()
