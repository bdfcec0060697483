"""Functional models written with operators and `distkeras.ops` on symbolic tensors.

Each model is built, checked against the same computation run eagerly with its
own layers, trained, saved (JSON config and whole-model file), loaded and run
again.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops
from distkeras.backend import to_numpy
from distkeras.models import load_model, model_from_json

RNG = np.random.default_rng(0)


def _np(x):
    return np.asarray(to_numpy(x))


def _flat(x):
    if isinstance(x, dict):
        return [x[k] for k in sorted(x)]
    return list(x) if isinstance(x, (list, tuple)) else [x]


def fit_save_load_rerun(model, x, y, loss, tmp_path, custom_objects=None, safe_mode=True):
    """Trains `model`, checks its loss fell, and reloads it twice with equal predictions."""
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=8, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < before, (before, after)
    expected = _flat(model.predict(x, verbose=0))

    clone = model_from_json(model.to_json(), custom_objects=custom_objects, safe_mode=safe_mode)
    clone.set_weights(model.get_weights())
    for e, g in zip(expected, _flat(clone.predict(x, verbose=0))):
        np.testing.assert_array_equal(g, e)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path, custom_objects=custom_objects, safe_mode=safe_mode)
    for e, g in zip(expected, _flat(loaded.predict(x, verbose=0))):
        np.testing.assert_array_equal(g, e)
    # the loaded model goes on training from the saved optimizer state
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert loaded.evaluate(x, y, verbose=0) < before
    return loaded


# ----------------------------------------------------------------- residual block
def residual_model():
    inputs = keras.Input((6,), name="x")
    x = layers.Dense(6, activation="relu", name="d1")(inputs)
    x = layers.Dense(6, name="d2")(x)
    x = x + inputs  # the residual connection as an operator
    x = ops.relu(x) * 0.5 - ops.mean(x, axis=-1, keepdims=True) / 4
    outputs = layers.Dense(2, name="head")(x[:, ::1])
    return keras.Model(inputs, outputs, name="residual")


def test_residual_block_with_operators(tmp_path):
    model = residual_model()
    x = RNG.normal(size=(32, 6)).astype("float32")
    y = np.stack([x.sum(1), x[:, 0] * x[:, 1]], axis=1).astype("float32")

    def eager(m, data):
        d1, d2, head = m.get_layer("d1"), m.get_layer("d2"), m.get_layer("head")
        h = d2(d1(data)) + data
        h = ops.relu(h) * 0.5 - ops.mean(h, axis=-1, keepdims=True) / 4
        return _np(head(h))

    np.testing.assert_allclose(model.predict(x, verbose=0), eager(model, x), rtol=1e-6)
    loaded = fit_save_load_rerun(model, x, y, "mse", tmp_path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), eager(loaded, x), rtol=1e-6)


def test_conv_residual_block_matches_keras_guide_layers_add():
    """`x + block` and `layers.add([x, block])` build the same computation."""

    def build(merge):
        inputs = keras.Input((8, 8, 3))
        x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        block = layers.Conv2D(4, 3, padding="same")(x)
        x = merge(x, block)
        x = ops.mean(x, axis=(1, 2))  # a tuple axis survives the config
        return keras.Model(inputs, layers.Dense(2)(x))

    a = build(lambda u, v: u + v)
    b = build(lambda u, v: layers.add([u, v]))
    b.set_weights(a.get_weights())
    x = RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-6)
    c = model_from_json(a.to_json())
    c.set_weights(a.get_weights())
    np.testing.assert_array_equal(c.predict(x, verbose=0), a.predict(x, verbose=0))


# ----------------------------------------------------------------- transformer encoder
T, D = 5, 8


def transformer_model():
    inputs = keras.Input((T, D), name="tokens")
    attn = layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inputs, inputs)
    x = layers.LayerNormalization(epsilon=1e-6, name="ln1")(inputs + attn)
    ff = layers.Dense(16, activation="relu", name="ff1")(x)
    ff = layers.Dense(D, name="ff2")(ff)
    x = layers.LayerNormalization(epsilon=1e-6, name="ln2")(x + ff)
    pooled = ops.concatenate([ops.mean(x, axis=1), ops.max(x, axis=1)], axis=-1)
    outputs = layers.Dense(3, name="cls")(pooled)
    return keras.Model(inputs, outputs, name="encoder")


def test_transformer_encoder_block(tmp_path):
    model = transformer_model()
    x = RNG.normal(size=(24, T, D)).astype("float32")
    y = RNG.integers(0, 3, size=24)

    def eager(m, data):
        g = m.get_layer
        data = ops.convert_to_tensor(data)
        h = g("ln1")(data + g("mha")(data, data))
        h = g("ln2")(h + g("ff2")(g("ff1")(h)))
        pooled = ops.concatenate([ops.mean(h, axis=1), ops.max(h, axis=1)], axis=-1)
        return _np(g("cls")(pooled))

    np.testing.assert_allclose(model.predict(x, verbose=0), eager(model, x), rtol=1e-5, atol=1e-6)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    loaded = fit_save_load_rerun(model, x, y, loss, tmp_path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), eager(loaded, x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- siamese network
def tower():
    inp = keras.Input((6,))
    h = layers.Dense(8, activation="tanh")(inp)
    h = layers.Dense(4)(h)
    # ops inside the nested model too: embeddings scaled to norm 2
    return keras.Model(inp, 2.0 * h / (ops.norm(h, axis=-1, keepdims=True) + 1e-6), name="tower")


def euclidean(a, b):
    return ops.sqrt(ops.maximum(ops.sum(ops.square(a - b), axis=1, keepdims=True), 1e-7))


def siamese_data(n=32):
    left = RNG.normal(size=(n, 6)).astype("float32")
    same = RNG.random(n) < 0.5
    right = np.where(same[:, None], left + 0.05 * RNG.normal(size=(n, 6)), RNG.normal(size=(n, 6)))
    return [left, right.astype("float32")], same.astype("float32")[:, None]


def test_siamese_with_shared_tower_and_ops_distance(tmp_path):
    shared = tower()
    a, b = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    dist = euclidean(shared(a), shared(b))  # ops on symbolic tensors
    out = layers.Dense(1, activation="sigmoid", name="score")(dist)
    model = keras.Model([a, b], out)
    assert model.get_layer("tower") is shared  # one tower, called twice
    x, y = siamese_data()
    np.testing.assert_allclose(np.linalg.norm(_np(shared(x[0])), axis=1), 2.0, rtol=1e-5)

    def eager(m, data):
        t = m.get_layer("tower")
        return _np(m.get_layer("score")(euclidean(t(data[0]), t(data[1]))))

    np.testing.assert_allclose(model.predict(x, verbose=0), eager(model, x), rtol=1e-6)
    loaded = fit_save_load_rerun(model, x, y, "binary_crossentropy", tmp_path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), eager(loaded, x), rtol=1e-6)
    # the shared tower is still one object after loading
    assert len(loaded.get_layer("tower")._inbound_nodes) >= 2


def test_siamese_with_lambda_distance(tmp_path):
    shared = tower()
    a, b = keras.Input((6,)), keras.Input((6,))
    # the lambda's body names only `ops`: a loaded lambda sees the module globals Keras gives it
    distance = lambda pair: ops.sqrt(  # noqa: E731
        ops.maximum(ops.sum(ops.square(pair[0] - pair[1]), axis=1, keepdims=True), 1e-7)
    )
    dist = layers.Lambda(distance, name="dist")([shared(a), shared(b)])
    out = layers.Dense(1, activation="sigmoid", name="score")(dist)
    model = keras.Model([a, b], out)
    x, y = siamese_data()
    t = model.get_layer("tower")
    expected = _np(model.get_layer("score")(euclidean(t(x[0]), t(x[1]))))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="safe_mode"):  # a Python lambda is bytecode
        model_from_json(model.to_json())
    fit_save_load_rerun(model, x, y, "binary_crossentropy", tmp_path, safe_mode=False)


# ----------------------------------------------------------------- multi-output with ops
def test_multi_output_model_with_ops_outputs(tmp_path):
    inp = keras.Input((4,))
    h = layers.Dense(6, activation="relu")(inp)
    parts = ops.split(layers.Dense(6)(h), [2], axis=-1)
    model = keras.Model(inp, [parts[0], ops.tanh(parts[1])])
    # as Keras 3 names op outputs: by the op ("split", "tanh"), numbered when reused
    assert [n.rstrip("_0123456789") for n in model.output_names] == ["split", "tanh"]
    x = RNG.normal(size=(16, 4)).astype("float32")
    y = [RNG.normal(size=(16, 2)), np.tanh(RNG.normal(size=(16, 4)))]
    first, rest = model.predict(x, verbose=0)
    assert first.shape == (16, 2) and rest.shape == (16, 4) and np.abs(rest).max() < 1
    fit_save_load_rerun(model, x, y, ["mse", "mse"], tmp_path)


# ----------------------------------------------------------------- Keras guide
def test_functional_api_guide_symbolic_passages():
    """Follows keras.io/guides/functional_api: inputs' shape and dtype, the toy ResNet."""
    inputs = keras.Input(shape=(784,))
    assert inputs.shape == (None, 784) and inputs.dtype == "float32"
    img_inputs = keras.Input(shape=(32, 32, 3))
    assert img_inputs.shape == (None, 32, 32, 3)
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    assert model.name == "mnist_model" and model.output_shape == (None, 10)

    # "A toy ResNet model", with `x + block` where the guide calls layers.add (smaller images)
    inputs = keras.Input(shape=(12, 12, 3), name="img")
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    block_2_output = x + block_1_output
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(16, 1, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs, outputs, name="toy_resnet")
    assert block_2_output.shape == (None, 2, 2, 16)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    x_train = RNG.random((40, 12, 12, 3)).astype("float32")
    y_train = keras.utils.to_categorical(RNG.integers(0, 10, 40), 10)
    hist = model.fit(x_train, y_train, batch_size=8, epochs=1, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "acc", "val_loss", "val_acc"}
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_array_equal(
        again.predict(x_train, verbose=0), model.predict(x_train, verbose=0)
    )


def test_summary_lists_op_calls_like_keras():
    inp = keras.Input((4,), name="x")
    h = layers.Dense(4, name="d")(inp)
    model = keras.Model(inp, ops.mean(h + inp, axis=-1))
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    add = model.operations[2].name
    assert f"{add} (Add)" in text and "(Mean)" in text  # Keras 3: "add (Add)", "mean (Mean)"
    assert f"{add}[0][0]" in text and "d[0][0], x[0][0]" in text
    assert [lay.name for lay in model.layers] == ["x", "d"]


def test_operation_names_must_be_unique_as_in_keras():
    inp = keras.Input((4,))
    x = layers.Dense(4, name="same")(inp)
    with pytest.raises(ValueError, match='The name "same" is used 2 times'):
        keras.Model(inp, layers.Dense(4, name="same")(x))
