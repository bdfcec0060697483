"""Functional graphs whose layer order Keras 3 fixes by the graph, not by creation.

Written against a `keras` module passed in, so the test (distkeras) and the
script that records Keras's lists (real Keras 3) build the very same models:

    KERAS_BACKEND=jax /work/kerasref/bin/python -m tests.models.order_graphs
"""

from __future__ import annotations

from tests.keras_guides import _functional
from tests.models.scripts import legacy_order_files


def ticket(keras):
    """The Functional API guide's ticket model: three inputs, dict outputs."""
    return _functional.ticket_model(keras)


def toy_resnet(keras):
    """The guide's toy ResNet: residual adds skip over two convolutions."""
    return _functional.toy_resnet(keras)


def created_out_of_order(keras):
    """Layers created in one order and connected in another."""
    layers = keras.layers
    last = layers.Dense(2, name="last")
    first = layers.Dense(5, name="first")
    middle = layers.Dense(3, name="middle")
    inputs = keras.Input((4,))
    return keras.Model(inputs, last(middle(first(inputs))))


def siamese(keras):
    """One encoder layer shared by two inputs, at different depths on one side."""
    layers = keras.layers
    shared = layers.Dense(6, name="shared")
    left = keras.Input((6,), name="left")
    right = keras.Input((6,), name="right")
    pre = layers.Dense(6, name="pre")(right)
    a = shared(left)
    b = shared(pre)  # the second call sits one level deeper
    merged = layers.concatenate([a, b], name="merge")
    return keras.Model([left, right], layers.Dense(1, name="head")(merged))


def branches(keras):
    """Branches of different lengths and a list of outputs in an unnatural order."""
    layers = keras.layers
    inputs = keras.Input((8,), name="x")
    long_1 = layers.Dense(8, name="long_1")(inputs)
    long_2 = layers.Dense(8, name="long_2")(long_1)
    long_3 = layers.Dense(8, name="long_3")(long_2)
    short = layers.Dense(8, name="short")(inputs)
    joined = layers.add([short, long_3], name="join")
    side = layers.Dense(2, name="side")(long_1)
    main = layers.Dense(3, name="main")(joined)
    return keras.Model(inputs, [side, main])


def dict_in_dict_out(keras):
    """Dict inputs and dict outputs given in non-sorted key order."""
    layers = keras.layers
    zeta = keras.Input((3,), name="zeta")
    alpha = keras.Input((5,), name="alpha")
    hz = layers.Dense(4, name="hz")(zeta)
    ha = layers.Dense(4, name="ha")(alpha)
    both = layers.concatenate([hz, ha], name="both")
    out_y = layers.Dense(1, name="y_out")(both)
    out_b = layers.Dense(2, name="b_out")(hz)
    return keras.Model(
        inputs={"zeta": zeta, "alpha": alpha}, outputs={"y_out": out_y, "b_out": out_b}
    )


def nested(keras):
    """A functional encoder and a Sequential head inside an outer functional model."""
    layers = keras.layers
    head = keras.Sequential(
        [layers.Dense(3, name="head_a"), layers.Dense(1, name="head_b")], name="head"
    )
    enc_in = keras.Input((6,), name="enc_in")
    e2 = layers.Dense(4, name="enc_2")
    e1 = layers.Dense(5, name="enc_1")
    encoder = keras.Model(enc_in, e2(e1(enc_in)), name="encoder")
    inputs = keras.Input((6,), name="outer_in")
    skip = layers.Dense(4, name="skip")(inputs)
    z = layers.add([encoder(inputs), skip], name="sum")
    return keras.Model(inputs, head(z), name="outer")


def shared_nested_model(keras):
    """One inner model called on two inputs (a siamese tower)."""
    layers = keras.layers
    tower_in = keras.Input((5,), name="tower_in")
    tower = keras.Model(tower_in, layers.Dense(3, name="tower_dense")(tower_in), name="tower")
    a = keras.Input((5,), name="a")
    b = keras.Input((5,), name="b")
    pre_b = layers.Dense(5, name="pre_b")(b)
    diff = layers.subtract([tower(a), tower(pre_b)], name="diff")
    return keras.Model([a, b], layers.Dense(1, name="score")(diff), name="siamese_tower")


