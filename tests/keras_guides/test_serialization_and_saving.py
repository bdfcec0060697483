"""Keras guide "Save, serialize, and export models", step by step.

The whole-model `.keras` file, custom objects registered with
`register_keras_serializable`, `get_config`/`from_config`, `to_json`,
`clone_model` and weights-only saving. The guide's own checks: the reloaded
model gives the same predictions; the config rebuilds the same architecture.
"""

from __future__ import annotations

import numpy as np

import distkeras as keras


def test_save_load_with_custom_objects(tmp_path):
    @keras.saving.register_keras_serializable(package="my_package", name="custom_fn")
    def custom_fn(x):
        return x**2

    @keras.saving.register_keras_serializable(package="MyLayers")
    class CustomLayer(keras.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            config = super().get_config()
            config.update({"factor": self.factor})
            return config

    @keras.saving.register_keras_serializable(package="my_package", name="MyDense")
    class MyDense(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="random_normal"
            )

        def call(self, x):
            return keras.ops.matmul(x, self.w)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    def get_model():
        inputs = keras.Input(shape=(4,))
        x = CustomLayer(0.5)(inputs)
        x = MyDense(3)(x)
        outputs = keras.layers.Activation(custom_fn)(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="rmsprop", loss="mean_squared_error")
        return model

    model = get_model()
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 4)).astype("float32"), rng.random((32, 3)).astype("float32")
    model.fit(x, y, verbose=0)
    path = str(tmp_path / "custom_model.keras")
    model.save(path)
    reconstructed_model = keras.saving.load_model(path)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), reconstructed_model.predict(x, verbose=0)
    )
    # The reloaded model keeps its compiled state and can resume training.
    reconstructed_model.fit(x, y, verbose=0)

    # Config only: the same architecture, new weights.
    config = model.get_config()
    new_model = keras.Model.from_config(config)
    assert [type(layer).__name__ for layer in new_model.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    json_config = model.to_json()
    assert keras.models.model_from_json(json_config).count_params() == model.count_params()
    cloned = keras.models.clone_model(model)
    assert cloned.count_params() == model.count_params()

    # Weights only, from one model to a model of the same architecture.
    new_model.set_weights(model.get_weights())
    np.testing.assert_allclose(new_model.predict(x, verbose=0), model.predict(x, verbose=0))
    weights_path = str(tmp_path / "my.weights.h5")
    model.save_weights(weights_path)
    fresh = get_model()
    fresh.load_weights(weights_path)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
