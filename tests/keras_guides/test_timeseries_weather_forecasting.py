"""keras.io example "Timeseries forecasting for weather prediction", step by step.

The Jena climate CSV read into pandas, 7 selected features normalized with
the training split's mean and std, the targets (temperature `future` rows
ahead) as a one-column DataFrame, `keras.preprocessing.timeseries_dataset_from_array`
with `sampling_rate=step`, `dataset_train.take(1)` to read the input shape,
LSTM(32) + Dense(1) trained on the datasets with EarlyStopping and a
weights-only best ModelCheckpoint, `model.predict` on a validation batch.
Stand-in data: `_data.jena_climate` (3000 rows of the CSV's 14 columns, daily
cycles plus noise) in place of 420,551 rows; sizes in `_weather`. The datasets
are not shuffled, so both frameworks see the same batches from the same
start (`_data.initial_weights`); Keras figures from
`reference/ref_timeseries_weather_forecasting.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from tests.keras_guides import _data, _weather

pd = pytest.importorskip("pandas")

# Keras 3.15.1 (JAX backend), same start and batches: per-epoch losses, the first
# three validation predictions after training, and the best checkpoint's val_loss.
KERAS_LOSS = [0.81373, 0.71391, 0.62849, 0.538]
KERAS_VAL_LOSS = [0.81239, 0.72159, 0.64135, 0.5592]
KERAS_PREDICTIONS = [-0.69629, -0.62597, -0.60456]
KERAS_BEST_VAL_LOSS = 0.5592
# No randomness in training: float32 rounding only, so 2e-3 relative.


def test_lstm_forecast_on_windows(tmp_path):
    df = pd.DataFrame(_data.jena_climate(n=3000))
    x_train, y_train, x_val, y_val = _weather.prepare(pd, df)
    assert isinstance(y_train, pd.DataFrame) and x_train.dtype == np.float64
    step, sequence_length = _weather.STEP, int(_weather.PAST / _weather.STEP)

    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train,
        y_train,
        sequence_length=sequence_length,
        sampling_rate=step,
        batch_size=_weather.BATCH_SIZE,
    )
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val,
        y_val,
        sequence_length=sequence_length,
        sampling_rate=step,
        batch_size=_weather.BATCH_SIZE,
    )
    for batch in dataset_train.take(1):
        inputs, targets = batch
    assert inputs.numpy().shape == (256, 20, 7) and targets.numpy().shape == (256, 1)
    # The samples are Keras's documented windows, in order (the reference's arrays).
    xw, yw = _weather.windows(x_train, y_train, sequence_length, step)
    np.testing.assert_array_equal(inputs.numpy(), xw[:256])
    np.testing.assert_array_equal(targets.numpy(), yw[:256])
    assert len(dataset_train) == int(np.ceil(len(xw) / 256)) == 8

    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=_weather.LEARNING_RATE), loss="mse")

    path_checkpoint = str(tmp_path / "model_checkpoint.weights.h5")
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(
        monitor="val_loss",
        filepath=path_checkpoint,
        verbose=0,
        save_weights_only=True,
        save_best_only=True,
    )
    history = model.fit(
        dataset_train,
        epochs=_weather.EPOCHS,
        validation_data=dataset_val,
        callbacks=[es_callback, modelckpt_callback],
        verbose=0,
    )
    np.testing.assert_allclose(history.history["loss"], KERAS_LOSS, rtol=2e-3)
    np.testing.assert_allclose(history.history["val_loss"], KERAS_VAL_LOSS, rtol=2e-3)

    for x, y in dataset_val.take(1):
        prediction = model.predict(x, verbose=0)
        assert prediction.shape == (256, 1) and x[0][:, 1].numpy().shape == (20,)
        assert y[0].numpy().shape == (1,)
        np.testing.assert_allclose(prediction[:3, 0], KERAS_PREDICTIONS, rtol=2e-3, atol=1e-4)
    model.load_weights(path_checkpoint)
    np.testing.assert_allclose(
        model.evaluate(dataset_val, verbose=0), KERAS_BEST_VAL_LOSS, rtol=2e-3
    )
