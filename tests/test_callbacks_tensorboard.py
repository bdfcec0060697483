"""`callbacks.TensorBoard`: event files read back with TensorBoard's own readers.

Every check reads what was written through `tensorboard`'s EventAccumulator (or
the data provider behind TensorBoard's dashboards) and compares it with what
training returned (History, evaluate, the weights), or with TensorBoard's own
summary functions.
"""

from __future__ import annotations

import glob
import io
import json
import os
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")

from tensorboard import context  # noqa: E402
from tensorboard.backend.event_processing import data_provider  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.graph import keras_util  # noqa: E402
from tensorboard.plugins.histogram.summary_v2 import histogram_pb  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

import distkeras as keras  # noqa: E402
from distkeras import callbacks, layers, models, optimizers  # noqa: E402
from distkeras.callbacks import tensorboard_events  # noqa: E402


def read_run(run_dir: str) -> dict:
    """{tag: (plugin name, [(step, ndarray), ...])} of every summary in one run directory."""
    ea = EventAccumulator(run_dir, size_guidance={"tensors": 0})
    ea.Reload()
    out = {}
    for tag in ea.Tags()["tensors"]:
        plugin = ea.SummaryMetadata(tag).plugin_data.plugin_name
        events = [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in ea.Tensors(tag)]
        out[tag] = (plugin, events)
    return out


def scalars(run: dict, tag: str) -> tuple[list[int], list[float]]:
    plugin, events = run[tag]
    assert plugin == "scalars", (tag, plugin)
    return [s for s, _ in events], [float(v) for _, v in events]


def event_files(log_dir) -> list[str]:
    return sorted(
        glob.glob(os.path.join(str(log_dir), "**", "events.out.tfevents.*"), recursive=True)
    )


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("float32")
    return x, y


def small_model(lr=0.05):
    keras.backend.clear_session()
    model = models.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(5, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizers.SGD(lr), "binary_crossentropy", metrics=["accuracy"])
    return model


def test_epoch_scalars_are_the_history(tmp_path):
    x, y = data()
    model = small_model()
    tb = callbacks.TensorBoard(tmp_path)
    history = model.fit(
        x[:32],
        y[:32],
        batch_size=8,
        epochs=3,
        validation_data=(x[32:], y[32:]),
        callbacks=[tb],
        verbose=0,
    )
    h = history.history
    train, val = read_run(str(tmp_path / "train")), read_run(str(tmp_path / "validation"))
    for name in ("loss", "accuracy"):
        steps, values = scalars(train, f"epoch_{name}")
        assert steps == [0, 1, 2]
        # float32 summaries, as tf.summary.scalar writes them
        assert values == [float(np.float32(v)) for v in h[name]]
        steps, values = scalars(val, f"epoch_{name}")
        assert steps == [0, 1, 2]
        assert values == [float(np.float32(v)) for v in h[f"val_{name}"]]
    assert scalars(train, "epoch_learning_rate")[1] == [float(np.float32(0.05))] * 3
    assert not any(t.startswith(("batch_", "val_", "epoch_val")) for t in list(train) + list(val))
    # One file per run, under Keras's run names.
    files = event_files(tmp_path)
    assert [os.path.basename(os.path.dirname(f)) for f in files] == ["train", "validation"]


def test_learning_rate_is_the_schedules_value_at_each_epoch_end(tmp_path):
    x, y = data(32)
    model = small_model()
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model.compile(optimizers.SGD(schedule), "binary_crossentropy")
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[callbacks.TensorBoard(tmp_path)], verbose=0)
    steps, values = scalars(read_run(str(tmp_path / "train")), "epoch_learning_rate")
    # 4 steps per epoch: the rate after epoch e is 0.1 * 0.5 ** (4 (e + 1) / 2).
    assert steps == [0, 1, 2]
    np.testing.assert_allclose(
        values, [0.1 * 0.5 ** (4 * (e + 1) / 2) for e in range(3)], rtol=1e-6
    )


