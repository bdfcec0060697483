"""Functional models hold their layers, and so their weights, in Keras 3's order.

Keras orders a functional model's layers by the graph: deepest first (inputs
before outputs), ties in the order a walk from the outputs first reaches them
(a dict of outputs by sorted key). `layers`, `weights`, `get_weights()` and
`set_weights(list)` follow it, so a list of weights moves between Keras and
distkeras unchanged. Files written by earlier distkeras releases, whose order
was the call order, still load (data/legacy_order/). Dict inputs and outputs
are listed by sorted key (`inputs`, `outputs`, `output_names`), so list-valued
losses, loss weights and metrics go to the outputs in that order. A layer
built while a Sequential (or an RNN, a wrapper) builds it has its weights named
under it ("seq/dense/kernel"); files key weights by structure, not by path.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import distkeras as keras
from tests.models import order_graphs
from tests.models.scripts import legacy_order_files

# Recorded with Keras 3.15.1 (JAX backend) on the same model code:
#   KERAS_BACKEND=jax /work/kerasref/bin/python -m tests.models.order_graphs
# {graph: ([layer.name for layer in model.layers], [(w.path, w.shape) for w in model.weights])}
# fmt: off
KERAS_ORDER = {
    'ticket': (
        ['title', 'body', 'embedding', 'embedding_1', 'lstm', 'lstm_1', 'tags', 'concatenate',
         'department', 'priority'],
        [('embedding/embeddings', (1000, 16)), ('embedding_1/embeddings', (1000, 16)),
         ('lstm/lstm_cell/kernel', (16, 32)), ('lstm/lstm_cell/recurrent_kernel', (8, 32)),
         ('lstm/lstm_cell/bias', (32,)), ('lstm_1/lstm_cell/kernel', (16, 16)),
         ('lstm_1/lstm_cell/recurrent_kernel', (4, 16)), ('lstm_1/lstm_cell/bias', (16,)),
         ('department/kernel', (24, 4)), ('department/bias', (4,)),
         ('priority/kernel', (24, 1)), ('priority/bias', (1,))],
    ),
    'toy_resnet': (
        ['img', 'conv2d', 'conv2d_1', 'max_pooling2d', 'conv2d_2', 'conv2d_3', 'add',
         'conv2d_4', 'conv2d_5', 'add_1', 'conv2d_6', 'global_average_pooling2d', 'dense',
         'dense_1'],
        [('conv2d/kernel', (3, 3, 3, 8)), ('conv2d/bias', (8,)),
         ('conv2d_1/kernel', (3, 3, 8, 16)), ('conv2d_1/bias', (16,)),
         ('conv2d_2/kernel', (3, 3, 16, 16)), ('conv2d_2/bias', (16,)),
         ('conv2d_3/kernel', (3, 3, 16, 16)), ('conv2d_3/bias', (16,)),
         ('conv2d_4/kernel', (3, 3, 16, 16)), ('conv2d_4/bias', (16,)),
         ('conv2d_5/kernel', (3, 3, 16, 16)), ('conv2d_5/bias', (16,)),
         ('conv2d_6/kernel', (3, 3, 16, 16)), ('conv2d_6/bias', (16,)),
         ('dense/kernel', (16, 32)), ('dense/bias', (32,)), ('dense_1/kernel', (32, 10)),
         ('dense_1/bias', (10,))],
    ),
    'created_out_of_order': (
        ['input_layer', 'first', 'middle', 'last'],
        [('first/kernel', (4, 5)), ('first/bias', (5,)), ('middle/kernel', (5, 3)),
         ('middle/bias', (3,)), ('last/kernel', (3, 2)), ('last/bias', (2,))],
    ),
    'siamese': (
        ['right', 'left', 'pre', 'shared', 'merge', 'head'],
        [('pre/kernel', (6, 6)), ('pre/bias', (6,)), ('shared/kernel', (6, 6)),
         ('shared/bias', (6,)), ('head/kernel', (12, 1)), ('head/bias', (1,))],
    ),
    'branches': (
        ['x', 'long_1', 'long_2', 'short', 'long_3', 'join', 'side', 'main'],
        [('long_1/kernel', (8, 8)), ('long_1/bias', (8,)), ('long_2/kernel', (8, 8)),
         ('long_2/bias', (8,)), ('short/kernel', (8, 8)), ('short/bias', (8,)),
         ('long_3/kernel', (8, 8)), ('long_3/bias', (8,)), ('side/kernel', (8, 2)),
         ('side/bias', (2,)), ('main/kernel', (8, 3)), ('main/bias', (3,))],
    ),
    'dict_in_dict_out': (
        ['zeta', 'alpha', 'hz', 'ha', 'both', 'b_out', 'y_out'],
        [('hz/kernel', (3, 4)), ('hz/bias', (4,)), ('ha/kernel', (5, 4)), ('ha/bias', (4,)),
         ('b_out/kernel', (4, 2)), ('b_out/bias', (2,)), ('y_out/kernel', (8, 1)),
         ('y_out/bias', (1,))],
    ),
    'nested': (
        ['outer_in', 'encoder', 'skip', 'sum', 'head'],
        [('enc_1/kernel', (6, 5)), ('enc_1/bias', (5,)), ('enc_2/kernel', (5, 4)),
         ('enc_2/bias', (4,)), ('skip/kernel', (6, 4)), ('skip/bias', (4,)),
         ('head/head_a/kernel', (4, 3)), ('head/head_a/bias', (3,)),
         ('head/head_b/kernel', (3, 1)), ('head/head_b/bias', (1,))],
    ),
    'shared_nested_model': (
        ['b', 'a', 'pre_b', 'tower', 'diff', 'score'],
        [('pre_b/kernel', (5, 5)), ('pre_b/bias', (5,)), ('tower_dense/kernel', (5, 3)),
         ('tower_dense/bias', (3,)), ('score/kernel', (3, 1)), ('score/bias', (1,))],
    ),
    'batchnorm_and_unused_input': (
        ['x', 'frozen', 'bn', 'a', 'b', 'unused', 'sum'],
        [('frozen/kernel', (4, 4)), ('frozen/bias', (4,)), ('bn/gamma', (4,)),
         ('bn/beta', (4,)), ('bn/moving_mean', (4,)), ('bn/moving_variance', (4,)),
         ('a/kernel', (4, 4)), ('a/bias', (4,)), ('b/kernel', (4, 4)), ('b/bias', (4,))],
    ),
    'legacy_files': (
        ['right', 'left', 'pre', 'shared', 'drop_pre', 'drop_a', 'merge', 'head'],
        [('pre/kernel', (6, 6)), ('pre/bias', (6,)), ('shared/kernel', (6, 6)),
         ('shared/bias', (6,)), ('head/kernel', (12, 1)), ('head/bias', (1,))],
    ),
}
# fmt: on
# Keras 3.15.1: trainable_weights of "batchnorm_and_unused_input" (a frozen
# Dense, BatchNormalization's moving statistics left out).
KERAS_BN_TRAINABLE = ["bn/gamma", "bn/beta", "a/kernel", "a/bias", "b/kernel", "b/bias"]
LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy_order")


def _paths(weights):
    return [(w.path, tuple(w.shape)) for w in weights]


@pytest.mark.parametrize("graph", list(KERAS_ORDER))
def test_layers_follow_keras(graph):
    names, _, _ = order_graphs.describe(keras, graph)
    assert names == KERAS_ORDER[graph][0]


@pytest.mark.parametrize("graph", list(KERAS_ORDER))
def test_weights_follow_keras(graph):
    _, weights, _ = order_graphs.describe(keras, graph)
    assert weights == KERAS_ORDER[graph][1]


# Recorded with Keras 3.15.1 (JAX backend): `[w.path for w in model.weights]` of
# order_graphs.SCOPED. A layer built while a Sequential builds its layers is named
# under the Sequential (and under an RNN or wrapper that builds it); a layer built
# before, and the layers of a functional model, keep their own name.
KERAS_SCOPED_PATHS = {
    "seq_with_input": ["seq/a/kernel", "seq/a/bias", "seq/b/kernel", "seq/b/bias"],
    "seq_built": ["seq/a/kernel", "seq/a/bias"],
    "seq_called": ["seq/a/kernel", "seq/a/bias"],
    "seq_in_seq": ["outer/inner/i/kernel", "outer/inner/i/bias", "outer/o/kernel", "outer/o/bias"],
    "seq_in_functional": ["head/h/kernel", "head/h/bias"],
    "functional_in_functional": ["f/kernel", "f/bias"],
    "prebuilt_in_seq": ["pre/kernel", "pre/bias"],
    "rnn_in_seq": ["seq/lstm/lstm_cell/kernel", "seq/lstm/lstm_cell/recurrent_kernel",
                   "seq/lstm/lstm_cell/bias"],
    "bidirectional_in_seq": [
        "seq/bi/forward_lstm/lstm_cell/kernel", "seq/bi/forward_lstm/lstm_cell/recurrent_kernel",
        "seq/bi/forward_lstm/lstm_cell/bias", "seq/bi/backward_lstm/lstm_cell/kernel",
        "seq/bi/backward_lstm/lstm_cell/recurrent_kernel", "seq/bi/backward_lstm/lstm_cell/bias",
        "seq/d/kernel", "seq/d/bias"],
    "time_distributed": ["td/td_d/kernel", "td/td_d/bias"],
}  # fmt: skip


@pytest.mark.parametrize("case", list(KERAS_SCOPED_PATHS))
def test_weight_paths_of_nested_layers_follow_keras(case):
    keras.backend.clear_session()
    model = order_graphs.SCOPED[case](keras)
    assert [w.path for w in model.weights] == KERAS_SCOPED_PATHS[case]


def test_sequential_weight_paths_leave_the_files_alike(tmp_path):
    """Files key weights by structure, not by path: the Sequential's name changes nothing."""
    keras.backend.clear_session()
    model = order_graphs.nested(keras)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    assert model.weights[6].path == "head/head_a/kernel"
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert _paths(loaded.weights) == _rebuilt_paths(model)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    fresh = order_graphs.nested(keras)  # built in scope: head/head_a/kernel
    fresh.load_weights(tmp_path / "m.keras")
    for a, b in zip(model.weights, fresh.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_trainable_weights_follow_keras():
    _, _, trainable = order_graphs.describe(keras, "batchnorm_and_unused_input")
    assert trainable == KERAS_BN_TRAINABLE


def test_set_weights_takes_a_keras_ordered_list():
    """A list in Keras's order (as Keras's `get_weights()` gives it) lands on the same weights."""
    keras.backend.clear_session()
    model = order_graphs.ticket(keras)
    rng = np.random.default_rng(0)
    values = {p: rng.normal(size=s).astype("float32") for p, s in KERAS_ORDER["ticket"][1]}
    model.set_weights(list(values.values()))
    for w in model.weights:
        np.testing.assert_array_equal(w.numpy(), values[w.path], err_msg=w.path)
    assert [p for p, _ in _paths(model.trainable_weights)] == list(values)
    got = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(got, values.values()))


