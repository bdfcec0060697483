"""Real `tf.data` pipelines, as the Keras guides write them, next to the same training on arrays.

usage: tf_data_cases.py OUT_PREFIX [CASE ...]   (writes OUT_PREFIX.npz and OUT_PREFIX.json)

Run in its own process by tests/models/test_tf_data.py, so that TensorFlow (its
import time, thread pools and native libraries) stays out of the test process.
Each case returns `(tf_values, numpy_values)`: what distkeras gave on the
tf.data pipeline and on the equivalent NumPy arrays; the test compares them.
An exception in a case is recorded (with its message) instead of stopping the others.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import distkeras as keras  # noqa: E402
from distkeras import layers  # noqa: E402
from distkeras.utils import set_random_seed  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.models.data_fakes import FakeTFDataset  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 3)).astype("float32")
Y = (X @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]
XV = RNG.normal(size=(10, 3)).astype("float32")
YV = (XV @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]
SW = RNG.uniform(0.1, 2.0, size=24).astype("float32")
YC = (Y > 0).astype("float32")
Slices = tf.data.Dataset.from_tensor_slices


def _model(metrics=None):
    set_random_seed(5)
    m = keras.Sequential([keras.Input((3,)), layers.Dense(4, activation="tanh"), layers.Dense(1)])
    m.compile("sgd", "mse", metrics=metrics)
    return m


def _fit_weights(data, y=None, **kw):
    m = _model()
    m.fit(data, y, verbose=0, **kw)
    return m.get_weights()


def _arrays(**kw):
    """The same training on the arrays X, Y: batches of 6 in order, 2 epochs."""
    return _fit_weights(X, Y, batch_size=6, shuffle=False, epochs=2, **kw)


def shuffle_batch_validation():
    """`from_tensor_slices((x, y)).shuffle(n, seed).batch(6)`, validation on another dataset."""

    def train():
        return Slices((X, Y)).shuffle(24, seed=7).batch(6)

    m = _model()
    hist = m.fit(train(), validation_data=Slices((XV, YV)).batch(4), epochs=2, verbose=0)
    # The order the same pipeline gives each epoch (a fresh copy, iterated twice):
    # every row of X is distinct, so each batch row names its sample.
    copy, orders = train(), []
    for _ in range(2):
        rows = np.concatenate([bx.numpy() for bx, _ in copy])
        orders.append([int(np.flatnonzero((X == r).all(axis=1))[0]) for r in rows])
    ref, val = _model(), []
    for order in orders:
        ref.fit(X[order], Y[order], batch_size=6, shuffle=False, epochs=1, verbose=0)
        val.append(ref.evaluate(XV, YV, verbose=0))
    permutations = [np.array(sorted(o)) for o in orders]
    return (
        [*m.get_weights(), np.array(hist.history["val_loss"]), *permutations],
        [*ref.get_weights(), np.array(val), np.arange(24), np.arange(24)],
    ), {"orders_differ": orders[0] != orders[1]}


def evaluate_and_predict():
    m = _model(metrics=["mae"])
    tf_vals = [
        np.array(m.evaluate(Slices((X, Y)).batch(5), verbose=0)),
        m.predict(Slices(X).batch(5), verbose=0),  # a dataset of x only
        m.predict(Slices(X).batch(5).prefetch(tf.data.AUTOTUNE), verbose=0),
    ]
    np_vals = [
        np.array(m.evaluate(X, Y, batch_size=5, verbose=0)),
        m.predict(X, verbose=0),
        m.predict(X, verbose=0),
    ]
    return tf_vals, np_vals


def dict_inputs():
    def build():
        set_random_seed(5)
        i = {k: keras.Input((1,), name=k) for k in "ab"}
        m = keras.Model(i, layers.Dense(1)(layers.Concatenate()([i["a"], i["b"]])))
        m.compile("sgd", "mse")
        return m

    xs = {"a": X[:, :1], "b": X[:, 1:2]}
    m = build()
    m.fit(Slices((xs, Y)).batch(6), epochs=2, verbose=0)
    ref = build()
    ref.fit(xs, Y, batch_size=6, shuffle=False, epochs=2, verbose=0)
    return m.get_weights(), ref.get_weights()


def sample_weight():
    return _fit_weights(Slices((X, Y, SW)).batch(6), epochs=2), _arrays(sample_weight=SW)


def repeat_steps_per_epoch():
    # 4 batches of 6, read 3 per epoch: the pass carries on (b0 b1 b2 | b3 b0 b1), as in Keras
    tfw = _fit_weights(Slices((X, Y)).batch(6).repeat(), steps_per_epoch=3, epochs=2)
    order = np.r_[np.arange(24), np.arange(12)]
    ref = _fit_weights(X[order], Y[order], batch_size=6, shuffle=False, epochs=1)
    return tfw, ref


def class_weight():
    cw = {0: 0.25, 1: 2.0}
    tfw = _fit_weights(Slices((X, YC)).batch(6), class_weight=cw, epochs=2)
    return tfw, _fit_weights(X, YC, batch_size=6, shuffle=False, epochs=2, class_weight=cw)


def prefetch_and_unknown_cardinality():
    pipelines = [
        Slices((X, Y)).batch(6).prefetch(tf.data.AUTOTUNE),
        Slices((X, Y)).filter(lambda a, b: tf.reduce_all(tf.math.is_finite(a))).batch(6),
        Slices((X, Y)).batch(6).map(lambda a, b: [a, b]),  # a list batch
    ]
    return [w for p in pipelines for w in _fit_weights(p, epochs=2)], _arrays() * len(pipelines)


def text_vectorization():
    texts = np.array(["good movie", "bad film", "good good", "bad bad film", "a film", "movie"])
    labels = np.array([1, 0, 1, 0, 0, 1], dtype="float32")

    def build(adapt_data):
        set_random_seed(5)
        tv = layers.TextVectorization(max_tokens=10, output_sequence_length=3)
        tv.adapt(adapt_data)
        i = keras.Input((1,), dtype="string")
        h = layers.GlobalAveragePooling1D()(layers.Embedding(10, 4)(tv(i)))
        m = keras.Model(i, layers.Dense(1, activation="sigmoid")(h))
        m.compile("sgd", "binary_crossentropy")
        return m, tv

    m, tv = build(Slices(texts).batch(4))  # adapt on a dataset of strings, as the guides do
    m.fit(Slices((texts[:, None], labels)).batch(2), epochs=2, verbose=0)
    pred = m.predict(Slices(texts[:, None]).batch(4), verbose=0)
    ref, ref_tv = build(texts)
    ref.fit(texts[:, None], labels, batch_size=2, shuffle=False, epochs=2, verbose=0)
    vocab = [np.array(tv.get_vocabulary())]
    return (
        [*m.get_weights(), pred, *vocab],
        [
            *ref.get_weights(),
            ref.predict(texts[:, None], verbose=0),
            np.array(ref_tv.get_vocabulary()),
        ],
    )


def sparse_and_ragged():
    """Keras 3 densifies a SparseTensor and pads a RaggedTensor with zeros (`to_tensor()`)."""
    dense = X.copy()
    dense[np.abs(dense) < 0.5] = 0.0
    sparse = tf.sparse.from_dense(dense)
    lengths = np.array([3, 1, 2, 3, 2, 1] * 4)  # each batch of 6 has a full row
    rows = [list(X[i, : lengths[i]]) for i in range(24)]
    padded = np.where(np.arange(3) < lengths[:, None], X, 0.0).astype("float32")
    tfw = _fit_weights(Slices((sparse, Y)).batch(6), epochs=2)
    tfw += _fit_weights(Slices((tf.ragged.constant(rows, dtype=tf.float32), Y)).batch(6), epochs=2)
    npw = _fit_weights(dense, Y, batch_size=6, shuffle=False, epochs=2)
    npw += _fit_weights(padded, Y, batch_size=6, shuffle=False, epochs=2)
    return tfw, npw


def stand_in_matches_tf():
    """The duck-typed stand-in (tests without TensorFlow) claims only what tf.data does."""
    batches = [(X[i : i + 5], Y[i : i + 5]) for i in range(0, 24, 5)]
    real = Slices((X, Y)).batch(5)
    fake = FakeTFDataset(batches)
    tf_vals, np_vals = [], []
    for n, i in ((2, 0), (2, 1), (3, 2)):
        tf_vals += [np.concatenate([b[0].numpy() for b in real.shard(n, i)])]
        np_vals += [np.concatenate([b[0] for b in fake.shard(n, i).as_numpy_iterator()])]
        tf_vals.append(np.array(int(real.shard(n, i).cardinality())))
        np_vals.append(np.array(int(fake.shard(n, i).cardinality())))
    unknown = real.filter(lambda a, b: True)
    tf_vals.append(np.array(int(unknown.cardinality())))
    np_vals.append(np.array(int(FakeTFDataset(batches, known_cardinality=False).cardinality())))
    return tf_vals, np_vals


CASES: dict[str, Callable] = {
    f.__name__: f
    for f in (
        shuffle_batch_validation,
        evaluate_and_predict,
        dict_inputs,
        sample_weight,
        repeat_steps_per_epoch,
        class_weight,
        prefetch_and_unknown_cardinality,
        text_vectorization,
        sparse_and_ragged,
        stand_in_matches_tf,
    )
}


def errors() -> dict[str, str]:
    """Messages of what tf.data input must refuse."""
    out = {}
    try:
        _model().fit(Slices((X, Y)).batch(6).repeat(), epochs=1, verbose=0)
    except ValueError as e:
        out["infinite"] = str(e)
    try:
        _model().fit(Slices((X, Y)).batch(6), Y, verbose=0)
    except ValueError as e:
        out["y_given"] = str(e)
    return out


def main() -> None:
    out, names = sys.argv[1], sys.argv[2:] or list(CASES)
    arrays, report = {}, {"errors": {}, "info": {}, "refused": errors()}
    for name in names:
        try:
            result = CASES[name]()
            if isinstance(result[1], dict):
                (tf_vals, np_vals), report["info"][name] = result
            else:
                tf_vals, np_vals = result
            for side, values in (("tf", tf_vals), ("np", np_vals)):
                for i, v in enumerate(values):
                    arrays[f"{name}/{side}/{i}"] = np.asarray(v)
        except Exception:  # recorded for the test to show
            report["errors"][name] = traceback.format_exc()
    np.savez(f"{out}.npz", **arrays)
    Path(f"{out}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
