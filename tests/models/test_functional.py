"""The Functional API: graphs, multiple inputs/outputs, shared and nested models, configs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.models import model_from_json


def two_in_two_out():
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = layers.Dense(8, activation="relu", name="h")(a)
    merged = layers.concatenate([h, b], name="merge")
    cls = layers.Dense(3, activation="softmax", name="cls")(merged)
    reg = layers.Dense(1, name="reg")(merged)
    return keras.Model(inputs={"a": a, "b": b}, outputs={"cls": cls, "reg": reg}, name="two")


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "a": rng.normal(size=(n, 4)).astype("float32"),
        "b": rng.normal(size=(n, 3)).astype("float32"),
    }
    y = {"cls": rng.integers(0, 3, n), "reg": rng.normal(size=(n, 1)).astype("float32")}
    return x, y


def test_graph_structure_and_call():
    model = two_in_two_out()
    assert model.output_names == ["cls", "reg"]
    assert [lay.name for lay in model.layers if isinstance(lay, layers.InputLayer)] == ["a", "b"]
    x, _ = data(5)
    out = model(x)
    assert set(out) == {"cls", "reg"} and out["cls"].shape == (5, 3)
    h = model.get_layer("h")
    manual = np.concatenate([np.maximum(x["a"] @ h.kernel.numpy() + h.bias.numpy(), 0), x["b"]], 1)
    reg = model.get_layer("reg")
    np.testing.assert_allclose(
        np.asarray(out["reg"]), manual @ reg.kernel.numpy() + reg.bias.numpy(), rtol=1e-5
    )
    assert model.get_layer(index=0).name == "a"


def test_multi_output_fit_names_logs_as_keras():
    model = two_in_two_out()
    model.compile(
        optimizer="adam",
        loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"], "reg": ["mae"]},
    )
    x, y = data()
    hist = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert set(hist.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    # Keras 3.x reports each output's loss unweighted; the total applies loss_weights.
    np.testing.assert_allclose(logs["loss"], logs["cls_loss"] + 0.5 * logs["reg_loss"], rtol=1e-5)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.mean((pred["reg"] - y["reg"]) ** 2), logs["reg_loss"], rtol=1e-4)


def test_list_inputs_and_outputs():
    a, b = keras.Input((2,)), keras.Input((2,))
    s = layers.Add()([a, b])
    model = keras.Model([a, b], [layers.Dense(1)(s), layers.Dense(2)(s)])
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(10, 2)), rng.normal(size=(10, 2))]
    hist = model.fit(xs, [np.zeros((10, 1)), np.zeros((10, 2))], epochs=1, verbose=0)
    names = model.output_names
    assert set(hist.history) == {"loss", f"{names[0]}_loss", f"{names[1]}_loss"}
    with pytest.raises(ValueError, match="expects 2 input"):
        model.predict([xs[0]], verbose=0)


def test_shared_layer_and_nested_model():
    shared = layers.Dense(4, name="shared")
    a, b = keras.Input((3,)), keras.Input((3,))
    inner = keras.Sequential([layers.Dense(2, input_shape=(4,))], name="inner")
    out = inner(layers.add([shared(a), shared(b)]))
    model = keras.Model([a, b], out)
    assert len(model.trainable_weights) == 4  # shared kernel/bias once + inner's two
    x = [np.ones((2, 3)), np.zeros((2, 3))]
    k, bias = shared.get_weights()
    expected = (np.ones((2, 3)) @ k + bias + bias) @ inner.get_weights()[0] + inner.get_weights()[1]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((2, 2)), verbose=0)


def test_json_round_trip_keras_layout_and_same_outputs():
    model = two_in_two_out()
    cfg = json.loads(model.to_json())
    assert cfg["class_name"] == "Functional" and cfg["module"] == "distkeras"
    inner = cfg["config"]
    assert inner["input_layers"] == {"a": ["a", 0, 0], "b": ["b", 0, 0]}
    merge = next(lay for lay in inner["layers"] if lay["name"] == "merge")
    refs = merge["inbound_nodes"][0]["args"][0]
    assert [r["config"]["keras_history"] for r in refs] == [["h", 0, 0], ["b", 0, 0]]
    clone = model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    x, _ = data(6)
    a, b = model.predict(x, verbose=0), clone.predict(x, verbose=0)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)


def test_lambda_bytecode_needs_safe_mode_off():
    inp = keras.Input((2,))
    model = keras.Model(inp, layers.Lambda(lambda t: t * 3)(inp))
    text = model.to_json()
    with pytest.raises(ValueError, match="safe_mode=False"):
        model_from_json(text)
    clone = model_from_json(text, safe_mode=False)
    np.testing.assert_allclose(clone.predict(np.ones((1, 2)), verbose=0), [[3.0, 3.0]])


def test_graph_disconnected_and_bad_inputs():
    a, b = keras.Input((2,)), keras.Input((2,))
    out = layers.add([a, b])
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(a, out)
    with pytest.raises(ValueError, match="distkeras.Input"):
        keras.Model(np.zeros(2), out)


def test_unknown_class_name_in_json():
    model = two_in_two_out()
    text = model.to_json().replace('"class_name": "Dense"', '"class_name": "Dence"', 1)
    with pytest.raises(ValueError, match="Dence"):
        model_from_json(text)


def test_registered_subclassed_model_round_trips_through_json():
    from distkeras.saving import register_keras_serializable

    @register_keras_serializable(package="tests")
    class Tower(keras.Model):
        def __init__(self, width=4, **kwargs):
            super().__init__(**kwargs)
            self.width = width
            self.hidden = layers.Dense(width, activation="tanh")
            self.out = layers.Dense(1)

        def call(self, x, training=None):
            return self.out(self.hidden(x))

        def get_config(self):
            return {**super().get_config(), "width": self.width}

    model = Tower(width=5)
    x = np.ones((2, 3), dtype="float32")
    model(x)
    cfg = json.loads(model.to_json())
    assert cfg["registered_name"] == "tests>Tower"
    clone = model_from_json(model.to_json())
    clone(x)
    clone.set_weights(model.get_weights())
    assert clone.width == 5
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="Tower"):
        model_from_json(model.to_json().replace("tests>Tower", "tests>Tour"))


def test_summary_has_connected_to_column(capsys):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = layers.Dense(5, name="h")(a)
    keras.Model([a, b], layers.concatenate([h, b], name="cat")).summary()
    out = capsys.readouterr().out
    assert "Connected to" in out
    cat_row = next(line for line in out.splitlines() if "cat (Concatenate)" in line)
    assert "(None, 8)" in cat_row and "h[0][0], b[0][0]" in cat_row


def test_summary_wraps_long_cells_instead_of_cutting_them():
    # Keras 3.15.1 (rich) wraps a long "name (Class)" cell at the space, so the
    # class stays readable: "mixture_density_output" / "(MixtureDensityOutput)".
    class MixtureDensityOutput(layers.Layer):
        def call(self, x):
            return x

    model = keras.Sequential([keras.Input((3,)), MixtureDensityOutput()])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "…" not in text
    first = next(i for i, line in enumerate(lines) if "mixture_density_output" in line)
    assert "(None, 3)" in lines[first] and lines[first].rstrip("│ ").endswith("0")
    assert lines[first + 1].startswith("│ (MixtureDensityOutput) ")
    assert len({len(line) for line in lines[1 : first + 3]}) == 1  # the table stays aligned
    # A word longer than its column folds.
    a = keras.Input((2,), name="an_input_name_longer_than_its_column")
    lines = []
    keras.Model(a, layers.Dense(1, name="d")(a)).summary(print_fn=lines.append)
    first = next(i for i, line in enumerate(lines) if line.startswith("│ an_input"))
    cells = [line.split("│")[1].strip() for line in lines[first : first + 2]]
    assert "".join(cells) == "an_input_name_longer_than_its_column (InputLayer)"


def test_sequential_runs_as_a_linear_functional_graph():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2), layers.Dense(1)])
    assert model._functional is not None
    assert [n.layer for n in model._functional._nodes][1:] == model.layers
    x = np.ones((2, 3), dtype="float32")
    w = model.get_weights()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), (x @ w[0] + w[1]) @ w[2] + w[3], rtol=1e-6
    )


def test_to_json_of_a_compiled_model_carries_compile_config():
    model = two_in_two_out()
    assert "compile_config" not in json.loads(model.to_json())
    model.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    cfg = json.loads(model.to_json())["compile_config"]
    assert cfg["optimizer"]["class_name"] == "Adam"
    assert cfg["loss"] == {"cls": "sparse_categorical_crossentropy", "reg": "mse"}
    assert model_from_json(model.to_json()).compiled is False  # as Keras: architecture only


def test_model_subclass_called_with_inputs_and_outputs_is_functional():
    # Keras 3: `CustomModel(inputs, outputs)` of a Model subclass that only
    # overrides the step builds a functional graph that keeps the subclass's methods.
    calls = []

    class CustomModel(keras.Model):
        def train_step(self, data):
            calls.append(len(data))
            return super().train_step(data)

    inputs = keras.Input((3,))
    model = CustomModel(inputs, layers.Dense(2, name="d")(inputs))
    assert isinstance(model, CustomModel) and type(model).__name__ == "CustomModel"
    assert model.get_layer("d").units == 2 and model.output_shape == (None, 2)
    again = CustomModel(inputs=inputs, outputs=model.outputs)
    assert type(again) is type(model)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), batch_size=2, epochs=1, verbose=0)
    assert calls == [2, 2]
    with pytest.raises(TypeError, match="keyword arguments only"):
        CustomModel(inputs)


def test_model_from_config_of_a_functional_graph_builds_functional():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layers.Dense(2, name="d")(inputs))
    again = keras.Model.from_config(model.get_config(), custom_objects={})
    assert type(again).__name__ == "Functional" and again.get_layer("d").units == 2