@pytest.mark.parametrize("graph", ["ticket", "siamese", "dict_in_dict_out", "nested"])
def test_config_round_trip_keeps_the_order(graph):
    keras.backend.clear_session()
    model = order_graphs.GRAPHS[graph](keras)
    config = json.loads(model.to_json())["config"]
    # Keras 3 lists a functional config's layers in `operations` order.
    assert [layer["name"] for layer in config["layers"]] == KERAS_ORDER[graph][0]
    rebuilt = keras.models.model_from_json(model.to_json())
    assert [layer.name for layer in rebuilt.layers] == KERAS_ORDER[graph][0]
    assert _paths(rebuilt.weights) == _rebuilt_paths(model)


def _rebuilt_paths(model):
    """Keras 3.15.1 rebuilds a Sequential's layers from their own build configs,
    outside its scope: a rebuilt "nested" model names them "head_a/kernel"
    (recorded: `model_from_json(...)` and `load_model(...)` alike)."""
    out = _paths(model.weights)
    if model.name != "outer":  # order_graphs.nested
        return out
    return [(p.removeprefix("head/"), s) for p, s in out]


def test_save_and_load_keep_each_weight_in_place(tmp_path):
    """pre and shared have the same shape: a file keyed by a changed order would swap them."""
    keras.backend.clear_session()
    model = order_graphs.siamese(keras)
    model.compile(optimizer="adam", loss="mse")
    x = [np.ones((4, 6), "float32"), np.full((4, 6), 2.0, "float32")]
    model.fit(x, np.ones((4, 1), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    fresh = order_graphs.siamese(keras)
    fresh.load_weights(tmp_path / "m.weights.h5")
    for other in (loaded, fresh):
        for a, b in zip(model.layers, other.layers):
            assert a.name == b.name
            for va, vb in zip(a.weights, b.weights):
                np.testing.assert_array_equal(va.numpy(), vb.numpy())
    slots = {v.name: v.numpy() for v in model.optimizer.variables}
    for v in loaded.optimizer.variables:
        np.testing.assert_array_equal(v.numpy(), slots[v.name], err_msg=v.name)


# ---------------------------------------------------------------- legacy files
def _expected():
    with np.load(os.path.join(LEGACY, "expected.npz")) as f:
        return {k: f[k] for k in f.files}


def _check_weights(model, want):
    for w in model.weights:
        np.testing.assert_array_equal(w.numpy(), want[f"weight:{w.path}"], err_msg=w.path)


def _check_rng(model, want):
    for layer in model.layers:
        for k, g in enumerate(layer._seed_generators):
            assert g.get_state() == json.loads(str(want[f"rng:{layer.name}/{k}"])), layer.name


def _check_slots(optimizer, want):
    for v in optimizer.variables:
        np.testing.assert_array_equal(v.numpy(), want[f"slot:{v.name}"], err_msg=v.name)


def test_the_legacy_files_differ_in_order():
    """The files of the earlier release were keyed by call order: shared before pre."""
    keras.backend.clear_session()
    model = legacy_order_files.build(keras)
    legacy = [layer.name for layer in model._legacy_layers()]
    assert legacy.index("shared") < legacy.index("pre")
    assert [layer.name for layer in model.layers].index("shared") > model.layers.index(
        model.get_layer("pre")
    )


def test_model_file_of_an_earlier_release_loads(tmp_path):
    want = _expected()
    model = keras.models.load_model(os.path.join(LEGACY, "model.keras"))
    # Its config lists the layers in call order; the rebuilt graph has Keras's.
    assert [layer.name for layer in model.layers] == KERAS_ORDER["legacy_files"][0]
    _check_weights(model, want)
    _check_slots(model.optimizer, want)
    _check_rng(model, want)
    x, y = legacy_order_files.data()
    np.testing.assert_allclose(model.predict(x, verbose=0), want["predict"], rtol=1e-6)
    model.save(tmp_path / "again.keras")  # written in the Keras order, read back alike
    again = keras.models.load_model(tmp_path / "again.keras")
    _check_weights(again, want)
    _check_slots(again.optimizer, want)
    _check_rng(again, want)


def test_weights_file_of_an_earlier_release_loads():
    keras.backend.clear_session()
    model = legacy_order_files.build(keras)
    model.load_weights(os.path.join(LEGACY, "model.weights.h5"))
    _check_weights(model, _expected())


def test_checkpoint_of_an_earlier_release_restores(tmp_path):
    want = _expected()
    keras.backend.clear_session()
    model = legacy_order_files.build(keras)
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(model.trainable_variables)
    shutil.copytree(os.path.join(LEGACY, "ckpt"), tmp_path / "ckpt")
    keras.checkpoint.restore(tmp_path / "ckpt", {"model": model, "optimizer": optimizer})
    _check_weights(model, want)
    _check_slots(optimizer, want)
    _check_rng(model, want)


def test_backup_of_an_earlier_release_resumes(tmp_path):
    """Resuming epoch 3 of 3 from its backup ends where the release's own run did."""
    want = _expected()
    shutil.copytree(os.path.join(LEGACY, "backup"), tmp_path / "backup")
    keras.backend.clear_session()
    keras.utils.set_random_seed(99)  # other initial weights: only the backup restores the run
    model = legacy_order_files.build(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x, y = legacy_order_files.data()
    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[backup])
    assert history.epoch == [0, 1, 2]  # (History's state comes back with the backup)
    for w in model.weights:
        np.testing.assert_allclose(w.numpy(), want[f"resumed:{w.path}"], rtol=1e-6, err_msg=w.path)


# ------------------------------------------------------- dict inputs and outputs
# Recorded with Keras 3.15.1 (JAX backend) on order_graphs.dict_in_dict_out, whose
# inputs are given as {"zeta", "alpha"} and outputs as {"y_out", "b_out"}: Keras
# flattens a dict by sorted key, so the lists and the list-valued compile
# arguments follow the sorted keys; a dict of losses is tracked in its own order.
KERAS_DICT_INPUTS = ["alpha", "zeta"]
KERAS_DICT_OUTPUT_NAMES = ["b_out", "y_out"]
KERAS_DICT_PREDICT_KEYS = ["b_out", "y_out"]  # predict(); a call returns the dict as given
KERAS_DICT_METRICS_NAMES = {  # (loss given as) -> model.metrics_names after evaluate
    "list": ["loss", "b_out_loss", "y_out_loss"],
    "dict_y_first": ["loss", "y_out_loss", "b_out_loss"],
    "dict_b_first": ["loss", "b_out_loss", "y_out_loss"],
}
# evaluate()'s list with loss {"y_out": mse, "b_out": mae} and metrics
# {"y_out": ["mae"], "b_out": ["mse"]}: the loss trackers, then the metrics by key.
KERAS_DICT_EVALUATE_ORDER = ["loss", "y_out_loss", "b_out_loss", "b_out_mse", "y_out_mae"]
# Its `history.history` keys after fit(validation_data=...): Keras's callbacks get
# the epoch's logs sorted by key.
KERAS_DICT_HISTORY_KEYS = [
    "b_out_loss", "b_out_mse", "loss", "val_b_out_loss", "val_b_out_mse", "val_loss",
    "val_y_out_loss", "val_y_out_mae", "y_out_loss", "y_out_mae",
]  # fmt: skip
DICT_LOSSES = {
    "list": ["mse", "mae"],
    "dict_y_first": {"y_out": "mae", "b_out": "mse"},
    "dict_b_first": {"b_out": "mse", "y_out": "mae"},
}


def _dict_data():
    rng = np.random.default_rng(0)
    x = {"zeta": rng.normal(size=(16, 3)), "alpha": rng.normal(size=(16, 5))}
    y = {"y_out": rng.normal(size=(16, 1)), "b_out": rng.normal(size=(16, 2))}
    cast = lambda d: {k: v.astype("float32") for k, v in d.items()}  # noqa: E731
    return cast(x), cast(y)


def test_dict_inputs_and_outputs_are_listed_by_sorted_key():
    keras.backend.clear_session()
    model = order_graphs.dict_in_dict_out(keras)
    assert [t.name for t in model.inputs] == KERAS_DICT_INPUTS
    assert model.input_names == KERAS_DICT_INPUTS
    assert model.output_names == KERAS_DICT_OUTPUT_NAMES
    assert [t._keras_history[0].name for t in model.outputs] == KERAS_DICT_OUTPUT_NAMES
    x, _ = _dict_data()
    assert list(model(x)) == ["y_out", "b_out"]  # the outputs' own structure
    pred = model.predict(x, verbose=0)
    assert list(pred) == KERAS_DICT_PREDICT_KEYS
    # Inputs are matched by name whatever the order of the dict passed in.
    swapped = model.predict({"alpha": x["alpha"], "zeta": x["zeta"]}, verbose=0)
    for k in pred:
        np.testing.assert_array_equal(pred[k], swapped[k])


@pytest.mark.parametrize("given", list(DICT_LOSSES))
def test_dict_output_losses_follow_keras(given):
    """A list of losses and loss_weights goes to the outputs by sorted name (b_out first)."""
    keras.backend.clear_session()
    model = order_graphs.dict_in_dict_out(keras)
    weights = [2.0, 0.5] if given == "list" else {"b_out": 2.0, "y_out": 0.5}
    model.compile(optimizer="sgd", loss=DICT_LOSSES[given], loss_weights=weights)
    x, y = _dict_data()
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert model.metrics_names == KERAS_DICT_METRICS_NAMES[given]
    pred = model.predict(x, verbose=0)
    b_mse = np.mean((pred["b_out"] - y["b_out"]) ** 2)
    y_mae = np.mean(np.abs(pred["y_out"] - y["y_out"]))
    np.testing.assert_allclose(logs["b_out_loss"], b_mse, rtol=1e-5)
    np.testing.assert_allclose(logs["y_out_loss"], y_mae, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], 2.0 * b_mse + 0.5 * y_mae, rtol=1e-5)
    values = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(values, [logs[k] for k in KERAS_DICT_METRICS_NAMES[given]])


def test_dict_output_evaluate_lists_losses_then_metrics_by_key():
    keras.backend.clear_session()
    model = order_graphs.dict_in_dict_out(keras)
    model.compile(
        optimizer="sgd",
        loss={"y_out": "mse", "b_out": "mae"},
        metrics={"y_out": ["mae"], "b_out": ["mse"]},
    )
    x, y = _dict_data()
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(logs) == sorted(KERAS_DICT_EVALUATE_ORDER)
    values = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(values, [logs[k] for k in KERAS_DICT_EVALUATE_ORDER])
    values = model.test_on_batch(x, y)
    logs = model.test_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(values, [logs[k] for k in KERAS_DICT_EVALUATE_ORDER])
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        logs["b_out_mse"], np.mean((pred["b_out"] - y["b_out"]) ** 2), rtol=1e-5
    )
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y))
    assert list(history.history) == KERAS_DICT_HISTORY_KEYS