def test_tensorboard_dashboards_read_the_scalars(tmp_path):
    """The data provider behind TensorBoard's web app lists and reads the same values."""
    x, y = data()
    model = small_model()
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        validation_split=0.25,
        callbacks=[callbacks.TensorBoard(tmp_path)],
        verbose=0,
    )
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(tmp_path))
    read = provider.read_scalars(
        context.RequestContext(), experiment_id="", plugin_name="scalars", downsample=100
    )
    assert [d.value for d in read["train"]["epoch_loss"]] == [
        float(np.float32(v)) for v in history.history["loss"]
    ]
    assert [d.value for d in read["validation"]["epoch_loss"]] == [
        float(np.float32(v)) for v in history.history["val_loss"]
    ]


class RecordBatchLogs(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


@pytest.mark.parametrize("update_freq,every", [("batch", 1), (3, 3)])
def test_batch_scalars_every_n_global_batches(tmp_path, update_freq, every):
    x, y = data(32)
    model = small_model()
    record = RecordBatchLogs()
    tb = callbacks.TensorBoard(tmp_path, update_freq=update_freq)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[record, tb], verbose=0)
    train = read_run(str(tmp_path / "train"))
    # 4 batches per epoch, counted across epochs from 1, as Keras's global batch.
    expected_steps = [s for s in range(1, 9) if s % every == 0]
    for name in ("loss", "accuracy"):
        steps, values = scalars(train, f"batch_{name}")
        assert steps == expected_steps
        assert values == [float(np.float32(record.logs[s - 1][name])) for s in expected_steps]


def test_epoch_update_freq_writes_no_batch_scalars(tmp_path):
    x, y = data(16)
    small_model().fit(x, y, batch_size=8, epochs=1, callbacks=[callbacks.TensorBoard(tmp_path)])
    assert not any(t.startswith("batch_") for t in read_run(str(tmp_path / "train")))


def test_steps_per_second_is_logged_when_asked(tmp_path):
    x, y = data(16)
    tb = callbacks.TensorBoard(tmp_path, write_steps_per_second=True, update_freq="batch")
    small_model().fit(x, y, batch_size=8, epochs=2, callbacks=[tb], verbose=0)
    train = read_run(str(tmp_path / "train"))
    assert scalars(train, "epoch_steps_per_second")[0] == [0, 1]
    steps, values = scalars(train, "batch_steps_per_second")
    assert steps == [1, 2, 3, 4] and all(v > 0 for v in values)


@pytest.mark.parametrize("freq,steps", [(1, [0, 1, 2]), (2, [0, 2])])
def test_weight_histograms(tmp_path, freq, steps):
    x, y = data(16)
    model = small_model()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=freq)],
    )
    train = read_run(str(tmp_path / "train"))
    weights = [w for layer in model.layers for w in layer.weights]
    tags = sorted(t for t in train if t.endswith("/histogram"))
    assert tags == sorted(f"{w.path}/histogram" for w in weights)
    for w in weights:
        plugin, events = train[f"{w.path}/histogram"]
        assert plugin == "histograms"
        assert [s for s, _ in events] == steps
        if steps[-1] == 2:  # the last epoch's histogram is of the final weights
            want = tensor_util.make_ndarray(histogram_pb("t", w.numpy()).value[0].tensor)
            np.testing.assert_array_equal(events[-1][1], want)


def test_no_histograms_by_default(tmp_path):
    x, y = data(16)
    small_model().fit(x, y, batch_size=8, epochs=1, callbacks=[callbacks.TensorBoard(tmp_path)])
    assert not any(t.endswith("/histogram") for t in read_run(str(tmp_path / "train")))


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).normal(size=(7, 13)),
        np.full(5, 2.5),
        np.zeros(0),
        np.array([0.0, 1.0, 1.0, 3.0]),  # the maximum lands in the last bucket
    ],
)
def test_histogram_buckets_are_tensorboards(values):
    want = tensor_util.make_ndarray(histogram_pb("t", values).value[0].tensor)
    np.testing.assert_allclose(tensorboard_events.histogram_buckets(values), want, rtol=1e-12)


