"""KerasTensor: attributes, Python operators and every public op on symbolic tensors.

Each case builds a Functional model from symbolic tensors, then checks the
model's output against the same expression run eagerly (NumPy's operators
for the Python operators, the eager op for `distkeras.ops`), the inferred
shape and dtype against the eager result, and that the model comes back from
`to_json()` / `model_from_json()` in safe mode computing the same.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers, ops
from distkeras.backend import to_numpy
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.models import model_from_json
from distkeras.ops.symbolic import op_names
from tests.harness import check_grad

BATCH = 3
RNG = np.random.default_rng(0)


def _data(spec):
    shape, dtype, kind = (*spec, "normal")[:3] if len(spec) < 3 else spec
    full = (BATCH, *shape)
    if kind == "pos":
        return RNG.uniform(0.5, 2.0, size=full).astype(dtype)
    if kind.startswith("int:"):
        return RNG.integers(0, int(kind[4:]), size=full).astype(dtype)
    if kind == "bool":
        return RNG.random(full) < 0.5
    return RNG.normal(size=full).astype(dtype)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def check_symbolic(fn, specs, reference=None, rtol=1e-6):
    """Builds Model(inputs, fn(*inputs)) and checks it against `reference` run on the data."""
    specs = [(s[0], s[1] if len(s) > 1 else "float32", *s[2:]) for s in specs]
    inputs = [keras.Input(s[0], dtype=s[1]) for s in specs]
    symbolic = fn(*inputs)
    for t in _as_list(symbolic):
        assert isinstance(t, KerasTensor), t
    model = keras.Model(inputs, symbolic)
    arrays = [_data(s) for s in specs]
    if reference is None:  # the same expression on eager tensors
        expected = fn(*[ops.convert_to_tensor(a) for a in arrays])
    else:
        expected = reference(*arrays)
    got = model(arrays if len(arrays) > 1 else arrays[0])
    for t, e, g in zip(_as_list(symbolic), _as_list(expected), _as_list(got)):
        e, g = np.asarray(to_numpy(e) if hasattr(e, "data") else e), to_numpy(g)
        assert len(t.shape) == e.ndim, (t.shape, e.shape)
        for d_sym, d_eager in zip(t.shape, e.shape):
            assert d_sym is None or d_sym == d_eager, (t.shape, e.shape)
        assert t.dtype == g.dtype.name == e.dtype.name, (t.dtype, g.dtype, e.dtype)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=1e-6)
    loaded = model_from_json(model.to_json())  # safe mode is on by default
    again = loaded(arrays if len(arrays) > 1 else arrays[0])
    for g, h in zip(_as_list(got), _as_list(again)):
        np.testing.assert_array_equal(to_numpy(h), to_numpy(g))
    return symbolic, model


# ----------------------------------------------------------------- attributes
def test_attributes_and_repr():
    x = keras.Input((5, 2), dtype="int32", name="ids")
    assert x.shape == (None, 5, 2) and x.dtype == "int32" and x.ndim == 3 and x.name == "ids"
    y = x + 1
    assert y.shape == (None, 5, 2) and y.dtype == "int32" and y.name.startswith("keras_tensor")
    assert "shape=(None, 5, 2)" in repr(y)
    assert keras.layers.KerasTensor is KerasTensor


def test_no_values_python_conversions_raise():
    x = keras.Input((2,))
    with pytest.raises(TypeError, match="boolean"):
        bool(x)
    with pytest.raises(ValueError, match="symbolic"):
        float(x)
    with pytest.raises(ValueError, match="symbolic"):
        int(x)
    with pytest.raises(ValueError, match="NumPy array"):
        np.asarray(x)
    with pytest.raises(NotImplementedError):
        iter(x)
    assert (x == x) is True  # identity, as in Keras 3: KerasTensors are dict keys
    assert {x: 1}[x] == 1


# ----------------------------------------------------------------- operators
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "ne": lambda a, b: a != b,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_operators_match_numpy(name):
    op = BINARY[name]
    positive = name in ("pow", "truediv", "floordiv", "mod")
    kind = "pos" if positive else "normal"
    check_symbolic(op, [((4,), "float32", kind), ((4,), "float32", kind)], reference=op, rtol=1e-5)
    # with a Python scalar on either side (the reflected operators)
    check_symbolic(
        lambda a: op(a, 1.5), [((4,), "float32", kind)], lambda a: op(a, np.float32(1.5))
    )
    check_symbolic(
        lambda a: op(1.5, a), [((4,), "float32", kind)], lambda a: op(np.float32(1.5), a)
    )
    # a NumPy array on the left defers to the KerasTensor
    const = np.linspace(0.5, 2.0, 4).astype("float32")
    check_symbolic(lambda a: op(const, a), [((4,), "float32", kind)], lambda a: op(const, a))


def test_matmul_operators_and_unary_operators():
    w = RNG.normal(size=(4, 2)).astype("float32")
    check_symbolic(lambda a: a @ w, [((4,),)], lambda a: a @ w, rtol=1e-5)
    v = RNG.normal(size=(2, 3)).astype("float32")
    check_symbolic(lambda a: v @ a, [((3, 5),)], lambda a: v @ a, rtol=1e-5)
    check_symbolic(lambda a, b: a @ b, [((2, 3),), ((3, 4),)], lambda a, b: a @ b, rtol=1e-5)
    check_symbolic(lambda a: -a, [((4,),)], lambda a: -a)
    check_symbolic(lambda a: +a, [((4,),)], lambda a: +a)
    check_symbolic(abs, [((4,),)], np.abs)
    check_symbolic(lambda a: round(a * 10), [((4,),)], lambda a: np.round(a * 10))


def test_logical_operators():
    for op in (
        lambda a, b: a & b,
        lambda a, b: a | b,
        lambda a, b: a ^ b,
    ):
        check_symbolic(op, [((5,), "bool", "bool"), ((5,), "bool", "bool")], op)
    check_symbolic(lambda a: ~a, [((5,), "bool", "bool")], lambda a: ~a)


@pytest.mark.parametrize(
    "key",
    [
        0,
        -1,
        slice(1, 3),
        (slice(None), 0),
        (slice(None), slice(None, None, 2), None),
        (Ellipsis, 1),
        (Ellipsis, None, slice(0, 2)),
        (slice(None), np.array([2, 0])),
    ],
    ids=str,
)
def test_getitem_with_slices_ellipsis_and_newaxis(key):
    check_symbolic(lambda a: a[key], [((4, 3),)], lambda a: a[key])


def test_tensor_methods():
    check_symbolic(lambda a: a.reshape((-1, 2)), [((4, 3),)], lambda a: a.reshape((-1, 2)))
    check_symbolic(lambda a: a.reshape(-1, 6, 2), [((4, 3),)], lambda a: a.reshape(-1, 6, 2))
    check_symbolic(lambda a: a.squeeze(1), [((1, 3),)], lambda a: a.squeeze(1))
    check_symbolic(lambda a: a.astype("int32"), [((3,),)], lambda a: a.astype("int32"))
    check_symbolic(lambda a: a.T, [((2, 3),)], lambda a: a.T)


def test_constants_of_every_kind_survive_the_config():
    tensor = ops.convert_to_tensor(np.arange(4, dtype="float32"))
    check_symbolic(lambda a: a * tensor, [((4,),)], lambda a: a * np.arange(4, dtype="float32"))
    check_symbolic(lambda a: ops.cast(a, np.float64), [((4,),)], lambda a: a.astype("float64"))
    check_symbolic(lambda a: ops.cast(a, np.dtype("int32")), [((4,),)], lambda a: a.astype("int32"))
    check_symbolic(lambda a: a + np.float32(2.5), [((4,),)], lambda a: a + np.float32(2.5))
    check_symbolic(lambda a: ops.max(a, axis=(1,)), [((4,),)], lambda a: a.max(axis=1))
    check_symbolic(lambda a: a[..., np.int64(1)], [((4,),)], lambda a: a[..., 1])


def test_ops_that_describe_a_tensor_accept_symbolic_ones():
    x = keras.Input((None, 4))
    assert ops.shape(x) == (None, None, 4) and ops.ndim(x) == 3
    with pytest.raises(ValueError, match="symbolic"):
        ops.convert_to_numpy(x)


def test_unknown_sizes_are_inferred():
    x = keras.Input((None, 4))
    assert (x + 1).shape == (None, None, 4)
    assert ops.reshape(x, (-1, 2)).shape == (None, 2)
    assert ops.mean(x, axis=1).shape == (None, 4)
    assert ops.concatenate([x, x], axis=1).shape == (None, None, 4)
    assert ops.concatenate([x, x], axis=-1).shape == (None, None, 8)
    assert (x + np.ones(4, "float32")).shape == (None, None, 4)
    y = keras.Input((None,))
    assert (y + np.ones(5, "float32")).shape == (None, 5)  # unknown sizes broadcast
    assert ops.argmax(x, axis=-1).dtype == "int32"  # as Keras
    assert (x > 0).dtype == "bool"
    with pytest.raises(ValueError, match="cannot be applied"):
        keras.Input((3,)) + keras.Input((4,))


# ----------------------------------------------------------------- every op
K = RNG.normal(size=(3, 2, 4)).astype("float32")  # conv1d kernel (k, in, out)
F, U = 2, 3


def _w(*shape):
    return RNG.normal(size=shape).astype("float32") * 0.5


K_T, B4, K_DW, K_SEP_D, K_SEP_P, W42 = (
    _w(3, 4, 2),
    _w(4),
    _w(2, 2, 2, 3),
    _w(2, 2, 2, 2),
    _w(1, 1, 4, 3),
    _w(4, 2),
)
W_LSTM, R_LSTM, B_LSTM = _w(F, 4 * U), _w(U, 4 * U), _w(4 * U)
W_GRU, R_GRU, B_GRU = _w(F, 3 * U), _w(U, 3 * U), _w(2, 3 * U)
W_RNN, R_RNN, B_RNN = _w(F, U), _w(U, U), _w(U)
TABLE = _w(10, 4)
X = ((4,),)
P = ((4,), "float32", "pos")
SEQ = ((5, 2),)
IMG = ((6, 6, 2),)

# name -> (function of symbolic-or-eager inputs, input specs without the batch axis)
OP_CASES = {
    "abs": (ops.abs, [X]),
    "absolute": (ops.absolute, [X]),
    "add": (ops.add, [X, X]),
    "all": (lambda a: ops.all(a, axis=1), [((4,), "bool", "bool")]),
    "amax": (lambda a: ops.amax(a, axis=-1), [X]),
    "amin": (lambda a: ops.amin(a, axis=-1, keepdims=True), [X]),
    "any": (lambda a: ops.any(a, axis=1), [((4,), "bool", "bool")]),
    "argmax": (lambda a: ops.argmax(a, axis=-1), [X]),
    "argmin": (lambda a: ops.argmin(a, axis=1), [X]),
    "argsort": (ops.argsort, [X]),
    "average_pool": (lambda a: ops.average_pool(a, 2, padding="same"), [IMG]),
    "binary_crossentropy": (ops.binary_crossentropy, [((4,), "float32", "int:2"), P]),
    "broadcast_to": (lambda a: ops.broadcast_to(a[:, None, :], (BATCH, 2, 4)), [X]),
    "cast": (lambda a: ops.cast(a, "float64"), [X]),
    "categorical_crossentropy": (
        lambda t, o: ops.categorical_crossentropy(t, o, from_logits=True),
        [X, X],
    ),
    "ceil": (ops.ceil, [X]),
    "clip": (lambda a: ops.clip(a, -0.5, 0.5), [X]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=-1), [X, ((2,),)]),
    "conv": (lambda a: ops.conv(a, K, padding="same"), [SEQ]),
    "conv_transpose": (lambda a: ops.conv_transpose(a, K_T, strides=2), [SEQ]),
    "convert_to_tensor": (lambda a: ops.convert_to_tensor(a, dtype="float64"), [X]),
    "cos": (ops.cos, [X]),
    "count_nonzero": (lambda a: ops.count_nonzero(a, axis=1), [((4,), "int32", "int:2")]),
    "cumsum": (lambda a: ops.cumsum(a, axis=1), [X]),
    "depthwise_conv": (lambda a: ops.depthwise_conv(a, K_DW), [IMG]),
    "divide": (ops.divide, [X, P]),
    "dot": (lambda a: ops.dot(a, W42), [X]),
    "elu": (ops.elu, [X]),
    "embedding_lookup": (lambda i: ops.embedding_lookup(TABLE, i), [((5,), "int32", "int:10")]),
    "equal": (ops.equal, [((4,), "int32", "int:2"), ((4,), "int32", "int:2")]),
    "exp": (ops.exp, [X]),
    "expand_dims": (lambda a: ops.expand_dims(a, 1), [X]),
    "expm1": (ops.expm1, [X]),
    "flatten": (lambda a: ops.flatten(a), [X]),
    "floor": (ops.floor, [X]),
    "floor_divide": (ops.floor_divide, [X, P]),
    "full_like": (lambda a: ops.full_like(a, 3.0), [X]),
    "fused_conv": (lambda a: ops.fused_conv(a, K, B4, activation="relu"), [SEQ]),
    "fused_conv_transpose": (lambda a: ops.fused_conv_transpose(a, K_T, B4), [SEQ]),
    "gelu": (ops.gelu, [X]),
    "getitem": (lambda a: ops.getitem(a, (slice(None), slice(1, 3))), [X]),
    "greater": (ops.greater, [X, X]),
    "greater_equal": (ops.greater_equal, [X, X]),
    "gru": (lambda x, h: ops.gru(x, h, W_GRU, R_GRU, B_GRU), [SEQ, ((U,),)]),
    "hard_sigmoid": (ops.hard_sigmoid, [X]),
    "isfinite": (ops.isfinite, [X]),
    "isnan": (ops.isnan, [X]),
    "leaky_relu": (ops.leaky_relu, [X]),
    "less": (ops.less, [X, X]),
    "less_equal": (ops.less_equal, [X, X]),
    "log": (ops.log, [P]),
    "log10": (ops.log10, [P]),
    "log1p": (ops.log1p, [P]),
    "log2": (ops.log2, [P]),
    "log_sigmoid": (ops.log_sigmoid, [X]),
    "log_softmax": (ops.log_softmax, [X]),
    "logical_and": (ops.logical_and, [((4,), "bool", "bool"), ((4,), "bool", "bool")]),
    "logical_not": (ops.logical_not, [((4,), "bool", "bool")]),
    "logical_or": (ops.logical_or, [((4,), "bool", "bool"), ((4,), "bool", "bool")]),
    "logical_xor": (ops.logical_xor, [((4,), "bool", "bool"), ((4,), "bool", "bool")]),
    "logsumexp": (lambda a: ops.logsumexp(a, axis=-1), [X]),
    "lstm": (
        lambda x, h, c: ops.lstm(x, h, c, W_LSTM, R_LSTM, B_LSTM),
        [SEQ, ((U,),), ((U,),)],
    ),
    "matmul": (ops.matmul, [((2, 4),), ((4, 3),)]),
    "max": (lambda a: ops.max(a, axis=1), [X]),
    "max_pool": (lambda a: ops.max_pool(a, 2, strides=2), [IMG]),
    "maximum": (ops.maximum, [X, X]),
    "mean": (lambda a: ops.mean(a, axis=(1, 2)), [((4, 2),)]),
    "min": (lambda a: ops.min(a, axis=1), [X]),
    "minimum": (ops.minimum, [X, X]),
    "mod": (ops.mod, [X, P]),
    "moveaxis": (lambda a: ops.moveaxis(a, 1, 2), [((4, 2),)]),
    "multiply": (ops.multiply, [X, X]),
    "negative": (ops.negative, [X]),
    "norm": (lambda a: ops.norm(a, axis=-1), [X]),
    "not_equal": (ops.not_equal, [X, X]),
    "one_hot": (lambda i: ops.one_hot(i, 5), [((4,), "int32", "int:5")]),
    "ones_like": (ops.ones_like, [X]),
    "pad": (lambda a: ops.pad(a, ((0, 0), (1, 2))), [X]),
    "pow": (ops.pow, [P, X]),
    "power": (lambda a: ops.power(a, 3), [X]),
    "prod": (lambda a: ops.prod(a, axis=1), [X]),
    "ravel": (lambda a: ops.ravel(a), [X]),
    "reciprocal": (ops.reciprocal, [P]),
    "relu": (ops.relu, [X]),
    "relu6": (ops.relu6, [X]),
    "repeat": (lambda a: ops.repeat(a, 2, axis=1), [X]),
    "reshape": (lambda a: ops.reshape(a, (-1, 2, 2)), [X]),
    "round": (lambda a: ops.round(a, 1), [X]),
    "selu": (ops.selu, [X]),
    "separable_conv": (lambda a: ops.separable_conv(a, K_SEP_D, K_SEP_P), [IMG]),
    "sigmoid": (ops.sigmoid, [X]),
    "sign": (ops.sign, [X]),
    "silu": (ops.silu, [X]),
    "simple_rnn": (lambda x, h: ops.simple_rnn(x, h, W_RNN, R_RNN, B_RNN), [SEQ, ((U,),)]),
    "sin": (ops.sin, [X]),
    "softmax": (ops.softmax, [X]),
    "softplus": (ops.softplus, [X]),
    "softsign": (ops.softsign, [X]),
    "sparse_categorical_crossentropy": (
        ops.sparse_categorical_crossentropy,
        [((), "int32", "int:4"), P],
    ),
    "split": (lambda a: ops.split(a, [1, 3], axis=1), [X]),
    "sqrt": (ops.sqrt, [P]),
    "square": (ops.square, [X]),
    "squeeze": (lambda a: ops.squeeze(a, axis=1), [((1, 4),)]),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), [X, X]),
    "std": (lambda a: ops.std(a, axis=1), [X]),
    "stop_gradient": (ops.stop_gradient, [X]),
    "subtract": (ops.subtract, [X, X]),
    "sum": (lambda a: ops.sum(a, axis=-1, keepdims=True), [X]),
    "swapaxes": (lambda a: ops.swapaxes(a, 1, 2), [((4, 2),)]),
    "swish": (ops.swish, [X]),
    "take": (lambda a: ops.take(a, np.array([3, 0]), axis=1), [X]),
    "take_along_axis": (
        lambda a, i: ops.take_along_axis(a, i, axis=1),
        [X, ((2,), "int64", "int:4")],
    ),
    "tanh": (ops.tanh, [X]),
    "tensordot": (lambda a: ops.tensordot(a, W42, axes=1), [X]),
    "tile": (lambda a: ops.tile(a, (1, 2)), [X]),
    "transpose": (lambda a: ops.transpose(a, (0, 2, 1)), [((4, 2),)]),
    "true_divide": (ops.true_divide, [X, P]),
    "unstack_time": (ops.unstack_time, [SEQ]),
    "var": (lambda a: ops.var(a, axis=1), [X]),
    "where": (ops.where, [((4,), "bool", "bool"), X, X]),
    "zeros_like": (ops.zeros_like, [X]),
}


# Each ops module added after this table keeps its cases in `tests/ops/cases_<module>.py`
# (an `OP_CASES` dict in the same format), merged here.
for _path in sorted((Path(__file__).parents[1] / "ops").glob("cases_*.py")):
    _cases = importlib.import_module(f"tests.ops.{_path.stem}").OP_CASES
    assert not set(_cases) & set(OP_CASES), (_path.name, set(_cases) & set(OP_CASES))
    OP_CASES.update(_cases)


def test_the_case_table_covers_every_public_op():
    assert sorted(OP_CASES) == op_names()


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_every_public_op_builds_a_model_that_matches_eager(name):
    fn, specs = OP_CASES[name]
    check_symbolic(fn, specs, rtol=1e-5)


# broadcast_to's case slices its input first (a[:, None, :]), which a list cannot take:
# checked on its own below.
@pytest.mark.parametrize("name", sorted(set(OP_CASES) - {"broadcast_to"}))
def test_every_public_op_takes_python_lists_as_keras_does(name):
    # Keras converts Python data given for a tensor (floats to floatx): the same values and
    # dtypes as from arrays; e.g. `ops.add([1.0], [2.0])` is [3.0], not a concatenated list.
    fn, specs = OP_CASES[name]
    specs = [(s[0], s[1] if len(s) > 1 else "float32", *s[2:]) for s in specs]
    arrays = [_data(s) for s in specs]
    expected = _as_list(fn(*[ops.convert_to_tensor(a) for a in arrays]))
    got = _as_list(fn(*[a.tolist() for a in arrays]))
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        e, g = to_numpy(e), to_numpy(g)
        assert g.dtype == e.dtype, (g.dtype, e.dtype)
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def test_python_lists_into_ops_directly():
    out = ops.broadcast_to([1.0, 2.0], (3, 2))
    assert out.dtype == "float32" and to_numpy(out).tolist() == [[1.0, 2.0]] * 3
    assert to_numpy(ops.add([1.0, 2.0], [3.0, 4.0])).tolist() == [4.0, 6.0]
    y = ops.multiply(ops.ones((2,)), [2.0, 3.0])  # float32 with a Python list stays float32
    assert y.dtype == "float32" and to_numpy(y).tolist() == [2.0, 3.0]
    x = keras.Variable(np.array([1.0, 2.0], "float32"))
    with keras.GradientTape() as tape:  # a list holding a Tensor still gets its gradient
        z = ops.sum(ops.multiply([x, x], [[1.0, 1.0], [2.0, 2.0]]))
    np.testing.assert_allclose(to_numpy(tape.gradient(z, x)), [3.0, 3.0])


@pytest.mark.parametrize(
    "op", [ops.add, ops.subtract, ops.multiply, ops.divide, ops.power, ops.maximum, ops.minimum]
)
@pytest.mark.parametrize(
    "fdt,idt",
    [("float32", "int32"), ("float32", "int64"), ("float16", "int32"), ("float32", "bool")],
)
def test_float_with_int_operands_keep_the_float_dtype(op, fdt, idt):
    # Keras 3's result_type (recorded from keras 3.15.1): float32 with int32/int64/bool is
    # float32, float16 with int32 is float16. NumPy alone widens to float64.
    f = ops.convert_to_tensor(np.array([1.5, 2.0, 3.0], fdt))
    i = ops.convert_to_tensor(np.array([1, 0, 2]).astype(idt))
    for a, b in ((f, i), (i, f)):
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 and False divide too
            out = op(a, b)
            ref = getattr(np, op.__name__)(to_numpy(a).astype("f8"), to_numpy(b).astype("f8"))
        assert out.dtype == fdt, (op.__name__, a.dtype, b.dtype, out.dtype)
        np.testing.assert_allclose(to_numpy(out), ref.astype(fdt), rtol=1e-3)
    w = ops.where(np.array([True, False, True]), f, i)
    assert w.dtype == fdt and to_numpy(w).tolist() == [1.5, 0.0, 3.0]


def test_op_nodes_are_graph_nodes_but_not_layers():
    x = keras.Input((4,))
    h = layers.Dense(4, name="d")(x)
    out = ops.mean(h + x, axis=-1)
    model = keras.Model(x, out)
    assert [lay.name for lay in model.layers] == [x.name, "d"]  # Keras 3 leaves ops out
    cfg = model.get_config()
    names = [c["config"]["function"] for c in cfg["layers"] if c["class_name"] == "OpLayer"]
    assert names == ["add", "mean"]


def test_config_naming_an_unknown_op_is_refused():
    x = keras.Input((4,))
    model = keras.Model(x, ops.exp(x))
    text = model.to_json().replace('"function": "exp"', '"function": "os.system"')
    with pytest.raises(ValueError, match="Unknown op.*Received: function='os.system'"):
        model_from_json(text)
    with pytest.raises(ValueError, match="Received: function="):
        layers.OpLayer("__import__")


def test_new_op_mod_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 5.0, size=(3, 4))
    y = rng.uniform(0.7, 1.9, size=(3, 4))
    check_grad(ops.mod, x, y)
    np.testing.assert_allclose(to_numpy(ops.mod(x, y)), np.mod(x, y), rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(ops.floor_divide(x, y)), np.floor_divide(x, y))