def test_dict_output_model_file_keeps_the_names(tmp_path):
    """A saved dict model (losses as a list, matched by sorted name) reloads alike."""
    keras.backend.clear_session()
    model = order_graphs.dict_in_dict_out(keras)
    model.compile(optimizer="adam", loss=["mse", "mae"], loss_weights=[2.0, 0.5])
    x, y = _dict_data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert loaded.output_names == KERAS_DICT_OUTPUT_NAMES
    assert [t.name for t in loaded.inputs] == KERAS_DICT_INPUTS
    want = model.evaluate(x, y, verbose=0, return_dict=True)
    got = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert got == pytest.approx(want, rel=1e-6)


# Keras 3.15.1, loss="mse", metrics={"b_out": ["mse", "mae"], "y_out": ["mae"]}:
# evaluate()'s list (a multi-output model's metrics by sorted key), and for one
# output, metrics=["mse", "mae"] in the order given.
KERAS_MULTI_METRICS_ORDER = [
    "loss",
    "b_out_loss",
    "y_out_loss",
    "b_out_mae",
    "b_out_mse",
    "y_out_mae",
]
KERAS_SINGLE_METRICS_ORDER = ["loss", "mse", "mae"]


def test_evaluate_lists_compiled_metrics_as_keras():
    keras.backend.clear_session()
    x, y = _dict_data()
    model = order_graphs.dict_in_dict_out(keras)
    model.compile(optimizer="sgd", loss="mse", metrics={"b_out": ["mse", "mae"], "y_out": ["mae"]})
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    values = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(values, [logs[k] for k in KERAS_MULTI_METRICS_ORDER])
    single = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    single.compile(optimizer="sgd", loss="mse", metrics=["mse", "mae"])
    logs = single.evaluate(x["zeta"], y["b_out"], verbose=0, return_dict=True)
    values = single.evaluate(x["zeta"], y["b_out"], verbose=0)
    np.testing.assert_allclose(values, [logs[k] for k in KERAS_SINGLE_METRICS_ORDER])
    assert values[0] != values[2]  # (the test tells loss from mae)