def test_weight_images(tmp_path):
    from PIL import Image

    x, y = data(16)
    model = small_model()
    tb = callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[tb], verbose=0)
    train = read_run(str(tmp_path / "train"))
    kernel = model.layers[0].weights[0]  # (4, 5): drawn as one 4 x 5 image
    plugin, events = train[f"{kernel.path}/image"]
    assert plugin == "images"
    blobs = events[0][1]
    assert (int(blobs[0]), int(blobs[1])) == (5, 4)  # width, height
    pixels = np.asarray(Image.open(io.BytesIO(blobs[2])))
    # tf.image.convert_image_dtype(saturate=True): clip(w * 255.5, 0, 255), truncated.
    want = np.clip(kernel.numpy().astype(np.float64) * 255.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels, want)
    # A (1,)-shaped bias squeezes to a scalar: no image, as in Keras.
    assert f"{model.layers[1].weights[1].path}/image" not in train


def test_graph_is_the_keras_model_json(tmp_path):
    x, y = data(16)
    keras.backend.clear_session()
    inp = keras.Input((4,))
    a = layers.Dense(3)(inp)
    b = layers.Dense(3)(inp)
    model = keras.Model(inp, layers.Dense(1)(layers.Add()([a, b])))
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path)])
    plugin, events = read_run(str(tmp_path / "train"))["keras"]
    assert plugin == "graph_keras_model" and [s for s, _ in events] == [0]
    config = json.loads(events[0][1].item())
    assert config == json.loads(model.to_json())
    # TensorBoard's graph plugin turns it into the conceptual graph, edges included.
    graph = keras_util.keras_model_to_graph_def(config)
    edges = {n.name.split("/")[-1]: sorted(i.split("/")[-1] for i in n.input) for n in graph.node}
    assert edges == {
        "input_layer": [],
        "dense": ["input_layer"],
        "dense_1": ["input_layer"],
        "add": ["dense", "dense_1"],
        "dense_2": ["add"],
    }


def test_no_graph_when_not_asked_or_subclassed(tmp_path):
    x, y = data(16)
    model = small_model()
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.TensorBoard(tmp_path / "a", write_graph=False)],
    )
    assert "keras" not in read_run(str(tmp_path / "a" / "train"))

    class Sub(models.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(1)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub.compile("sgd", "mse")
    sub.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path / "b")])
    assert "keras" not in read_run(str(tmp_path / "b" / "train"))  # Keras draws only graphs


def test_evaluate_writes_evaluation_vs_iterations(tmp_path):
    x, y = data(32)
    model = small_model()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # 8 optimizer iterations
    tb = callbacks.TensorBoard(tmp_path)
    result = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True, callbacks=[tb])
    val = read_run(str(tmp_path / "validation"))
    for name, value in result.items():
        steps, values = scalars(val, f"evaluation_{name}_vs_iterations")
        assert steps == [8] and values == [float(np.float32(value))]
    # The pass is over: its files are closed and complete.
    assert len(event_files(tmp_path)) == 2


def test_embeddings_projector_files(tmp_path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    keras.backend.clear_session()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, size=(16, 3))
    y = rng.normal(size=(16, 1)).astype("float32")
    model = models.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            layers.Embedding(10, 2),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    tb = callbacks.TensorBoard(tmp_path, embeddings_freq=1, embeddings_metadata="labels.tsv")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[tb])
    config = text_format.Parse(
        (tmp_path / "projector_config.pbtxt").read_text(), projector_config_pb2.ProjectorConfig()
    )
    [emb] = config.embeddings
    assert (emb.tensor_name, emb.metadata_path) == ("embedding", "labels.tsv")
    matrix = np.loadtxt(tmp_path / emb.tensor_path, delimiter="\t")
    np.testing.assert_allclose(matrix, model.layers[0].weights[0].numpy(), rtol=1e-6)
    bad = callbacks.TensorBoard(
        tmp_path / "bad", embeddings_freq=1, embeddings_metadata={"nope": "m"}
    )
    with pytest.raises(ValueError, match="Unrecognized `Embedding` layer names.*nope"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[bad])


def test_only_the_coordinator_writes(tmp_path):
    class Rank1:
        rank, size = 1, 2

    model = small_model()
    model.optimizer.build(model.trainable_variables)
    tb = callbacks.TensorBoard(tmp_path, histogram_freq=1, update_freq="batch")
    cbs = callbacks.CallbackList([tb], model=model, epochs=1, steps=1)
    cbs.set_communicator(Rank1())
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.on_train_batch_begin(0)
    cbs.on_train_batch_end(0, {"loss": 1.0})
    cbs.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    cbs.on_test_begin()
    cbs.on_test_end({"loss": 2.0})
    cbs.on_train_end()
    assert not os.path.exists(tmp_path / "train") and event_files(tmp_path) == []


