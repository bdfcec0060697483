"""Control flow, slicing, scatter updates and custom gradients of `distkeras/ops/core.py`.

Values marked "Keras 3.15.1" were recorded from Keras 3.15.1's numpy backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops
from distkeras.backend import GradientTape, Variable, to_numpy
from tests.harness import check_grad

R = np.random.default_rng(7)


def anyv(*shape):
    return R.normal(size=shape)


def npv(t):
    return to_numpy(t)


# ---------------------------------------------------------------- cond / switch
def test_cond_runs_only_the_branch_taken_and_differentiates_it():
    calls = []

    def t_fn():
        calls.append("t")
        return 1.0

    def f_fn():
        calls.append("f")
        return 2.0

    assert ops.cond(ops.convert_to_tensor(False), t_fn, f_fn) == 2.0 and calls == ["f"]
    assert ops.cond(True, t_fn, f_fn) == 1.0
    x = anyv(3)
    check_grad(lambda v: ops.cond(ops.sum(v) > -100, lambda: ops.sin(v), lambda: v * 3.0), x)
    check_grad(lambda v: ops.cond(ops.sum(v) > 100, lambda: ops.sin(v), lambda: v * 3.0), x)


def test_cond_and_switch_reject_bad_arguments():
    with pytest.raises(ValueError, match="pred"):
        ops.cond(np.array([True, False]), lambda: 1, lambda: 2)
    with pytest.raises(TypeError, match="true_fn"):
        ops.cond(True, 1, lambda: 2)
    with pytest.raises(ValueError, match="branches"):
        ops.switch(0, [], 1.0)
    with pytest.raises(ValueError, match="symbolic"):
        ops.cond(keras.Input((2,)), lambda: 1, lambda: 2)


def test_switch_clamps_the_index_and_differentiates_the_branch():
    branches = [lambda x, y: x + y, lambda x, y: x - y]
    x, y = ops.convert_to_tensor(2.0), ops.convert_to_tensor(0.5)
    assert float(ops.switch(0, branches, x, y)) == 2.5  # Keras docs
    assert float(ops.switch(1, branches, x, y)) == 1.5
    assert float(ops.switch(5, branches, x, y)) == 1.5  # clamped, as Keras 3.15.1 (1.0 - 1 ...)
    assert float(ops.switch(-3, branches, x, y)) == 2.5
    check_grad(lambda a, b: ops.switch(1, [ops.multiply, ops.subtract], a, b), anyv(3), anyv(3))


# ---------------------------------------------------------------- loops
def test_while_loop_matches_keras():
    # Keras 3.15.1: 10, and (10, 11) as a tuple for a list of loop variables
    assert int(ops.while_loop(lambda i: i < 10, lambda i: i + 1, 0)) == 10
    out = ops.while_loop(lambda x, y: x < 10, lambda x, y: (x + 1, y + 1), [0, 1])
    assert isinstance(out, tuple) and [int(v) for v in out] == [10, 11]
    assert out[0].dtype == "int32"
    assert int(ops.while_loop(lambda i: i < 10, lambda i: i + 1, 0, maximum_iterations=4)) == 4
    with pytest.raises(ValueError, match="loop variable"):
        ops.while_loop(lambda x, y: x < 3, lambda x, y: x + 1, (0, 0))


def test_while_loop_and_fori_loop_are_differentiable():
    def f(v):
        _, out = ops.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, ops.sin(x) * x), (0, v))
        return out

    check_grad(f, anyv(4))
    check_grad(lambda v: ops.fori_loop(0, 4, lambda i, x: x * x * 0.5 + i, v), anyv(3) * 0.5)


def test_fori_loop_matches_keras():
    assert int(ops.fori_loop(0, 10, lambda i, s: s + i, 0)) == 45  # Keras docs
    assert float(ops.fori_loop(ops.convert_to_tensor(2), 4, lambda i, s: s * 2.0, 1.5)) == 6.0


def test_scan_matches_keras_and_differentiates():
    xs = np.arange(3.0, dtype="float32")
    carry, ys = ops.scan(lambda c, x: (c + x, c), 0.0, xs)
    # Keras 3.15.1: (3.0, [0., 0., 1.]) float32
    assert float(carry) == 3.0 and npv(ys).tolist() == [0.0, 0.0, 1.0] and ys.dtype == "float32"
    carry, ys = ops.scan(lambda c, x: (c + x, c), 0.0, xs, reverse=True)
    assert float(carry) == 3.0 and npv(ys).tolist() == [3.0, 2.0, 0.0]
    carry, ys = ops.scan(lambda c, _: (c * 2.0, None), 1.0, length=3)
    assert float(carry) == 8.0
    (a, b), ys = ops.scan(
        lambda c, x: ((c[0] + x["p"], c[1] * x["q"]), {"s": c[0]}),
        (0.0, 1.0),
        {"p": xs, "q": xs + 1},
    )
    assert float(a) == 3.0 and float(b) == 6.0 and npv(ys["s"]).tolist() == [0.0, 0.0, 1.0]

    def f(w, x):
        return ops.scan(
            lambda c, xi: (ops.tanh(c * w + xi), c * xi), ops.zeros((2,), "float64"), x
        )[1]

    check_grad(f, anyv(2), anyv(4, 2))


def test_scan_rejects_bad_arguments():
    with pytest.raises(ValueError, match="length"):
        ops.scan(lambda c, x: (c, x), 0.0)
    with pytest.raises(ValueError, match="unroll"):
        ops.scan(lambda c, x: (c, x), 0.0, np.ones(3), unroll=0)
    with pytest.raises(TypeError, match="f"):
        ops.scan(3, 0.0, np.ones(3))


def test_map_and_vectorized_map():
    ys = ops.map(lambda x: {"y1": x**2, "y2": x * 10}, ops.convert_to_tensor([0, 1, 2]))
    assert npv(ys["y1"]).tolist() == [0, 1, 4] and npv(ys["y2"]).tolist() == [0, 10, 20]
    assert npv(ops.vectorized_map(lambda x: x * 2, np.arange(3))).tolist() == [0, 2, 4]
    # Keras 3.15.1: a list of elements hands `function` a list of slices -> [0, 1, 4]
    got = ops.vectorized_map(lambda e: e[0] * e[1], [np.arange(3), np.arange(3)])
    assert npv(got).tolist() == [0, 1, 4]
    check_grad(lambda x: ops.map(lambda r: ops.sum(ops.exp(r)), x), anyv(3, 2))
    check_grad(
        lambda x, y: ops.vectorized_map(lambda e: ops.dot(e[0], e[1]), [x, y]),
        anyv(3, 2),
        anyv(3, 2),
    )


def test_associative_scan_is_a_prefix_scan():
    # Keras docs: [0, 1, 3, 6, 10]
    assert npv(ops.associative_scan(lambda a, b: a + b, np.arange(5))).tolist() == [0, 1, 3, 6, 10]
    for n in range(1, 10):
        x = anyv(n, 3)
        np.testing.assert_allclose(npv(ops.associative_scan(ops.add, x)), np.cumsum(x, 0))
        np.testing.assert_allclose(
            npv(ops.associative_scan(ops.add, x, reverse=True)), np.cumsum(x[::-1], 0)[::-1]
        )
        np.testing.assert_allclose(
            npv(ops.associative_scan(ops.add, x.T, axis=1)), np.cumsum(x.T, 1)
        )
    # Keras docs: a list of arrays -> [[1, 3], [1, 3], [1, 3]]
    got = ops.associative_scan(
        lambda x, y: [x[0] + y[0], x[1] + y[1], x[2] + y[2]], [np.array([1, 2]) for _ in range(3)]
    )
    assert [npv(g).tolist() for g in got] == [[1, 3]] * 3
    # Non-commutative but associative: 2x2 matrix products in order.
    m = anyv(7, 2, 2)
    got = npv(ops.associative_scan(lambda a, b: ops.matmul(a, b), m))
    want = [m[0]]
    for k in range(1, 7):
        want.append(want[-1] @ m[k])
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-10)
    check_grad(lambda x: ops.associative_scan(ops.multiply, x, axis=1), anyv(2, 6))


def test_vectorize():
    vf = ops.vectorize(lambda a, b: a + b)
    assert npv(vf([1, 2, 3, 4], 2)).tolist() == [3, 4, 5, 6]  # Keras docs
    mv = ops.vectorize(ops.matmul, signature="(m,n),(n)->(m)")
    m, v = anyv(4, 2, 3), anyv(3)
    np.testing.assert_allclose(npv(mv(m, v)), m @ v)
    scaled = ops.vectorize(lambda x, k: x * k, excluded={1})
    np.testing.assert_allclose(npv(scaled(np.ones((2, 2)), 3.0)), np.full((2, 2), 3.0))
    check_grad(lambda a, b: ops.vectorize(lambda x, y: ops.sin(x) * y)(a, b), anyv(2, 3), anyv(3))
    with pytest.raises(ValueError, match="pyfunc"):
        ops.vectorize(3)
    with pytest.raises(ValueError, match="core dimensions"):
        mv(anyv(2, 3), anyv(4))


# ---------------------------------------------------------------- slicing and scatter
def test_slice_and_slice_update_values():
    x = np.arange(25.0).reshape(5, 5)
    np.testing.assert_array_equal(npv(ops.slice(x, [1, 2], [2, 2])), x[1:3, 2:4])
    np.testing.assert_array_equal(npv(ops.slice(x, ops.convert_to_tensor([3, 0]), [-1, 5])), x[3:])
    with pytest.raises(ValueError, match="start_indices"):
        ops.slice(x, [4, 2], [2, 2])  # Keras 3.15.1 raises an IndexError here
    with pytest.raises(ValueError, match="start_indices"):
        ops.slice(x, [1], [2, 2])
    inputs = np.zeros((3, 3), "float32")
    out = ops.slice_update(inputs, [1, 1], np.ones((2, 2), "float64"))
    # Keras 3.15.1: [[0,0,0],[0,1,1],[0,1,1]] float32
    assert npv(out).tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 1]] and out.dtype == "float32"
    assert not inputs.any()  # never written in place
    with pytest.raises(ValueError, match="rank"):
        ops.slice_update(inputs, [0, 0], np.ones(2))


def test_slice_and_slice_update_gradients():
    check_grad(lambda x: ops.slice(x, [1, 0, 2], [2, -1, 1]), anyv(4, 3, 5))
    check_grad(lambda x, u: ops.slice_update(x, [1, 2], u), anyv(4, 5), anyv(2, 3))


def test_scatter():
    out = ops.scatter([[0, 1], [1, 1]], np.array([1.0, 1.0], "float32"), (2, 2))
    assert npv(out).tolist() == [[0, 1], [0, 1]] and out.dtype == "float32"  # Keras 3.15.1
    dup = ops.scatter([[0], [0], [2]], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), (3, 2))
    assert npv(dup).tolist() == [[4, 6], [0, 0], [5, 6]]
    check_grad(lambda v: ops.scatter(np.array([[0, 1], [2, 0], [0, 1]]), v, (3, 2, 4)), anyv(3, 4))


@pytest.mark.parametrize(
    "reduction,ufunc",
    [("add", np.add), ("max", np.maximum), ("min", np.minimum), ("mul", np.multiply)],
)
def test_scatter_update_reductions(reduction, ufunc):
    x, idx, u = anyv(4, 3), np.array([[0], [2], [0]]), anyv(3, 3)
    want = x.copy()
    ufunc.at(want, (idx[:, 0],), u)
    np.testing.assert_allclose(npv(ops.scatter_update(x, idx, u, reduction=reduction)), want)
    check_grad(lambda a, b: ops.scatter_update(a, idx, b, reduction=reduction), x, u)


def test_scatter_update_matches_keras_and_checks_arguments():
    out = ops.scatter_update(
        np.zeros((4,), "float32"), [[0], [0], [1]], np.array([1, 2, 3.0]), reduction="add"
    )
    assert npv(out).tolist() == [3, 3, 0, 0] and out.dtype == "float32"  # Keras 3.15.1
    x = np.zeros((4, 4, 4))
    out = npv(ops.scatter_update(x, [[1, 2, 3], [0, 1, 3]], np.array([1.0, 1.0])))
    assert out[1, 2, 3] == 1 and out[0, 1, 3] == 1 and out.sum() == 2 and not x.any()
    # a negative index counts from the end, as NumPy (Keras 3.15.1's numpy backend) does
    assert npv(ops.scatter_update(np.zeros(4), [[-1]], np.ones(1))).tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="reduction"):
        ops.scatter_update(x, [[0, 0, 0]], np.ones(1), reduction="avg")
    with pytest.raises(ValueError, match="indices"):
        ops.scatter_update(x, [[4, 0, 0]], np.ones(1))
    with pytest.raises(ValueError, match="updates"):
        ops.scatter_update(x, [[1, 2]], np.ones((2, 3)))


def test_scatter_update_replace_gradient_goes_to_the_written_update():
    idx = np.array([[1], [3], [1]])  # row 1 twice: the last update is kept
    check_grad(lambda a, b: ops.scatter_update(a, idx, b), anyv(5, 2), anyv(3, 2))
    x = Variable(np.zeros((5, 2)), dtype="float64")
    u = Variable(np.ones((3, 2)), dtype="float64")
    with GradientTape() as tape:
        total = ops.sum(ops.scatter_update(x, idx, u) * 2.0)
    gx, gu = tape.gradient(total, [x, u])
    assert npv(gu)[:, 0].tolist() == [0.0, 2.0, 2.0]
    assert npv(gx)[:, 0].tolist() == [2.0, 0.0, 2.0, 0.0, 2.0]


def test_unstack_and_get_item():
    x = anyv(2, 3)
    parts = ops.unstack(x, axis=1)
    assert len(parts) == 3 and all(np.array_equal(npv(p), x[:, i]) for i, p in enumerate(parts))
    with pytest.raises(ValueError, match="num"):
        ops.unstack(x, num=5)  # Keras 3.15.1's numpy backend ignores a wrong `num`
    with pytest.raises(ValueError, match="axis"):
        ops.unstack(x, axis=2)
    check_grad(lambda a: ops.unstack(a, axis=-1)[1] * ops.unstack(a)[0][1], anyv(3, 3))
    np.testing.assert_array_equal(npv(ops.get_item(x, (1, slice(0, 2)))), x[1, :2])
    check_grad(lambda a: ops.get_item(a, (np.array([0, 0, 2]), slice(1, None))), anyv(3, 4))


# ---------------------------------------------------------------- custom gradients and jvp
def test_custom_gradient_as_keras_documents():
    @ops.custom_gradient
    def log1pexp(x):
        e = ops.exp(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.multiply(upstream, 1.0 - 1.0 / ops.add(1, e))

        return ops.log(1 + e), grad

    x = anyv(5)
    np.testing.assert_allclose(npv(log1pexp(x)), np.log1p(np.exp(x)))
    check_grad(log1pexp, x)


@pytest.mark.parametrize("style", ["upstream", "torch"])
def test_gradient_tape_uses_the_grad_fn(style):
    @ops.custom_gradient
    def scaled_identity(x, y):
        if style == "upstream":
            return x * y, lambda upstream: (upstream * 3.0, None)

        def grad(*args, upstream):
            assert len(args) == 2
            return upstream * 3.0, upstream * 0.0 - 1.0

        return x * y, grad

    x = Variable(np.ones(3), dtype="float64")
    y = Variable(np.full(3, 5.0), dtype="float64")
    with GradientTape() as tape:
        total = ops.sum(scaled_identity(x, y) * 2.0)
    gx, gy = tape.gradient(total, [x, y])
    assert npv(gx).tolist() == [6.0] * 3  # 2 * 3, not 2 * y
    assert gy is None if style == "upstream" else npv(gy).tolist() == [-1.0] * 3


def test_custom_gradient_with_several_outputs():
    @ops.custom_gradient
    def two(x):
        return (x * 2.0, x * x), lambda up: up[0] * 10.0 + up[1] * 100.0

    x = Variable(np.array([1.0, 2.0]), dtype="float64")
    with GradientTape() as tape:
        a, b = two(x)
        total = ops.sum(a) + ops.sum(b * 2.0)
    assert npv(a).tolist() == [2.0, 4.0] and npv(b).tolist() == [1.0, 4.0]
    assert npv(tape.gradient(total, x)).tolist() == [210.0, 210.0]


def test_jvp_is_the_jacobian_times_the_tangent():
    # Keras docs (JAX): primals 0.09983342, tangents 0.19900084
    p, t = ops.jvp(ops.sin, (ops.convert_to_tensor(0.1),), (ops.convert_to_tensor(0.2),))
    np.testing.assert_allclose([float(p), float(t)], [0.09983342, 0.19900084], rtol=1e-6)
    a, x, v = anyv(3, 4), anyv(4), anyv(4)
    out, tan, aux = ops.jvp(lambda z: (ops.tanh(ops.matmul(a, z)), "aux"), (x,), (v,), has_aux=True)
    jac = (1 - np.tanh(a @ x) ** 2)[:, None] * a
    np.testing.assert_allclose(npv(tan), jac @ v, rtol=1e-10)
    np.testing.assert_allclose(npv(out), np.tanh(a @ x)) and aux == "aux"
    with pytest.raises(ValueError, match="tangents"):
        ops.jvp(ops.sin, (x,), (np.ones(3),))


# ---------------------------------------------------------------- inside a layer that trains
class _ControlFlowLayer(layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        @ops.custom_gradient
        def clip_grad(t):
            return t, lambda up: ops.clip(up, -1.0, 1.0)

        h = clip_grad(x * self.w)
        h = ops.cond(ops.shape(h)[0] > 0, lambda: ops.tanh(h), lambda: h)
        _, ys = ops.scan(
            lambda c, col: (c + col, c + col), ops.zeros_like(h[:, 0]), ops.transpose(h)
        )
        h = ops.transpose(ys) + ops.fori_loop(0, 2, lambda i, s: s * 0.5, h)
        h = ops.slice_update(h, [0, 0], ops.slice(h, [0, 0], [-1, 1]) * 2.0)
        return ops.map(lambda row: row * 1.0, h)


def test_control_flow_inside_a_layer_in_a_model_that_trains():
    inputs = keras.Input((4,))
    outputs = layers.Dense(1)(_ControlFlowLayer()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x = R.normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
    before = float(model.evaluate(x, y, verbose=0))
    w0 = npv(model.layers[1].w).copy()
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert float(model.evaluate(x, y, verbose=0)) < before * 0.7
    assert not np.allclose(npv(model.layers[1].w), w0)
