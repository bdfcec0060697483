"""`plot_model` / `model_to_dot`: the DOT graph (pydot only) and real images (Graphviz).

The DOT tests parse the text pydot writes: every box and every edge of the
model is compared with the graph the test built. The image tests need
Graphviz's `dot` program and skip, saying so, only when it is missing.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from PIL import Image

import distkeras as keras
from distkeras import layers, ops
from distkeras.utils import model_to_dot, plot_model
from distkeras.utils.model_visualization import check_graphviz

needs_graphviz = pytest.mark.skipif(
    not check_graphviz(), reason="Graphviz's `dot` program is missing (apt-get install graphviz)"
)


def parse_dot(dot):
    """(names by node id, set of (source name, destination name), the DOT text)."""
    text = dot.to_string()
    names = {}
    for node_id, label in re.findall(r"^(\d+) \[label=<(.*?)>, ", text, flags=re.M):
        bold = re.findall(r"<b>(.*?)</b>", label)
        names[node_id] = bold[0]
    edges = {(names[a], names[b]) for a, b in re.findall(r"^(\d+) -> (\d+)", text, flags=re.M)}
    return names, edges, text


def nested_multi_io_model():
    """Two inputs, two outputs, a shared nested Functional tower, a nested Sequential, an op."""
    t_in = keras.Input((6,), name="tower_in")
    t_hidden = layers.Dense(8, activation="relu", name="tower_hidden")(t_in)
    tower = keras.Model(t_in, layers.Dense(4, name="tower_out")(t_hidden), name="tower")
    head = keras.Sequential(
        [keras.Input((4,)), layers.Dense(3, name="head_hidden"), layers.Dense(2, name="head_out")],
        name="head",
    )
    left, right = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    el, er = tower(left), tower(right)
    diff = el - er  # an op node
    distance = layers.Dense(1, activation="sigmoid", name="distance")(diff)
    classes = head(layers.concatenate([el, er], name="pair")[:, :4])
    model = keras.Model([left, right], [distance, classes], name="nested")
    return model, diff._keras_history[0].name, classes._keras_history[0].name


def test_dot_lists_every_layer_and_edge():
    model, sub, _ = nested_multi_io_model()
    getitem = next(lay.name for lay in model._graph_layers() if lay.name.startswith("getitem"))
    names, edges, text = parse_dot(model_to_dot(model))
    assert sorted(names.values()) == sorted(
        ["left", "right", "tower", sub, "distance", "pair", getitem, "head"]
    )
    assert edges == {
        ("left", "tower"),
        ("right", "tower"),
        ("tower", sub),
        ("tower", "pair"),
        (sub, "distance"),
        ("pair", getitem),
        (getitem, "head"),
    }
    assert "rankdir=TB" in text and "dpi=200" in text
    assert "(Subtract)" in text and "(Functional)" in text and "(Sequential)" in text


def test_expand_nested_draws_clusters_and_edges_into_them():
    model, sub, _ = nested_multi_io_model()
    names, edges, text = parse_dot(model_to_dot(model, expand_nested=True))
    assert sorted(names.values()) == sorted(
        ["left", "right", "tower_in", "tower_hidden", "tower_out", sub, "distance", "pair"]
        + [n for n in names.values() if n.startswith("getitem")]
        + ["head_hidden", "head_out"]
    )
    getitem = next(n for n in names.values() if n.startswith("getitem"))
    assert edges == {
        ("left", "tower_in"),
        ("right", "tower_in"),
        ("tower_in", "tower_hidden"),
        ("tower_hidden", "tower_out"),
        ("tower_out", sub),
        ("tower_out", "pair"),
        (sub, "distance"),
        ("pair", getitem),
        (getitem, "head_hidden"),
        ("head_hidden", "head_out"),
    }
    assert "subgraph cluster_tower" in text and "subgraph cluster_head" in text


def test_label_options():
    inp = keras.Input((5,), name="x")
    frozen = layers.Dense(4, activation="relu", name="frozen")
    frozen.trainable = False
    out = layers.Dense(2, activation="softmax", name="probs")(frozen(inp))
    model = keras.Model(inp, out)
    _, _, plain = parse_dot(model_to_dot(model, show_layer_names=False))
    assert "<b>Dense</b>" in plain and "frozen" not in plain and "Output shape" not in plain
    _, _, text = parse_dot(
        model_to_dot(
            model,
            show_shapes=True,
            show_dtype=True,
            show_layer_activations=True,
            show_trainable=True,
            rankdir="LR",
            dpi=72,
        )
    )
    assert "<b>frozen</b> (Dense)" in text
    assert "Input shape: <b>(None, 5)</b>" in text and "Output shape: <b>(None, 2)</b>" in text
    assert "Output dtype: <b>float32</b>" in text
    assert "Activation: <b>relu</b>" in text and "Activation: <b>softmax</b>" in text
    assert text.count("<b>Non-trainable</b>") == 1 and text.count("<b>Trainable</b>") == 1
    assert "rankdir=LR" in text and "dpi=72" in text


def test_sequential_is_its_stack_and_a_subclassed_model_is_one_box():
    seq = keras.Sequential(
        [keras.Input((3,)), layers.Dense(4, name="a"), layers.Dense(2, name="b")], name="s"
    )
    names, edges, _ = parse_dot(model_to_dot(seq))
    assert sorted(names.values()) == ["a", "b"] and edges == {("a", "b")}

    class Sub(keras.Model):
        def __init__(self):
            super().__init__(name="sub")
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.ones((1, 3), "float32"))
    names, edges, _ = parse_dot(model_to_dot(sub))
    assert list(names.values()) == ["sub"] and edges == set()


def test_bad_arguments():
    model, _, _ = nested_multi_io_model()
    with pytest.raises(ValueError, match="Received: rankdir='XY'"):
        model_to_dot(model, rankdir="XY")
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        model_to_dot(model, layer_range=["a", "b"])
    unbuilt = keras.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not yet been built"):
        model_to_dot(unbuilt)


def test_missing_pydot_says_what_to_install(monkeypatch):
    model, _, _ = nested_multi_io_model()
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot"):
        model_to_dot(model)


def test_missing_graphviz_says_what_to_install(monkeypatch, tmp_path):
    model, _, _ = nested_multi_io_model()
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` program on the PATH
    with pytest.raises(ImportError, match="apt-get install graphviz"):
        plot_model(model, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


# ----------------------------------------------------------------- images
@needs_graphviz
def test_png_of_a_multi_input_multi_output_nested_model(tmp_path):
    model, _, _ = nested_multi_io_model()
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    plot_model(model, small, show_shapes=True, expand_nested=True, dpi=50)
    plot_model(model, large, show_shapes=True, expand_nested=True, dpi=100)
    with Image.open(small) as a, Image.open(large) as b:
        assert a.format == b.format == "PNG"
        assert a.size[0] > 200 and a.size[1] > 200
        ratio = np.array(b.size) / np.array(a.size)  # dpi scales the picture
        np.testing.assert_allclose(ratio, 2.0, rtol=0.05)
        assert np.asarray(b.convert("L")).std() > 10  # not a blank image


@needs_graphviz
def test_rankdir_and_other_formats(tmp_path):
    chain = keras.Sequential([keras.Input((3,))] + [layers.Dense(3) for _ in range(5)])
    plot_model(chain, tmp_path / "tb.png", dpi=40)
    plot_model(chain, tmp_path / "lr.png", rankdir="LR", dpi=40)
    with Image.open(tmp_path / "tb.png") as tb, Image.open(tmp_path / "lr.png") as lr:
        assert tb.size[1] > tb.size[0] and lr.size[0] > lr.size[1]
    plot_model(chain, tmp_path / "m.svg", show_layer_names=True)
    svg = (tmp_path / "m.svg").read_text()
    assert "<svg" in svg and all(lay.name in svg for lay in chain.layers)
    plot_model(chain, tmp_path / "m.pdf")
    assert (tmp_path / "m.pdf").read_bytes().startswith(b"%PDF")
    plot_model(chain, tmp_path / "noext", dpi=30)  # no extension: PNG
    with Image.open(tmp_path / "noext") as im:
        assert im.format == "PNG"


@needs_graphviz
def test_functional_api_guide_plot_passages(tmp_path, monkeypatch):
    """keras.io/guides/functional_api: the three `plot_model` calls, as written there."""
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    keras.utils.plot_model(model, "my_first_model.png")
    keras.utils.plot_model(model, "my_first_model_with_shape_info.png", show_shapes=True)
    with (
        Image.open("my_first_model.png") as a,
        Image.open("my_first_model_with_shape_info.png") as b,
    ):
        assert a.format == b.format == "PNG" and b.size[0] > a.size[0]  # the shapes widen boxes

    num_tags, num_words, num_departments = 12, 1000, 4
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.LSTM(16)(layers.Embedding(num_words, 8)(title_input))
    body_features = layers.LSTM(4)(layers.Embedding(num_words, 8)(body_input))
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    model = keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )
    keras.utils.plot_model(model, "multi_input_and_output_model.png", show_shapes=True)
    _, edges, _ = parse_dot(keras.utils.model_to_dot(model))
    # title, body -> embeddings -> LSTMs -> concatenate <- tags; concatenate -> 2 heads
    assert len(edges) == 9

    inputs = keras.Input(shape=(16, 16, 3), name="img")
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(block_1_output)
    block_2_output = layers.add([x, block_1_output])
    x = layers.GlobalAveragePooling2D()(block_2_output)
    outputs = layers.Dense(10)(ops.relu(x))
    model = keras.Model(inputs, outputs, name="toy_resnet")
    keras.utils.plot_model(model, "mini_resnet.png", show_shapes=True)
    for name in ("multi_input_and_output_model.png", "mini_resnet.png"):
        with Image.open(name) as im:
            assert im.format == "PNG" and min(im.size) > 100
