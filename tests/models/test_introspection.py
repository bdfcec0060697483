"""Layer and model introspection, input adjustment and model structures, as Keras 3 has them."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, saving, utils


def _conv_model() -> keras.Model:
    inp = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(2, 3, activation="relu", name="conv")(inp)
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inp, layers.Dense(3, name="head")(x))


# ---------------------------------------------------------------- layer.input / output
def test_layer_input_and_output_are_the_graph_tensors():
    model = _conv_model()
    conv, flat, head = (model.get_layer(n) for n in ("conv", "flat", "head"))
    assert conv.input is model.inputs[0]
    assert flat.input is conv.output
    assert head.input is flat.output
    assert head.output is model.outputs[0]
    assert conv.output.shape == (None, 26, 26, 2) and head.output.shape == (None, 3)


def test_feature_extraction_model_gives_every_intermediate_output():
    model = _conv_model()
    extractor = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    feats = extractor(x)
    assert [tuple(f.shape) for f in feats] == [(2, 28, 28, 1), (2, 26, 26, 2), (2, 1352), (2, 3)]
    conv = model.get_layer("conv")(x)
    np.testing.assert_allclose(feats[1].numpy(), conv.numpy(), rtol=1e-6)
    np.testing.assert_allclose(feats[3].numpy(), model(x).numpy(), rtol=1e-6)


def test_shared_layer_reports_its_first_call():
    shared = layers.Dense(2, name="shared")
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    ya, yb = shared(a), shared(b)
    assert shared.input is a and shared.output is ya  # Keras 3: node 0
    model = keras.Model([a, b], [ya, yb])
    x = np.arange(6, dtype="float32").reshape(2, 3)
    out_a, out_b = model([x, x + 1])
    np.testing.assert_allclose(out_a.numpy(), shared(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(out_b.numpy(), shared(x + 1).numpy(), rtol=1e-6)
    assert len(model.weights) == 2  # one kernel, one bias: the layer is shared


def test_uncalled_or_eager_only_layer_has_no_output():
    layer = layers.Dense(2, name="lonely")
    with pytest.raises(AttributeError, match="lonely has never been called.*no defined output"):
        _ = layer.output
    layer(np.zeros((1, 3), "float32"))  # eager calls make no graph node, as in Keras 3
    with pytest.raises(AttributeError, match="no defined input"):
        _ = layer.input


# ---------------------------------------------------------------- get_layer
def test_get_layer_by_name_and_index():
    model = _conv_model()
    assert model.get_layer("head") is model.layers[-1]
    assert model.get_layer(index=1).name == "conv"
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="index 10 but model only has 4 layers"):
        model.get_layer(index=10)
    with pytest.raises(ValueError, match="Provide only a layer name or a layer index"):
        model.get_layer("head", index=1)
    with pytest.raises(ValueError, match="Provide either a layer name or layer index"):
        model.get_layer()


# ---------------------------------------------------------------- configs and custom objects
class Doubler(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _custom_model() -> keras.Model:
    inp = keras.Input((3,))
    return keras.Model(inp, layers.Dense(2)(Doubler(3.0, name="dbl")(inp)))


def test_model_from_config_with_custom_objects():
    model = _custom_model()
    config = model.get_config()
    with pytest.raises(Exception, match="Doubler"):
        keras.Model.from_config(config)
    rebuilt = keras.Model.from_config(config, custom_objects={"Doubler": Doubler})
    assert rebuilt.get_layer("dbl").factor == 3.0
    rebuilt.set_weights(model.get_weights())
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(rebuilt(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_custom_object_scope_and_get_custom_objects():
    config = _custom_model().get_config()
    with utils.custom_object_scope({"Doubler": Doubler}):
        assert keras.Model.from_config(config).get_layer("dbl").factor == 3.0
    with pytest.raises(TypeError, match="custom_objects"):
        with utils.custom_object_scope(["Doubler"]):
            pass
    registry = utils.get_custom_objects()
    registry["Doubler"] = Doubler
    try:
        assert keras.models.model_from_json(_custom_model().to_json()).get_layer("dbl")
    finally:
        del registry["Doubler"]
    assert saving.custom_object_scope is utils.custom_object_scope
    assert saving.get_custom_objects is utils.get_custom_objects
    assert utils.CustomObjectScope is utils.custom_object_scope
    assert utils.serialize_keras_object is saving.serialize_keras_object


# ---------------------------------------------------------------- input adjustment
def test_trailing_axis_of_one_is_added_or_squeezed_like_keras():
    model = _conv_model()
    x3 = np.random.default_rng(1).normal(size=(4, 28, 28)).astype("float32")
    expected = model(x3[..., None]).numpy()
    np.testing.assert_allclose(model(x3).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x3, verbose=0), expected, rtol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x3, np.zeros((4, 3), "float32"), epochs=1, verbose=0)

    inp = keras.Input((3,))
    flat = keras.Model(inp, layers.Dense(1)(inp))
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(flat(x[..., None]).numpy(), flat(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 28, 28, 1\), found shape"):
        model(np.zeros((2, 28, 27), "float32"))


def test_inputs_are_cast_to_the_input_dtype():
    inp = keras.Input((4,), dtype="int32")
    model = keras.Model(inp, layers.Embedding(10, 2)(inp))
    ints = np.array([[1, 2, 3, 9]])
    np.testing.assert_allclose(model(ints.astype("float64")).numpy(), model(ints).numpy())
    dense = _conv_model()
    assert str(dense(np.zeros((1, 28, 28, 1), "float64")).dtype) == "float32"


def test_sequential_built_from_a_call_runs_on_other_lengths():
    model = keras.Sequential([layers.Embedding(50, 4), layers.GRU(2)])
    assert model(np.ones((1, 7), "int32")).shape == (1, 2)
    assert model(np.ones((3, 4), "int32")).shape == (3, 2)  # Keras 3 accepts it too


# ---------------------------------------------------------------- nested models
def _nested() -> keras.Model:
    tower_in = keras.Input((4,))
    tower = keras.Model(tower_in, layers.Dense(3, activation="tanh")(tower_in), name="tower")
    seq = keras.Sequential([keras.Input((3,)), layers.Dense(2)], name="seq")
    a, b = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    merged = layers.Concatenate()([tower(a), tower(b)])  # one tower shared by both inputs
    return keras.Model([a, b], seq(layers.Dense(3)(merged)))


def test_nested_models_train_and_round_trip_through_json_and_files(tmp_path):
    model = _nested()
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(8, 4)).astype("float32") for _ in range(2)]
    y = rng.normal(size=(8, 2)).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loaded = keras.models.model_from_json(model.to_json())
    assert [type(layer).__name__ for layer in loaded.layers].count("Functional") == 1
    loaded.set_weights(model.get_weights())
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    path = tmp_path / "nested.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model(x).numpy(), rtol=1e-6)


# ---------------------------------------------------------------- several inputs / outputs
def _dict_model() -> keras.Model:
    feats, extra = keras.Input((3,), name="feats"), keras.Input((2,), name="extra")
    h = layers.Dense(4)(layers.Concatenate()([feats, extra]))
    outputs = {"x": layers.Dense(1, name="dense_a")(h), "y": layers.Dense(2, name="dense_b")(h)}
    return keras.Model({"feats": feats, "extra": extra}, outputs)


def test_dict_inputs_and_outputs_with_losses_keyed_by_the_output_dict():
    model = _dict_model()
    assert model.output_names == ["dense_a", "dense_b"]  # layer names, as in Keras 3
    rng = np.random.default_rng(3)
    data = {"feats": rng.normal(size=(8, 3)), "extra": rng.normal(size=(8, 2))}
    targets = {"x": np.ones((8, 1)), "y": np.zeros((8, 2))}
    model.compile(
        optimizer="sgd",
        loss={"x": "mse", "y": "mae"},
        loss_weights={"x": 1.0, "y": 0.5},
        metrics={"x": ["mae"], "y": ["mse"]},
    )
    history = model.fit(data, targets, epochs=1, batch_size=8, verbose=0)
    # Keras 3 names the per-output entries after the dict keys.
    assert sorted(history.history) == ["loss", "x_loss", "x_mae", "y_loss", "y_mse"]
    result = model.evaluate(data, targets, batch_size=8, verbose=0, return_dict=True)
    pred = model(data)
    mse = np.mean((pred["x"].numpy() - 1.0) ** 2)
    mae = np.mean(np.abs(pred["y"].numpy()))
    np.testing.assert_allclose(result["x_loss"], mse, rtol=1e-5)
    np.testing.assert_allclose(result["y_loss"], mae, rtol=1e-5)
    np.testing.assert_allclose(result["loss"], mse + 0.5 * mae, rtol=1e-5)
    with pytest.raises(ValueError, match="dense_a"):
        model.compile(optimizer="sgd", loss={"dense_a": "mse", "dense_b": "mae"})
        model.fit(data, targets, epochs=1, verbose=0)


def test_list_inputs_and_outputs_with_losses_keyed_by_output_layer_names():
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    h = layers.Add()([layers.Dense(4)(a), layers.Dense(4)(b)])
    model = keras.Model([a, b], [layers.Dense(1, name="p")(h), layers.Dense(1, name="q")(h)])
    model.compile(optimizer="sgd", loss={"p": "mse", "q": "mae"})
    rng = np.random.default_rng(4)
    x = [rng.normal(size=(6, 3)), rng.normal(size=(6, 3))]
    result = model.evaluate(x, [np.ones((6, 1)), np.ones((6, 1))], verbose=0, return_dict=True)
    p, q = model(x)
    np.testing.assert_allclose(result["p_loss"], np.mean((p.numpy() - 1) ** 2), rtol=1e-5)
    np.testing.assert_allclose(result["q_loss"], np.mean(np.abs(q.numpy() - 1)), rtol=1e-5)
    by_name = model({"a": x[0], "b": x[1]})  # dict data keyed by Input names
    np.testing.assert_allclose(by_name[0].numpy(), p.numpy(), rtol=1e-6)
