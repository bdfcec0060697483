"""The snippets of shared/keras-architecture.md, with `keras` replaced by `distkeras`."""

from __future__ import annotations

import json

import numpy as np


def test_simple_sequential_model():
    from distkeras.layers import Activation, Dense  # noqa: F401
    from distkeras.models import Sequential

    model = Sequential()
    model.add(Dense(512, activation="relu", input_shape=(784,)))
    assert model.layers[0].output_shape if hasattr(model.layers[0], "output_shape") else True
    assert model.output_shape == (None, 512)
    assert model.count_params() == 784 * 512 + 512


def test_guide_mlp_with_dropout():
    from distkeras.layers import Activation, Dense, Dropout  # noqa: F401
    from distkeras.models import Sequential

    num_classes = 10
    model = Sequential()
    model.add(Dense(512, activation="relu", input_shape=(784,)))
    model.add(Dropout(0.2))
    model.add(Dense(512, activation="relu"))
    model.add(Dropout(0.2))
    model.add(Dense(num_classes, activation="softmax"))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert model.count_params() == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    out = model.predict(np.random.default_rng(0).random((3, 784)), verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_dense_with_initializer_regularizer_constraint_strings():
    from distkeras import constraints, initializers, regularizers  # noqa: F401
    from distkeras.layers import Activation, Dense  # noqa: F401
    from distkeras.models import Sequential

    model = Sequential()
    model.add(
        Dense(
            32,
            input_shape=(16,),
            kernel_initializer="he_uniform",
            kernel_regularizer=None,
            kernel_constraint="MaxNorm",
            activation="relu",
        )
    )
    model.add(Dense(16, activation="relu"))
    model.add(Dense(8))
    kernel = model.layers[0].get_weights()[0]
    limit = np.sqrt(6 / 16)
    assert np.abs(kernel).max() <= limit and kernel.std() > limit / 4
    assert type(model.layers[0].kernel_constraint).__name__ == "MaxNorm"
    assert model.output_shape == (None, 8)


def test_zeros_initializer_snippet():
    from distkeras import initializers
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    my_init = initializers.Zeros()
    model = Sequential()
    model.add(Dense(512, activation="relu", input_shape=(784,), kernel_initializer=my_init))
    assert not model.layers[0].get_weights()[0].any()


def test_l1_and_l2_regularizer_snippets():
    from distkeras import regularizers
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    for my_regularizer in (regularizers.l1(0.0), regularizers.l2(0.0)):
        model = Sequential()
        model.add(
            Dense(512, activation="relu", input_shape=(784,), kernel_regularizer=my_regularizer)
        )
        (penalty,) = model.losses
        assert float(penalty) == 0.0


def test_to_categorical_snippet():
    from distkeras.utils import to_categorical

    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    np.testing.assert_array_equal(to_categorical(labels), np.eye(10))


def test_dense_numpy_example():
    input = [[1, 2], [3, 4]]  # noqa: A001
    kernel = [[0.5, 0.75], [0.25, 0.5]]
    result = np.dot(input, kernel)
    np.testing.assert_allclose(result, [[1.0, 1.75], [2.5, 4.25]])
    from distkeras.layers import Dense

    layer = Dense(2, use_bias=False, input_shape=(2,))
    layer.build((None, 2))
    layer.set_weights([np.array(kernel)])
    np.testing.assert_allclose(np.asarray(layer(np.array(input, "float32"))), result)


def test_add_layers_access_serialize_and_summary(capsys):
    from distkeras.layers import Dense
    from distkeras.models import Sequential, model_from_json

    model = Sequential()
    input_layer = Dense(32, input_shape=(8,))
    model.add(input_layer)
    hidden_layer = Dense(64, activation="relu")
    model.add(hidden_layer)
    output_layer = Dense(8)
    model.add(output_layer)

    layers = model.layers
    assert layers == [input_layer, hidden_layer, output_layer]

    json_string = model.to_json()
    cfg = json.loads(json_string)
    assert cfg["class_name"] == "Sequential" and cfg["module"] == "distkeras"
    assert cfg["config"]["layers"][0]["class_name"] == "InputLayer"
    assert cfg["config"]["layers"][0]["config"]["batch_shape"] == [None, 8]
    new_model = model_from_json(json_string)
    assert [type(lay).__name__ for lay in new_model.layers] == ["Dense"] * 3
    new_model.set_weights(model.get_weights())
    x = np.random.default_rng(0).random((4, 8)).astype("float32")
    np.testing.assert_allclose(new_model.predict(x, verbose=0), model.predict(x, verbose=0))

    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "' in out
    assert "Layer (type)" in out and "Output Shape" in out and "Param #" in out
    assert "(None, 32)" in out and "(None, 64)" in out and "2,112" in out
    total = 8 * 32 + 32 + 32 * 64 + 64 + 64 * 8 + 8
    assert f"Total params: {total:,}" in out
    assert f"Trainable params: {total:,}" in out and "Non-trainable params: 0" in out


def test_compile_fit_evaluate_predict_snippet():
    from distkeras.layers import Dense
    from distkeras.models import Sequential

    rng = np.random.default_rng(0)
    x = rng.random((64, 8)).astype("float32")
    y = (x.sum(1, keepdims=True) > 4).astype("float32")
    model = Sequential(
        [Dense(16, activation="relu", input_shape=(8,)), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    loss, acc = model.evaluate(x, y, verbose=0)
    assert 0 <= acc <= 1 and loss > 0
    assert model.predict(x, verbose=0).shape == (64, 1)
