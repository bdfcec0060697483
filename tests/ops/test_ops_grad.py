"""Every differentiable op: forward against NumPy and gradient against finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import primitives as P
from tests.harness import check_grad

R = np.random.default_rng(42)


def pos(*shape):
    return R.uniform(0.5, 2.0, size=shape)


def anyv(*shape):
    return R.normal(size=shape)


# (name, op, numpy reference, inputs)
CASES = [
    ("add_broadcast", ops.add, np.add, [anyv(3, 4), anyv(4)]),
    ("subtract_broadcast", ops.subtract, np.subtract, [anyv(3, 1), anyv(1, 4)]),
    ("multiply", ops.multiply, np.multiply, [anyv(2, 3), anyv(2, 3)]),
    ("divide", ops.divide, np.divide, [anyv(2, 3), pos(3)]),
    ("power", ops.power, np.power, [pos(2, 3), anyv(2, 3)]),
    ("matmul_2d", ops.matmul, np.matmul, [anyv(3, 4), anyv(4, 5)]),
    ("matmul_batched", ops.matmul, np.matmul, [anyv(2, 3, 4), anyv(4, 5)]),
    ("matmul_vec", ops.matmul, np.matmul, [anyv(3, 4), anyv(4)]),
    ("maximum", ops.maximum, np.maximum, [anyv(3, 4), anyv(3, 4)]),
    ("minimum", ops.minimum, np.minimum, [anyv(3, 4), anyv(4)]),
    ("exp", ops.exp, np.exp, [anyv(3, 4)]),
    ("log", ops.log, np.log, [pos(3, 4)]),
    ("sqrt", ops.sqrt, np.sqrt, [pos(3, 4)]),
    ("square", ops.square, np.square, [anyv(3, 4)]),
    ("abs", ops.abs, np.abs, [anyv(3, 4)]),
    ("negative", ops.negative, np.negative, [anyv(3)]),
    ("tanh", ops.tanh, np.tanh, [anyv(3, 4)]),
    ("sigmoid", ops.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [anyv(3, 4) * 5]),
    ("relu", ops.relu, lambda x: np.maximum(x, 0), [anyv(3, 4)]),
    (
        "gelu_exact",
        lambda x: ops.gelu(x, approximate=False),
        lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / np.sqrt(2))),
        [anyv(3, 4) * 2],
    ),
    ("softplus", ops.softplus, lambda x: np.log1p(np.exp(x)), [anyv(3, 4)]),
    ("log1p", ops.log1p, np.log1p, [pos(3)]),
    ("expm1", ops.expm1, np.expm1, [anyv(3)]),
    ("sin", ops.sin, np.sin, [anyv(3)]),
    ("cos", ops.cos, np.cos, [anyv(3)]),
    ("clip", lambda x: ops.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), [anyv(4, 5)]),
    ("sum_axis", lambda x: ops.sum(x, axis=1), lambda x: x.sum(1), [anyv(3, 4, 2)]),
    (
        "sum_keepdims",
        lambda x: ops.sum(x, axis=(0, 2), keepdims=True),
        lambda x: x.sum((0, 2), keepdims=True),
        [anyv(3, 4, 2)],
    ),
    ("mean_all", ops.mean, np.mean, [anyv(3, 4)]),
    ("mean_axis", lambda x: ops.mean(x, axis=-1), lambda x: x.mean(-1), [anyv(3, 4)]),
    ("max_axis", lambda x: ops.max(x, axis=1), lambda x: x.max(1), [anyv(3, 4)]),
    ("min_all", ops.min, np.min, [anyv(3, 4)]),
    ("cumsum", lambda x: ops.cumsum(x, axis=1), lambda x: np.cumsum(x, 1), [anyv(3, 4)]),
    (
        "logsumexp",
        lambda x: ops.logsumexp(x, axis=1),
        lambda x: np.log(np.exp(x).sum(1)),
        [anyv(3, 4)],
    ),
    ("reshape", lambda x: ops.reshape(x, (4, 3)), lambda x: x.reshape(4, 3), [anyv(3, 4)]),
    (
        "transpose",
        lambda x: ops.transpose(x, (2, 0, 1)),
        lambda x: x.transpose(2, 0, 1),
        [anyv(2, 3, 4)],
    ),
    ("expand_dims", lambda x: ops.expand_dims(x, 1), lambda x: x[:, None], [anyv(3, 4)]),
    ("squeeze", lambda x: ops.squeeze(x, 1), lambda x: x[:, 0], [anyv(3, 1, 4)]),
    (
        "broadcast_to",
        lambda x: ops.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        [anyv(3, 1)],
    ),
    (
        "concatenate",
        lambda a, b: ops.concatenate([a, b], axis=1),
        lambda a, b: np.concatenate([a, b], 1),
        [anyv(2, 3), anyv(2, 2)],
    ),
    (
        "stack",
        lambda a, b: ops.stack([a, b], axis=1),
        lambda a, b: np.stack([a, b], 1),
        [anyv(2, 3), anyv(2, 3)],
    ),
    ("split", lambda x: ops.split(x, 2, axis=1)[1], lambda x: np.split(x, 2, 1)[1], [anyv(3, 4)]),
    ("getitem_basic", lambda x: x[1:, ::2], lambda x: x[1:, ::2], [anyv(3, 4)]),
    (
        "getitem_fancy",
        lambda x: x[np.array([0, 2, 0])],
        lambda x: x[np.array([0, 2, 0])],
        [anyv(3, 4)],
    ),
    (
        "take",
        lambda x: ops.take(x, np.array([[0, 1], [1, 1]]), axis=0),
        lambda x: np.take(x, np.array([[0, 1], [1, 1]]), axis=0),
        [anyv(3, 4)],
    ),
    (
        "take_axis1",
        lambda x: ops.take(x, np.array([3, 0, 3]), axis=1),
        lambda x: np.take(x, np.array([3, 0, 3]), axis=1),
        [anyv(2, 4)],
    ),
    (
        "take_along_axis",
        lambda x: ops.take_along_axis(x, np.array([[0], [2]]), axis=1),
        lambda x: np.take_along_axis(x, np.array([[0], [2]]), axis=1),
        [anyv(2, 3)],
    ),
    (
        "where",
        lambda a, b: ops.where(np.array([[True, False, True]]), a, b),
        lambda a, b: np.where(np.array([[True, False, True]]), a, b),
        [anyv(2, 3), anyv(2, 3)],
    ),
    (
        "pad",
        lambda x: ops.pad(x, ((1, 0), (0, 2))),
        lambda x: np.pad(x, ((1, 0), (0, 2))),
        [anyv(2, 3)],
    ),
    ("tile", lambda x: ops.tile(x, (2, 3)), lambda x: np.tile(x, (2, 3)), [anyv(2, 3)]),
    ("repeat", lambda x: ops.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, axis=1), [anyv(2, 3)]),
    ("softmax", ops.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True), [anyv(3, 5)]),
    (
        "log_softmax",
        ops.log_softmax,
        lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)),
        [anyv(3, 5)],
    ),
    ("dot", ops.dot, np.dot, [anyv(3, 4), anyv(4, 2)]),
    (
        "dense_fused_relu",
        lambda x, w, b: P.dense(x, w, b, relu=True),
        lambda x, w, b: np.maximum(x @ w + b, 0),
        [anyv(3, 4), anyv(4, 5), anyv(5)],
    ),
    (
        "dense_fused_3d",
        lambda x, w, b: P.dense(x, w, b),
        lambda x, w, b: x @ w + b,
        [anyv(2, 3, 4), anyv(4, 5), anyv(5)],
    ),
    (
        "tensordot",
        lambda a, b: ops.tensordot(a, b, axes=([1], [0])),
        lambda a, b: np.tensordot(a, b, axes=([1], [0])),
        [anyv(3, 4, 2), anyv(4, 5)],
    ),
    ("var", lambda x: ops.var(x, axis=0), lambda x: x.var(0), [anyv(4, 3)]),
    ("norm", lambda x: ops.norm(x, axis=1), lambda x: np.linalg.norm(x, axis=1), [anyv(4, 3)]),
    ("elu", ops.elu, lambda x: np.where(x > 0, x, np.expm1(x)), [anyv(3, 4)]),
    ("silu", ops.silu, lambda x: x / (1 + np.exp(-x)), [anyv(3, 4)]),
    (
        "operators",
        lambda a, b: (a * 2 - b) / (b * b + 1) + a**2,
        lambda a, b: (a * 2 - b) / (b * b + 1) + a**2,
        [anyv(2, 3), anyv(2, 3)],
    ),
]

# Keras 3 converts a list/tuple given to a reduction with convert_to_tensor (it stacks it),
# so `ops.mean([a, b])` is the mean of `stack([a, b])`, with gradients reaching `a` and `b`.
# (The items are tensors: a list of float64 NumPy arrays would become floatx, as in Keras.)
_t = ops.convert_to_tensor
CASES += [
    (
        f"{name}_of_list",
        lambda a, b, f=f, kw=kw: f([_t(a), _t(b)], **kw),
        lambda a, b, r=r, kw=kw: r(np.stack([a, b]), **kw),
        [anyv(2, 3), anyv(2, 3)],
    )
    for name, f, r, kw in [
        ("mean", ops.mean, np.mean, {"axis": 0}),
        ("max", ops.max, np.max, {"axis": (0, 2)}),
        ("min", ops.min, np.min, {}),
        ("amax", ops.amax, np.max, {"axis": -1, "keepdims": True}),
        ("prod", ops.prod, np.prod, {"axis": 0}),
        ("std", ops.std, np.std, {"axis": 1}),
        ("var", ops.var, np.var, {}),
        ("cumsum", ops.cumsum, np.cumsum, {"axis": 0}),
        ("norm", ops.norm, lambda x, axis: np.linalg.norm(x, axis=axis), {"axis": 0}),
    ]
]
CASES.append(
    (
        "mean_of_tuple",
        lambda a, b: ops.mean((_t(a), _t(b))),
        lambda a, b: (a + b).mean() / 2,
        [anyv(3), anyv(3)],
    )
)


@pytest.mark.parametrize("name,op,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, op, ref, inputs):
    got = op(*inputs)
    np.testing.assert_allclose(np.asarray(got), ref(*inputs), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,op,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(name, op, ref, inputs):
    check_grad(op, *inputs)


def test_non_differentiable_ops():
    x = np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    np.testing.assert_array_equal(np.asarray(ops.argmax(x, axis=1)), [1, 2])
    np.testing.assert_array_equal(np.asarray(ops.equal(x, 2.0)), x == 2.0)
    np.testing.assert_array_equal(
        np.asarray(ops.one_hot(np.array([0, 2]), 3)), [[1, 0, 0], [0, 0, 1]]
    )


def test_squeeze_and_split_errors_name_the_argument():
    with pytest.raises(ValueError, match="axis=0"):
        ops.squeeze(np.zeros((2, 1)), axis=0)
    with pytest.raises(ValueError, match="indices_or_sections=4"):
        ops.split(np.zeros((3, 2)), 4)


def test_cast_gradient_is_cast_back():
    from distkeras.backend import GradientTape, Variable

    v = Variable(np.array([1.0, 2.0, 3.0]), dtype="float64")
    w = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    with GradientTape() as tape:
        y = ops.sum(ops.multiply(ops.cast(v, "float32"), w))
    (g,) = tape.gradient(y, [v])
    assert g.dtype == "float64"
    np.testing.assert_array_equal(np.asarray(g), w.astype(np.float64))


def test_reductions_of_a_list_stack_it_as_keras():
    # Keras 3.15.1 (jax) on a = [[1, -2, 3]], b = [[0.5, 4, -1]] (float32).
    from distkeras.backend import GradientTape, Variable

    a = np.array([[1.0, -2.0, 3.0]], "float32")
    b = np.array([[0.5, 4.0, -1.0]], "float32")
    m = ops.mean([1.0, 2.0, 4.0])
    assert m.dtype == "float32"
    np.testing.assert_allclose(float(m), 2.3333335, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ops.max([a, b], axis=0)), [[1.0, 4.0, 3.0]])
    assert float(ops.min((a, b))) == -2.0
    assert float(ops.prod([a, b])) == 12.0
    np.testing.assert_array_equal(np.asarray(ops.argmax([a, b], axis=0)), [[0, 1, 0]])
    np.testing.assert_array_equal(np.asarray(ops.argmin([a, b], axis=0)), [[1, 0, 1]])
    np.testing.assert_allclose(float(ops.std([a, b])), 2.0899894, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ops.var([a, b], axis=0)), [[0.0625, 9.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(ops.cumsum([a, b])), [1.0, -1.0, 2.0, 2.5, 6.5, 5.5])
    np.testing.assert_allclose(float(ops.norm([a, b])), 5.59017, rtol=1e-6)
    assert float(ops.sum([[1.0, 2.0], [3.0, 4.0]])) == 10.0
    assert bool(ops.any([a < 0, b < -5])) and not bool(ops.all([a > 0, b > 0]))
    # Tensors inside a list keep their gradient: d/dv sum([v, 3 v]) = 4, d/dv max([v, w]) picks.
    v = Variable(np.array([1.0, -2.0], dtype="float32"))
    w = Variable(np.array([0.0, 5.0], dtype="float32"))
    with GradientTape() as tape:
        y = ops.add(ops.sum([v, ops.multiply(v, 3.0)]), ops.sum(ops.max([v, w], axis=0)))
    gv, gw = tape.gradient(y, [v, w])
    assert gv.dtype == "float32"  # the max gradient stays in the variable's dtype
    np.testing.assert_array_equal(np.asarray(gv), [5.0, 4.0])
    np.testing.assert_array_equal(np.asarray(gw), [0.0, 1.0])


def test_convert_to_tensor_stacks_tensors_in_a_list():
    from distkeras.backend import GradientTape, Variable

    v = Variable(np.array([1.0, 2.0], dtype="float32"))
    with GradientTape() as tape:
        t = ops.convert_to_tensor([[v, v], [ops.multiply(v, 2.0), [0.0, 1.0]]])
        y = ops.sum(ops.multiply(t, t))
    assert t.shape == (2, 2, 2) and t.dtype == "float32"
    (g,) = tape.gradient(y, [v])
    np.testing.assert_allclose(np.asarray(g), 2 * np.asarray(v) * (1 + 1 + 4))
    assert ops.convert_to_tensor((v, v), dtype="float64").dtype == "float64"


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_mean_var_std_of_integers_are_float32(dtype):
    # Keras 3.15 (jax): mean/var/std of int32, int64, uint8 and bool arrays are float32.
    a = np.array([1, 0, 1, 1], dtype=dtype)
    for op, ref in ((ops.mean, np.mean), (ops.var, np.var), (ops.std, np.std)):
        got = op(a)
        assert got.dtype == "float32", op
        np.testing.assert_allclose(float(got), ref(a.astype("float64")), rtol=1e-6)
    assert ops.mean(np.array([1.0, 2.0], "float64")).dtype == "float64"  # floats keep theirs
