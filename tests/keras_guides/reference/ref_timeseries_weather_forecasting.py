"""Keras 3 figures for test_timeseries_weather_forecasting.py.

Keras 3's `timeseries_dataset_from_array` needs TensorFlow, which the reference
environment lacks: the windows come from `_weather.windows` (the same samples,
in order), fed as arrays with `shuffle=False`, as the unshuffled dataset is.
"""

import os
import tempfile

import keras
import numpy as np
import pandas as pd

from tests.keras_guides import _data, _weather


def main():
    df = pd.DataFrame(_data.jena_climate(n=3000))
    x_train, y_train, x_val, y_val = _weather.prepare(pd, df)
    sequence_length = int(_weather.PAST / _weather.STEP)
    xw, yw = _weather.windows(x_train, y_train, sequence_length, _weather.STEP)
    vxw, vyw = _weather.windows(x_val, y_val, sequence_length, _weather.STEP)
    print("windows", xw.shape, yw.shape, vxw.shape, vyw.shape)
    inputs = keras.layers.Input(shape=(xw.shape[1], xw.shape[2]))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=_weather.LEARNING_RATE), loss="mse")
    with tempfile.TemporaryDirectory() as tmp:
        path_checkpoint = os.path.join(tmp, "model_checkpoint.weights.h5")
        es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
        modelckpt_callback = keras.callbacks.ModelCheckpoint(
            monitor="val_loss",
            filepath=path_checkpoint,
            verbose=0,
            save_weights_only=True,
            save_best_only=True,
        )
        history = model.fit(
            xw.astype("float32"),
            yw.astype("float32"),
            batch_size=_weather.BATCH_SIZE,
            epochs=_weather.EPOCHS,
            validation_data=(vxw, vyw),
            callbacks=[es_callback, modelckpt_callback],
            shuffle=False,
            verbose=0,
        )
        print({k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()})
        print("prediction", np.round(model.predict(vxw[:3], verbose=0).ravel(), 5).tolist())
        model.load_weights(path_checkpoint)
        print("best val", round(float(model.evaluate(vxw, vyw, verbose=0)), 5))


if __name__ == "__main__":
    main()
