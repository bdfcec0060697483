"""Merge layers: values against NumPy, gradients, shapes, configs and errors."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from tests.harness import check_grad

R = np.random.default_rng(3)
A, B, C = R.normal(size=(2, 3, 4)), R.normal(size=(2, 3, 4)), R.normal(size=(2, 1, 4))

CASES = [
    ("add", layers.Add, {}, [A, B, C], lambda a, b, c: a + b + c),
    ("subtract", layers.Subtract, {}, [A, B], lambda a, b: a - b),
    ("multiply", layers.Multiply, {}, [A, C], lambda a, c: a * c),
    ("average", layers.Average, {}, [A, B], lambda a, b: (a + b) / 2),
    ("maximum", layers.Maximum, {}, [A, B], np.maximum),
    ("minimum", layers.Minimum, {}, [A, B], np.minimum),
    (
        "concatenate",
        layers.Concatenate,
        {"axis": 1},
        [A, C],
        lambda a, c: np.concatenate([a, c], 1),
    ),
    ("dot_last", layers.Dot, {"axes": -1}, [A, B], lambda a, b: np.einsum("bik,bjk->bij", a, b)),
    (
        "dot_pair",
        layers.Dot,
        {"axes": (1, 1)},
        [A, B],
        lambda a, b: np.einsum("bik,bil->bkl", a, b),
    ),
    (
        "dot_vectors",
        layers.Dot,
        {"axes": 1},
        [A[:, 0], B[:, 0]],
        lambda a, b: (a * b).sum(1, keepdims=True),
    ),
    (
        "dot_normalize",
        layers.Dot,
        {"axes": 1, "normalize": True},
        [A[:, 0], B[:, 0]],
        lambda a, b: (
            (a / np.linalg.norm(a, axis=1, keepdims=True))
            * (b / np.linalg.norm(b, axis=1, keepdims=True))
        ).sum(1, keepdims=True),
    ),
]


@pytest.mark.parametrize("name,cls,kwargs,inputs,ref", CASES, ids=[c[0] for c in CASES])
def test_merge_layer(name, cls, kwargs, inputs, ref):
    keras.backend.set_floatx("float64")
    try:
        layer = cls(**kwargs)
        out = layer(inputs)
        np.testing.assert_allclose(np.asarray(out), ref(*inputs), rtol=1e-10)
        shapes = [(None, *x.shape[1:]) for x in inputs]
        assert layer.compute_output_shape(shapes) == (None, *out.shape[1:])
        clone = cls.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        assert type(layers.deserialize(layers.serialize(layer))) is cls
        check_grad(lambda *xs: cls(**kwargs)(list(xs)), *inputs)
    finally:
        keras.backend.set_floatx("float32")


def test_functional_forms_build_graphs():
    a, b = keras.Input((3,)), keras.Input((3,))
    for fn in (
        layers.add,
        layers.subtract,
        layers.multiply,
        layers.average,
        layers.maximum,
        layers.minimum,
    ):
        assert fn([a, b]).shape == (None, 3)
    assert layers.concatenate([a, b]).shape == (None, 6)
    assert layers.dot([a, b], axes=1).shape == (None, 1)


@pytest.mark.parametrize(
    "make,inputs,match",
    [
        (lambda: layers.Subtract(), [A, B, C], "exactly 2 inputs"),
        (lambda: layers.Add(), A, "list of inputs"),
        (lambda: layers.Concatenate(axis=1), [A, np.zeros((2, 3, 5))], "matching shapes"),
        (lambda: layers.Dot(axes=1), [A, np.zeros((2, 4, 4))], "Incompatible input shapes"),
        (lambda: layers.Dot(axes="x"), None, "Received: axes='x'"),
    ],
)
def test_merge_errors(make, inputs, match):
    with pytest.raises(ValueError, match=match):
        layer = make()
        layer(inputs)
