"""Ray Data inputs to `fit` in one process, with stand-ins shaped like Ray's classes.

The stand-ins' types come from a module under `ray.data`, as Ray's own
`DataIterator` and `iter_batches` results do, which is all `fit` looks at (it
never imports Ray). Ray Data shards under Ray Train: test_ray_train.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import distkeras as keras
from distkeras.models.ray_data import RayBatches, ray_data_adapter


class DataIterator:
    """Like `ray.data.DataIterator`: `iter_batches` yields dicts of NumPy columns."""

    def __init__(self, columns: dict):
        self.columns = columns
        self.calls: list[dict] = []

    def iter_batches(self, *, batch_size=256, batch_format="default", drop_last=False, **kw):
        self.calls.append({"batch_size": batch_size, "drop_last": drop_last, **kw})
        n = len(next(iter(self.columns.values())))
        return Batches(self.columns, batch_size, n)


class Batches:
    """Like the iterable `iter_batches` returns: a fresh pass on every `iter`."""

    def __init__(self, columns: dict, batch_size: int, n: int):
        self.columns, self.batch_size, self.n = columns, batch_size, n

    def __iter__(self):
        for lo in range(0, self.n, self.batch_size):
            yield {k: v[lo : lo + self.batch_size] for k, v in self.columns.items()}


class Dataset(DataIterator):
    """Like a whole `ray.data.Dataset`."""


for cls in (DataIterator, Batches, Dataset):
    cls.__module__ = "ray.data.iterator"


def data(n=40):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 4)).astype("float32")
    y = (x @ rng.standard_normal((4, 1))).astype("float32")
    return x, y


def build():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def reference(batch_size=16, epochs=2, sample_weight=None):
    x, y = data()
    model = build()
    hist = model.fit(
        x,
        y,
        sample_weight=sample_weight,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=False,
        verbose=0,
    )
    return model, hist.history["loss"]


def assert_same(model, ref):
    for a, b in zip(model.weights, ref.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_shard_by_column_names_trains_as_the_same_arrays():
    x, y = data()
    ids = np.arange(len(x))
    shard = DataIterator({"x": x, "y": y, "id": ids})  # other columns are ignored
    model = build()
    hist = model.fit(shard, batch_size=16, epochs=2, verbose=0)
    ref, losses = reference()
    assert_same(model, ref)
    assert hist.history["loss"] == losses
    assert [c["batch_size"] for c in shard.calls] == [16, 16]  # one pass per epoch


def test_iter_batches_of_a_shard_feeds_fit_directly():
    x, y = data()
    model = build()
    model.fit(DataIterator({"x": x, "y": y}).iter_batches(batch_size=16), epochs=2, verbose=0)
    assert_same(model, reference()[0])


def test_dataset_batches_names_the_columns_and_sample_weights():
    x, y = data()
    sw = np.linspace(0.5, 1.5, len(x)).astype("float32")
    shard = DataIterator({"features": x, "target": y, "w": sw})
    batches = RayBatches(shard, "features", "target", sample_weight_column="w", batch_size=16)
    model = build()
    model.fit(batches, epochs=2, verbose=0)
    assert_same(model, reference(sample_weight=sw)[0])
    assert shard.calls[0]["drop_last"] is False


def test_a_list_of_feature_columns_gives_a_dict_of_inputs():
    x, y = data()
    a_in, b_in = keras.Input((2,), name="a"), keras.Input((2,), name="b")
    keras.utils.set_random_seed(5)
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([a_in, b_in]))
    model = keras.Model({"a": a_in, "b": b_in}, out)
    model.compile(optimizer="sgd", loss="mse")
    shard = DataIterator({"a": x[:, :2], "b": x[:, 2:], "y": y})
    hist = model.fit(RayBatches(shard, ["a", "b"], "y", batch_size=8), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    first = next(iter(RayBatches(shard, ["a", "b"], "y", batch_size=8)))
    assert set(first[0]) == {"a", "b"} and first[1].shape == (8, 1)


def test_unknown_columns_are_refused_by_name():
    x, y = data()
    model = build()
    with pytest.raises(ValueError, match=r"'x', 'y'.*Received: columns=\['features', 'y'\]"):
        model.fit(DataIterator({"features": x, "y": y}), verbose=0)
    with pytest.raises(ValueError, match=r"no column 'label'.*Received: label_columns='label'"):
        model.fit(RayBatches(DataIterator({"x": x, "y": y}), "x", "label"), verbose=0)
    with pytest.raises(ValueError, match="`y` should not be passed"):
        model.fit(DataIterator({"x": x}), y, verbose=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"feature_columns": 3}, "feature_columns=3"),
        ({"label_columns": []}, r"label_columns=\[\]"),
        ({"sample_weight_column": ["w"]}, r"sample_weight_column=\['w'\]"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_dataset_batches_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RayBatches(DataIterator({"x": np.zeros(2)}), **kwargs)


def test_not_a_shard_is_refused():
    with pytest.raises(ValueError, match="Received: shard of type ndarray"):
        RayBatches(np.zeros(3))


def test_two_ranks_refuse_deterministic_mode_and_a_whole_dataset():
    x, y = data()
    comm = SimpleNamespace(rank=0, size=2)
    shard = DataIterator({"x": x, "y": y})
    with pytest.raises(ValueError, match="Deterministic mode"):
        ray_data_adapter(shard, comm, 16, None, True, None, deterministic=True)
    with pytest.raises(ValueError, match="get_dataset_shard"):
        ray_data_adapter(Dataset({"x": x, "y": y}), comm, 16, None, True, None, False)
    with pytest.raises(ValueError, match="batch_size=1"):
        ray_data_adapter(shard, comm, 1, None, True, None, deterministic=False)
    # one process: a whole Dataset is just data
    assert (
        ray_data_adapter(
            Dataset({"x": x}), SimpleNamespace(rank=0, size=1), 8, None, True, None, False
        )
        is not None
    )


def test_each_rank_reads_its_share_of_the_global_batch_size():
    x, y = data()
    shards = [DataIterator({"x": x[r::2], "y": y[r::2]}) for r in range(2)]
    for rank, shard in enumerate(shards):
        comm = SimpleNamespace(rank=rank, size=2)
        ray_data_adapter(shard, comm, 15, None, True, None, False).open_epoch(0)
    assert [s.calls[0]["batch_size"] for s in shards] == [8, 7]


def test_evaluate_and_validation_data_read_a_shard_too():
    x, y = data()
    shard = DataIterator({"x": x, "y": y})
    model = build()
    want = model.evaluate(x, y, batch_size=16, verbose=0)
    assert model.evaluate(shard, batch_size=16, verbose=0) == want
    hist = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, validation_data=shard, verbose=0)
    ref = build()
    ref_hist = ref.fit(
        x, y, batch_size=16, epochs=1, shuffle=False, validation_data=(x, y), verbose=0
    )
    np.testing.assert_allclose(hist.history["val_loss"], ref_hist.history["val_loss"], rtol=1e-6)
