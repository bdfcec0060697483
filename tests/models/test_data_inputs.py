"""Every input Keras 3's fit/evaluate/predict accept, in one process and under mpirun."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from distkeras.utils import PyDataset, set_random_seed
from tests.models.data_fakes import FakeTFDataset, check_shares

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 3)).astype("float32")
Y = (X @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]


def _model():
    set_random_seed(5)
    m = keras.Sequential([keras.Input((3,)), layers.Dense(4, activation="tanh"), layers.Dense(1)])
    m.compile("sgd", "mse")
    return m


def _weights_after(data, y=None, **kw):
    m = _model()
    m.fit(data, y, epochs=2, verbose=0, shuffle=False, **kw)
    return m.get_weights()


def _assert_same(a, b):
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def _batches(bs=6):
    return [(X[i : i + bs], Y[i : i + bs]) for i in range(0, len(X), bs)]


REFERENCE = None


def _reference():
    global REFERENCE
    if REFERENCE is None:
        REFERENCE = _weights_after(X, Y, batch_size=6)
    return REFERENCE


def test_pandas_dataframe_and_series_train_like_arrays():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    series = pd.Series(Y[:, 0])  # Keras turns a Series into a (n, 1) column
    _assert_same(_weights_after(df, series, batch_size=6), _reference())
    m = _model()
    np.testing.assert_allclose(m.predict(df, verbose=0), m.predict(X, verbose=0))


def test_generator_of_list_batches_trains_like_tuples():
    def gen(kind):
        while True:
            for bx, by in _batches():
                yield kind((bx, by))

    _assert_same(_weights_after(gen(list), steps_per_epoch=4), _reference())
    _assert_same(_weights_after(gen(tuple), steps_per_epoch=4), _reference())


class Batches(PyDataset):
    def __init__(self, infinite=False, **kw):
        super().__init__(**kw)
        self.infinite = infinite
        self.calls = []

    @property
    def num_batches(self):
        return None if self.infinite else 4

    def __getitem__(self, i):
        return list(_batches()[i % 4])

    def on_epoch_begin(self):
        self.calls.append("begin")

    def on_epoch_end(self):
        self.calls.append("end")


@pytest.mark.parametrize("kw", [{}, {"workers": 3, "max_queue_size": 2}, {"infinite": True}])
def test_pydataset_num_batches_workers_and_epoch_hooks(kw):
    ds = Batches(**kw)
    steps = {"steps_per_epoch": 4} if kw.get("infinite") else {}
    _assert_same(_weights_after(ds, **steps), _reference())
    assert ds.calls == ["begin", "end", "begin", "end"]


def test_pydataset_infinite_needs_steps_and_checks_its_arguments():
    with pytest.raises(ValueError, match="steps"):
        _model().fit(Batches(infinite=True), verbose=0)
    with pytest.raises(ValueError, match="Received: workers=-1"):
        Batches(workers=-1)


def test_pydataset_without_super_init_warns_and_works():
    class NoSuper(PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return _batches()[i]

    ds = NoSuper()
    with pytest.warns(UserWarning, match="super"):
        assert ds.workers == 1
    _assert_same(_weights_after(ds), _reference())


def test_tf_dataset_stand_in_trains_like_arrays():
    # real tf.data: tests/models/test_tf_data.py (TensorFlow runs in a subprocess there)
    ds = FakeTFDataset(_batches())
    _assert_same(_weights_after(ds), _reference())
    assert ds.shard_calls == []  # one process: nothing to shard
    with pytest.raises(ValueError, match="`y` should not be passed"):
        _model().fit(ds, Y, verbose=0)


class _OffOptions:
    """`options().experimental_distribute.auto_shard_policy` of tf.data, set to OFF."""

    class experimental_distribute:  # noqa: N801 - tf.data's attribute name
        class auto_shard_policy:  # noqa: N801 - an enum member: only its name is read
            name = "OFF"


def test_tf_dataset_auto_shard_off_and_infinite_cardinality():
    from types import SimpleNamespace

    from distkeras.models.library_adapters import tf_dataset_adapter

    rank1 = SimpleNamespace(rank=1, size=2)
    presharded = FakeTFDataset(_batches())
    presharded.options = _OffOptions
    adapter = tf_dataset_adapter(presharded, rank1, None, True, None, deterministic=False)
    # AutoShardPolicy.OFF: the user sharded it; this rank reads all of it, no second shard
    assert len(list(adapter.open_epoch(0))) == 4 and presharded.shard_calls == []
    plain = FakeTFDataset(_batches())
    adapter = tf_dataset_adapter(plain, rank1, None, True, None, deterministic=False)
    assert plain.shard_calls == [(2, 1)] and len(list(adapter.open_epoch(0))) == 2
    with pytest.raises(ValueError, match="Received: a tf.data.Dataset with auto_shard_policy=OFF"):
        tf_dataset_adapter(presharded, rank1, None, True, None, deterministic=True)
    infinite = FakeTFDataset(_batches())
    infinite.cardinality = lambda: np.int64(-1)  # tf.data.INFINITE_CARDINALITY
    with pytest.raises(ValueError, match=r"steps_per_epoch.*Received: steps=None"):
        _model().fit(infinite, verbose=0)


def test_validation_split_on_a_stream_names_its_type():
    # Keras 3: "Argument `validation_split` is only supported for tensors or NumPy arrays."
    def gen():
        yield from _batches()

    for x, kind in ((FakeTFDataset(_batches()), "data_fakes.FakeTFDataset"), (gen(), "generator")):
        with pytest.raises(ValueError, match=rf"`x` is a \S*{kind}:.*validation_split=0.2$"):
            _model().fit(x, validation_split=0.2, verbose=0)


def test_tf_dataset_unknown_cardinality_runs_to_its_end():
    _assert_same(_weights_after(FakeTFDataset(_batches(), known_cardinality=False)), _reference())


def test_torch_dataloader_and_dataset_train_like_arrays():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    tds = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    _assert_same(_weights_after(DataLoader(tds, batch_size=6)), _reference())
    _assert_same(_weights_after(tds, batch_size=6), _reference())
    m = _model()
    out = m.predict(DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=5), verbose=0)
    np.testing.assert_allclose(out, m.predict(X, verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="class_weight"):
        m.fit(DataLoader(tds, batch_size=6), class_weight={0: 1.0}, verbose=0)


def test_numpy_fit_imports_no_foreign_library():
    code = (
        "import sys, numpy as np, distkeras as keras\n"
        "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "m.compile('sgd', 'mse'); m.fit(np.ones((4, 2)), np.ones(4), verbose=0)\n"
        "m.fit((b for b in [(np.ones((2, 2)), np.ones(2))]), verbose=0)\n"
        "bad = [k for k in ('torch', 'tensorflow', 'pandas', 'jax') if k in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("dtype", ["bool", "int64", "uint8", "float64"])
def test_bool_and_integer_data_cast_to_the_input_dtype(dtype):
    # Keras 3.15 (jax): a float32 Input casts bool/int/float64 data, the output is float32.
    m = _model()
    xd = (X > 0).astype(dtype) if dtype != "float64" else X.astype(dtype)
    out = m.predict(xd, verbose=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, m.predict(xd.astype("float32"), verbose=0), rtol=1e-6)


def test_integer_input_truncates_floats_as_keras():
    # Keras 3.15: Input(dtype="int32") + Embedding gives the same rows for [[1.7, 2.2, 3.9]]
    # as for [[1, 2, 3]] (the values are cast to int32).
    i = keras.Input((3,), dtype="int32")
    m = keras.Model(i, layers.Embedding(10, 2)(i))
    np.testing.assert_array_equal(
        m.predict(np.array([[1.7, 2.2, 3.9]]), verbose=0),
        m.predict(np.array([[1, 2, 3]]), verbose=0),
    )


def test_string_input_feeds_text_vectorization():
    texts = np.array(["good movie", "bad film", "good good", "bad bad film"])
    tv = layers.TextVectorization(max_tokens=10, output_sequence_length=3)
    tv.adapt(texts)
    i = keras.Input((1,), dtype="string")
    assert i.dtype == "string"
    h = layers.GlobalAveragePooling1D()(layers.Embedding(10, 4)(tv(i)))
    m = keras.Model(i, layers.Dense(1, activation="sigmoid")(h))
    m.compile("adam", "binary_crossentropy")
    hist = m.fit(texts[:, None], np.array([1, 0, 1, 0]), epochs=3, verbose=0)
    assert len(hist.history["loss"]) == 3
    assert m.predict(texts[:, None], verbose=0).shape == (4, 1)


# ------------------------------------------------------------------ under mpirun
MPIRUN = shutil.which("mpirun")


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
@pytest.mark.parametrize("mode", ["default", "det"])
def test_each_rank_reads_its_share_under_mpirun(tmp_path, mode):
    """Each sample once per epoch across ranks, none twice in a global step, ranks in lockstep.

    Default mode: tf.data shards, torch DataLoaders give every N-th batch (or follow their
    DistributedSampler). Deterministic mode: every rank reads the same batches, keeps its slice.
    """
    pytest.importorskip("mpi4py")
    pytest.importorskip("torch")
    prefix = str(tmp_path / "shares")
    cmd = [
        MPIRUN,
        "--allow-run-as-root",
        "--oversubscribe",
        "-n",
        "2",
        sys.executable,
        str(ROOT / "tests/models/scripts/data_shares.py"),
        prefix,
        mode,
    ]
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMP_NUM_THREADS="1",
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_shares(prefix, mode)


def test_streams_as_validation_data():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(Y)), batch_size=5)
    for val in (loader, FakeTFDataset(_batches(5)), Batches()):
        m = _model()
        hist = m.fit(X[:6], Y[:6], epochs=1, verbose=0, validation_data=val)
        # validated after the one step: the loss of the stepped model on all 24 samples
        assert np.isclose(hist.history["val_loss"][0], m.evaluate(X, Y, verbose=0), rtol=1e-5)


def test_class_weight_on_pydataset_and_tf_dataset():
    # Keras: class_weight becomes per-sample weights of each generated batch.
    yc = (Y > 0).astype("float32")
    batches = [(X[i : i + 6], yc[i : i + 6]) for i in range(0, 24, 6)]
    cw = {0: 0.25, 1: 2.0}
    sw = np.where(yc[:, 0] > 0, 2.0, 0.25)
    m = _model()
    m.fit(X, yc, sample_weight=sw, batch_size=6, shuffle=False, epochs=2, verbose=0)
    ref = m.get_weights()
    m2 = _model()
    m2.fit(FakeTFDataset(batches), class_weight=cw, epochs=2, verbose=0)
    _assert_same(m2.get_weights(), ref)
    with pytest.raises(ValueError, match="class_weight"):
        _model().fit((b for b in batches), class_weight=cw, verbose=0)


def test_stream_batches_are_checked_like_arrays():
    """input_checks run on each batch of every stream: dtype and emptiness, naming the part."""
    texts = np.array([["a"], ["b"]], dtype=object)
    with pytest.raises(ValueError, match=r"numeric data .* Received: x with dtype object"):
        _model().fit(FakeTFDataset([(texts, Y[:2])]), verbose=0)
    with pytest.raises(ValueError, match="Received: y with dtype <U1"):
        _model().fit(FakeTFDataset([(X[:2], np.array(["a", "b"]))]), verbose=0)
    with pytest.raises(ValueError, match="at least one sample"):
        _model().fit(iter([(X[:0], Y[:0])]), verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        _model().fit(iter([[X[:3], Y[:2]]]), verbose=0)


def test_pandas_validation_split_and_dict_of_series():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    m = _model()
    hist = m.fit(df, pd.Series(Y[:, 0]), validation_split=0.25, epochs=1, verbose=0)
    # Keras holds out the last 25% of the rows (before any shuffling)
    np.testing.assert_allclose(
        hist.history["val_loss"][0], m.evaluate(X[18:], Y[18:], verbose=0), rtol=1e-5
    )
    i = {k: keras.Input((1,), name=k) for k in "abc"}
    out = layers.Dense(1)(layers.Concatenate()([i["a"], i["b"], i["c"]]))
    mm = keras.Model(i, out)
    np.testing.assert_allclose(
        mm.predict({k: df[k] for k in "abc"}, verbose=0),
        mm.predict({k: X[:, j : j + 1] for j, k in enumerate("abc")}, verbose=0),
        rtol=1e-6,
    )


def test_torch_iterable_dataset_is_batched_with_batch_size():
    torch = pytest.importorskip("torch")

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            for i in range(len(X)):
                yield torch.from_numpy(X[i]), torch.from_numpy(Y[i])

    _assert_same(_weights_after(Stream(), batch_size=6), _reference())


def test_sequence_is_pydataset_as_in_keras():
    # Keras 3.15: keras.utils.Sequence is keras.utils.PyDataset
    from distkeras.utils import Sequence

    assert Sequence is PyDataset


def test_steps_per_epoch_carries_a_dataset_pass_across_epochs():
    """Keras 3.15's EpochIterator: with steps_per_epoch the pass goes on across epochs,
    an epoch ends early when the data runs out, and the next epoch starts a new pass."""
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model._fit_cursor[0])

    batches = [(X[i : i + 4], Y[i : i + 4]) for i in range(0, 20, 4)]  # 5 batches
    m = _model()
    first_rows = []
    ds = FakeTFDataset(batches)
    original = ds.as_numpy_iterator

    def tracking():
        for b in original():
            first_rows.append(float(b[0][0, 0]))
            yield b

    ds.as_numpy_iterator = tracking
    m.fit(ds, steps_per_epoch=2, epochs=4, verbose=0, callbacks=[Recorder()])
    starts = [float(b[0][0, 0]) for b in batches]
    assert first_rows == starts[:5] + starts[:2]  # 0,1 | 2,3 | 4 (ran out) | 0,1
    assert seen == [0, 0, 1, 1, 2, 3, 3]
