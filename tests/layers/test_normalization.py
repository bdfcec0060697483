"""Normalization layers: harness table, Keras formulas in NumPy, moving statistics,
training-mode gradients and the synchronized (cross-rank) batch-norm VJP."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from distkeras import backend, initializers, layers
from distkeras.backend.normalization import _batch_norm_train, batch_norm_train
from tests.harness import check_grad
from tests.layers.harness import run_layer_test

RN = {"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 0.5, "seed": 1}}
RN0 = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.5, "seed": 2}}
POS = {"class_name": "RandomUniform", "config": {"minval": 0.5, "maxval": 2.0, "seed": 3}}
AFFINE = {"gamma_initializer": RN, "beta_initializer": RN0}

CASES = [
    # name, cls, kwargs, input shape, expected shape, trainable, non-trainable, training
    ("bn", layers.BatchNormalization, {}, (4, 3), (4, 3), 2, 2, False),
    (
        "bn_moving_stats",
        layers.BatchNormalization,
        {**AFFINE, "moving_mean_initializer": RN0, "moving_variance_initializer": POS},
        (4, 3),
        (4, 3),
        2,
        2,
        False,
    ),
    (
        "bn_axis1",
        layers.BatchNormalization,
        {"axis": 1, **AFFINE, "moving_variance_initializer": POS},
        (2, 3, 4),
        (2, 3, 4),
        2,
        2,
        False,
    ),
    ("bn_training", layers.BatchNormalization, AFFINE, (5, 2, 3), (5, 2, 3), 2, 2, True),
    (
        "bn_no_affine",
        layers.BatchNormalization,
        {"center": False, "scale": False},
        (4, 3),
        (4, 3),
        0,
        2,
        False,
    ),
    ("ln", layers.LayerNormalization, AFFINE, (2, 5), (2, 5), 2, 0, False),
    ("ln_3d", layers.LayerNormalization, AFFINE, (2, 3, 4), (2, 3, 4), 2, 0, False),
    (
        "ln_axes",
        layers.LayerNormalization,
        {"axis": [1, 2], **AFFINE},
        (2, 3, 4),
        None,
        2,
        0,
        False,
    ),
    ("ln_no_center", layers.LayerNormalization, {"center": False}, (2, 5), (2, 5), 1, 0, False),
    (
        "ln_rms",
        layers.LayerNormalization,
        {"rms_scaling": True, "gamma_initializer": RN},
        (2, 5),
        (2, 5),
        1,
        0,
        False,
    ),
    ("gn", layers.GroupNormalization, {"groups": 2, **AFFINE}, (2, 3, 4), (2, 3, 4), 2, 0, False),
    (
        "gn_channels_first",
        layers.GroupNormalization,
        {"groups": 3, "axis": 1, **AFFINE},
        (2, 6, 2),
        (2, 6, 2),
        2,
        0,
        False,
    ),
    ("gn_instance", layers.GroupNormalization, {"groups": -1}, (2, 4, 3), (2, 4, 3), 2, 0, False),
    ("unit", layers.UnitNormalization, {}, (2, 5), (2, 5), 0, 0, False),
    ("unit_axes", layers.UnitNormalization, {"axis": [1, 2]}, (2, 3, 4), (2, 3, 4), 0, 0, False),
]


@pytest.mark.parametrize(
    "name,cls,kwargs,in_shape,out_shape,n_tr,n_ntr,training", CASES, ids=[c[0] for c in CASES]
)
def test_normalization_layer(name, cls, kwargs, in_shape, out_shape, n_tr, n_ntr, training):
    run_layer_test(
        cls,
        kwargs,
        input_shape=in_shape,
        expected_output_shape=out_shape or in_shape,
        expected_num_trainable_weights=n_tr,
        expected_num_non_trainable_weights=n_ntr,
        training=training,
    )


# ----------------------------------------------------------------------- formulas
def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, size=shape)


def _ln_ref(x, axes, eps, gamma=1.0, beta=0.0):
    m = x.mean(axes, keepdims=True)
    v = x.var(axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * gamma + beta


def test_batch_norm_training_inference_and_moving_statistics():
    backend.set_floatx("float64")
    try:
        x1, x2 = _x((6, 3), 0), _x((6, 3), 1)
        layer = layers.BatchNormalization(momentum=0.9, **AFFINE)
        out = np.asarray(layer(x1, training=True))
        gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
        np.testing.assert_allclose(out, _ln_ref(x1, 0, 1e-3, gamma, beta), rtol=1e-10)
        layer(x2, training=True)
        mm = (0.0 * 0.9 + x1.mean(0) * 0.1) * 0.9 + x2.mean(0) * 0.1
        mv = (1.0 * 0.9 + x1.var(0) * 0.1) * 0.9 + x2.var(0) * 0.1
        np.testing.assert_allclose(layer.moving_mean.numpy(), mm, rtol=1e-10)
        np.testing.assert_allclose(layer.moving_variance.numpy(), mv, rtol=1e-10)
        inf = np.asarray(layer(x1))  # inference: moving statistics, no update
        np.testing.assert_allclose(inf, (x1 - mm) / np.sqrt(mv + 1e-3) * gamma + beta, rtol=1e-10)
        np.testing.assert_allclose(layer.moving_mean.numpy(), mm, rtol=1e-12)
    finally:
        backend.set_floatx("float32")


def test_batch_norm_channels_first_statistics():
    x = _x((4, 3, 5)).astype("float32")
    layer = layers.BatchNormalization(axis=1, epsilon=0.01)
    out = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(out, _ln_ref(x, (0, 2), 0.01), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.01 * x.mean((0, 2)), rtol=1e-5)


def test_frozen_batch_norm_runs_in_inference_mode():
    x = _x((6, 3)).astype("float32")
    layer = layers.BatchNormalization()
    layer.trainable = False
    out = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.zeros(3))


def test_batch_norm_mask_excludes_padded_steps_from_statistics():
    x = _x((3, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], bool)
    layer = layers.BatchNormalization(momentum=0.0)
    layer(x.astype("float32"), training=True, mask=mask)
    kept = x[mask]
    np.testing.assert_allclose(layer.moving_mean.numpy(), kept.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), kept.var(0), rtol=1e-4)


def test_layer_norm_and_group_norm_and_unit_norm_formulas():
    x = _x((2, 3, 4)).astype("float32")
    ln = np.asarray(layers.LayerNormalization()(x))
    np.testing.assert_allclose(ln, _ln_ref(x, -1, 1e-3), rtol=1e-4, atol=1e-5)
    ln12 = np.asarray(layers.LayerNormalization(axis=[1, 2], epsilon=0.1)(x))
    np.testing.assert_allclose(ln12, _ln_ref(x, (1, 2), 0.1), rtol=1e-4, atol=1e-5)
    rms = np.asarray(layers.LayerNormalization(rms_scaling=True)(x))
    np.testing.assert_allclose(rms, x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-3), rtol=1e-5)
    gn = np.asarray(layers.GroupNormalization(groups=2)(x))
    g = x.reshape(2, 3, 2, 2)
    ref = _ln_ref(g, (1, 3), 1e-3).reshape(x.shape)
    np.testing.assert_allclose(gn, ref, rtol=1e-4, atol=1e-5)
    un = np.asarray(layers.UnitNormalization()(x))
    np.testing.assert_allclose(un, x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-5)


# ----------------------------------------------------------------------- gradients
@pytest.mark.parametrize("axis", [-1, 1])
def test_batch_norm_training_gradients_match_finite_differences(axis):
    backend.set_floatx("float64")
    try:
        x = _x((4, 3, 2))
        c = x.shape[axis]
        gamma = np.random.default_rng(5).normal(1, 0.5, c)
        beta = np.random.default_rng(6).normal(0, 0.5, c)

        def fn(xa, ga, ba):
            return batch_norm_train(xa, ga, ba, axis=axis, epsilon=1e-3)[0]

        check_grad(fn, x, gamma, beta)
        layer = layers.BatchNormalization(axis=axis, **AFFINE)
        check_grad(lambda xa: layer(xa, training=True), x)
    finally:
        backend.set_floatx("float32")


def test_masked_batch_norm_training_gradient():
    backend.set_floatx("float64")
    try:
        x = _x((3, 4, 2))
        mask = np.random.default_rng(2).random((3, 4)) > 0.3
        gamma, beta = np.array([0.7, 1.3]), np.array([0.1, -0.2])
        check_grad(lambda xa, ga, ba: batch_norm_train(xa, ga, ba, mask=mask)[0], x, gamma, beta)
    finally:
        backend.set_floatx("float32")


class _ThreadComm:
    """A two-rank communicator over threads: allreduce sums through a barrier."""

    def __init__(self, rank: int, shared: dict):
        self.rank, self.size, self.shared = rank, 2, shared

    def allreduce(self, arr, op="sum", compression=None):
        self.shared["bufs"][self.rank] = np.array(arr, copy=True)
        self.shared["barrier"].wait()
        total = self.shared["bufs"][0] + self.shared["bufs"][1]
        self.shared["barrier"].wait()
        return total


@pytest.mark.parametrize("masked", [False, True])
def test_synchronized_vjp_equals_the_full_batch_gradient(masked):
    """Two simulated ranks holding halves of a batch reproduce the one-process batch norm."""
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(8, 5, 3))
    g = rng.normal(size=x.shape)
    gamma, beta = rng.normal(1, 0.3, 3), rng.normal(0, 0.3, 3)
    w = (rng.random((8, 5, 1)) > 0.3) if masked else None
    kw = {"axis": 2, "eps": 1e-3}
    full_stats: dict = {}
    full_out, full_vjp = _batch_norm_train(x, gamma, beta, weights=w, stats=full_stats, **kw)
    full_grads = full_vjp(g, (True, True, True))
    shared = {"bufs": [None, None], "barrier": threading.Barrier(2, timeout=20)}
    results: list = [None, None]

    def rank(r: int):
        sl = slice(0, 3) if r == 0 else slice(3, 8)  # uneven shards
        stats: dict = {}
        out, vjp = _batch_norm_train(
            x[sl],
            gamma,
            beta,
            weights=None if w is None else w[sl],
            comm=_ThreadComm(r, shared),
            stats=stats,
            **kw,
        )
        results[r] = (out, vjp(g[sl], (True, True, True)), stats)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (o0, g0, s0), (o1, g1, s1) = results
    np.testing.assert_allclose(np.concatenate([o0, o1]), full_out, rtol=1e-7, atol=1e-7)
    for s in (s0, s1):
        np.testing.assert_allclose(s["mean"], full_stats["mean"], rtol=1e-9)
        np.testing.assert_allclose(s["variance"], full_stats["variance"], rtol=1e-7)
    # Input gradient: each rank holds its slice of the global one.
    np.testing.assert_allclose(np.concatenate([g0[0], g1[0]]), full_grads[0], atol=1e-7)
    # Parameter gradients are local; the trainer's sum across ranks completes them.
    np.testing.assert_allclose(g0[1] + g1[1], full_grads[1], rtol=1e-7)
    np.testing.assert_allclose(g0[2] + g1[2], full_grads[2], rtol=1e-9)
    assert not np.allclose(g0[1], full_grads[1])


def test_synchronized_flag_is_a_no_op_in_one_process():
    x = _x((6, 3)).astype("float32")
    a = layers.BatchNormalization(synchronized=True)
    b = layers.BatchNormalization()
    np.testing.assert_allclose(np.asarray(a(x, training=True)), np.asarray(b(x, training=True)))
    assert layers.BatchNormalization.from_config(a.get_config()).synchronized is True


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make,shape,exc,match",
    [
        (lambda: layers.GroupNormalization(groups=3), (2, 4), ValueError, "groups=3"),
        (lambda: layers.GroupNormalization(groups=8), (2, 4), ValueError, "cannot be more"),
        (lambda: layers.GroupNormalization(groups=0), None, ValueError, "Received: groups=0"),
        (lambda: layers.BatchNormalization(axis="x"), None, TypeError, "Received: axis='x'"),
        (lambda: layers.BatchNormalization(axis=3), (2, 4), ValueError, "Received: axis=3"),
        (lambda: layers.BatchNormalization(epsilon=-1), None, ValueError, "epsilon=-1"),
        (lambda: layers.LayerNormalization(axis=1.5), None, TypeError, "axis=1.5"),
        (lambda: layers.LayerNormalization(axis=[1, 5]), (2, 4), ValueError, "axis=5"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, shape, exc, match):
    with pytest.raises(exc, match=match):
        layer = make()
        layer(np.zeros(shape, "float32"))


def test_built_batch_norm_rejects_other_channel_counts():
    layer = layers.BatchNormalization()
    layer(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        layer(np.zeros((2, 4), "float32"))


def test_weights_are_named_like_keras():
    layer = layers.BatchNormalization(gamma_initializer=initializers.Ones())
    layer(np.zeros((2, 3), "float32"))
    assert [v.name for v in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [v.name for v in layer.trainable_weights] == ["gamma", "beta"]