def test_one_set_of_event_files_under_mpirun(tmp_path):
    pytest.importorskip("mpi4py")
    from tests.models.test_data_parallel import MPIRUN
    from tests.models.test_data_parallel import run as run_dp

    if MPIRUN is None:
        pytest.skip("mpirun not found")
    results, _ = run_dp(tmp_path, 2, "tensorboard")
    log_dir = tmp_path / "n2_tensorboard.tb"
    files = event_files(log_dir)
    assert [os.path.relpath(f, log_dir).split(os.sep)[0] for f in files] == ["train"], files
    train = read_run(str(log_dir / "train"))
    history = results[0]["history"]
    assert results[1]["history"] == history  # the metrics are reduced across ranks
    steps, values = scalars(train, "epoch_loss")
    assert steps == [0, 1, 2, 3]
    assert values == [float(np.float32(v)) for v in history["loss"]]
    assert any(t.endswith("/histogram") for t in train)
    # update_freq=2 over 6 global batches (24 steps in all): every even global batch.
    assert scalars(train, "batch_loss")[0] == list(range(2, 25, 2))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"update_freq": "sometimes"}, "Received: update_freq='sometimes'"),
        ({"update_freq": 0}, "Received: update_freq=0"),
        ({"histogram_freq": -1}, "Received: histogram_freq=-1"),
        ({"embeddings_freq": 1.5}, "Received: embeddings_freq=1.5"),
        ({"profile_batch": 5}, r"Received: profile_batch=5 \(must be 0\)"),
        ({"profile_batch": (2, 4)}, "Received: profile_batch="),
        ({"embeddings_metadata": 3}, "Received: embeddings_metadata=3"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.TensorBoard("logs", **kwargs)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(tensorboard_events, "_TB", None)
    for name in list(sys.modules):
        if name == "tensorboard" or name.startswith("tensorboard."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now fails
    with pytest.raises(ImportError, match=r"distkeras\[tensorboard\]"):
        callbacks.TensorBoard("logs")


def test_a_validation_pass_inside_fit_keeps_the_files(tmp_path):
    """A validation pass that sets the model again (as evaluate does) opens no new files."""
    model = small_model()
    tb = callbacks.TensorBoard(tmp_path)
    cbs = callbacks.CallbackList([tb], model=model, epochs=2, steps=1)
    cbs.on_train_begin()
    for epoch in range(2):
        cbs.on_epoch_begin(epoch)
        tb.set_model(model)  # the validation pass
        cbs.on_test_begin()
        cbs.on_test_end({"loss": 2.0})
        cbs.on_epoch_end(epoch, {"loss": 1.0 + epoch, "val_loss": 2.0})
    cbs.on_train_end()
    assert [os.path.basename(os.path.dirname(f)) for f in event_files(tmp_path)] == [
        "train",
        "validation",
    ]
    assert scalars(read_run(str(tmp_path / "train")), "epoch_loss") == ([0, 1], [1.0, 2.0])
    assert len(read_run(str(tmp_path / "train"))["keras"][1]) == 1  # the graph, written once


def test_a_resumed_run_continues_the_global_batch_count(tmp_path):
    """BackupAndRestore carries the batch counter, so resumed steps follow the first run's."""
    x, y = data(32)

    class Boom(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("boom")

    def fit(extra):
        tb = callbacks.TensorBoard(tmp_path / "logs", update_freq=1)
        backup = callbacks.BackupAndRestore(tmp_path / "backup")
        small_model().fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[tb, *extra, backup])

    with pytest.raises(RuntimeError, match="boom"):
        fit([Boom()])  # dies in epoch 1's end, before its backup: resumes after epoch 0
    fit([])
    first, resumed = event_files(tmp_path / "logs")
    runs = [EventAccumulator(f, size_guidance={"tensors": 0}) for f in (first, resumed)]
    for ea in runs:
        ea.Reload()
    assert [e.step for e in runs[0].Tensors("batch_loss")] == list(range(1, 9))
    assert [e.step for e in runs[1].Tensors("batch_loss")] == list(range(5, 13))
    assert [e.step for e in runs[1].Tensors("epoch_loss")] == [1, 2]