def batchnorm_and_unused_input(keras):
    """Non-trainable weights between trainable ones, and an input no output reads."""
    layers = keras.layers
    x = keras.Input((4,), name="x")
    unused = keras.Input((2,), name="unused")
    frozen = layers.Dense(4, name="frozen")
    frozen.trainable = False
    b = layers.Dense(4, name="b")(layers.BatchNormalization(name="bn")(frozen(x)))
    a = layers.Dense(4, name="a")(x)
    return keras.Model([x, unused], layers.add([a, b], name="sum"))


GRAPHS = {
    "ticket": ticket,
    "toy_resnet": toy_resnet,
    "created_out_of_order": created_out_of_order,
    "siamese": siamese,
    "branches": branches,
    "dict_in_dict_out": dict_in_dict_out,
    "nested": nested,
    "shared_nested_model": shared_nested_model,
    "batchnorm_and_unused_input": batchnorm_and_unused_input,
    "legacy_files": legacy_order_files.build,  # the model of data/legacy_order/
}


def _seq_with_input(keras):
    d = keras.layers.Dense
    return keras.Sequential([keras.Input((4,)), d(3, name="a"), d(1, name="b")], name="seq")


def _seq_built(keras):
    model = keras.Sequential([keras.layers.Dense(3, name="a")], name="seq")
    model.build((None, 4))
    return model


def _seq_called(keras):
    model = keras.Sequential([keras.layers.Dense(3, name="a")], name="seq")
    model(keras.ops.ones((1, 4)))
    return model


def _seq_in_seq(keras):
    d = keras.layers.Dense
    inner = keras.Sequential([d(3, name="i")], name="inner")
    return keras.Sequential([keras.Input((4,)), inner, d(1, name="o")], name="outer")


def _seq_in_functional(keras):
    head = keras.Sequential([keras.layers.Dense(3, name="h")], name="head")
    x = keras.Input((4,))
    return keras.Model(x, head(x))


def _functional_in_functional(keras):
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="f")(inner_in), name="fin")
    x = keras.Input((4,))
    return keras.Model(x, inner(x))


def _prebuilt_in_seq(keras):
    dense = keras.layers.Dense(3, name="pre")
    dense.build((None, 4))
    return keras.Sequential([keras.Input((4,)), dense], name="seq")


def _rnn_in_seq(keras):
    return keras.Sequential([keras.Input((2, 4)), keras.layers.LSTM(3, name="lstm")], name="seq")


def _bidirectional_in_seq(keras):
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((5, 4)),
            layers.Bidirectional(layers.LSTM(3), name="bi"),
            layers.Dense(1, name="d"),
        ],
        name="seq",
    )


def _time_distributed(keras):
    x = keras.Input((5, 4))
    td = keras.layers.TimeDistributed(keras.layers.Dense(2, name="td_d"), name="td")
    return keras.Model(x, td(x))


# Layers built inside other layers and models, for their weights' paths.
SCOPED = {
    "seq_with_input": _seq_with_input,
    "seq_built": _seq_built,
    "seq_called": _seq_called,
    "seq_in_seq": _seq_in_seq,
    "seq_in_functional": _seq_in_functional,
    "functional_in_functional": _functional_in_functional,
    "prebuilt_in_seq": _prebuilt_in_seq,
    "rnn_in_seq": _rnn_in_seq,
    "bidirectional_in_seq": _bidirectional_in_seq,
    "time_distributed": _time_distributed,
}


def describe(keras, name):
    """(layer names, [(weight path, shape)], trainable paths) of a fresh GRAPHS[name]."""
    keras.backend.clear_session()
    model = GRAPHS[name](keras)
    return (
        [layer.name for layer in model.layers],
        [(w.path, tuple(w.shape)) for w in model.weights],
        [w.path for w in model.trainable_weights],
    )


if __name__ == "__main__":  # prints the lists test_layer_order.py records
    import pprint

    import keras

    print("# keras", keras.__version__)
    for graph in GRAPHS:
        names, weights, trainable = describe(keras, graph)
        print(f"{graph!r}: (")
        print(pprint.pformat(names, width=88, compact=True) + ",")
        print(pprint.pformat(weights, width=88, compact=True) + ",")
        print("),")
        if trainable != [p for p, _ in weights]:
            print("# trainable:", trainable)
    for case, build in SCOPED.items():
        keras.backend.clear_session()
        print(f"{case!r}: {[w.path for w in build(keras).weights]},")
