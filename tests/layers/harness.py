"""`run_layer_test`: the one harness every layer goes through.

It checks the output shape (and `compute_output_shape`), the config
round-trip (including through `layers.serialize`/`deserialize`), that a rebuilt
layer with the same weights computes the same output, and the gradients with
respect to the input and every trainable weight against central finite
differences in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import backend, layers, ops
from distkeras.backend import GradientTape, Variable, to_numpy
from tests.harness import numeric_grad


def run_layer_test(
    layer_cls: type,
    init_kwargs: dict | None = None,
    input_shape: tuple = (2, 3),
    expected_output_shape: tuple | None = None,
    input_data: np.ndarray | None = None,
    expected_output: np.ndarray | None = None,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    check_input_grad: bool = True,
    training: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    unpack_inputs: bool = False,
    call_kwargs: dict | None = None,
    input_dtype: str | None = None,
) -> Any:
    """Runs the shared checks on one layer configuration; returns the built layer.

    `input_shape` (or `input_data`) may be a list for layers with several
    inputs: they are passed as one list, or as separate positional arguments
    with `unpack_inputs=True` (e.g. MultiHeadAttention(query, value)).
    `call_kwargs` are passed to every call.
    `input_dtype` (e.g. 'int32') gives integer inputs (drawn from [0, 10) unless
    `input_data` is given); their gradient is not checked. Layers returning a
    list of outputs (e.g. `return_state=True`) are checked output by output, and
    their gradients through the concatenation of all outputs. Stateful layers
    (`layer.stateful`) get `reset_state()` before every call.
    """
    init_kwargs = dict(init_kwargs or {})
    backend.set_floatx("float64")
    try:
        rng = np.random.default_rng(0)
        multi = isinstance(input_data if input_data is not None else input_shape, list)
        dtype = np.dtype(np.float64 if input_dtype is None else input_dtype)
        if input_data is not None:
            x = (
                [np.asarray(a, dtype) for a in input_data]
                if multi
                else np.asarray(input_data, dtype)
            )
        elif dtype.kind in "iu":
            x = rng.integers(0, 10, size=input_shape).astype(dtype)
        else:
            x = [rng.normal(size=s) for s in input_shape] if multi else rng.normal(size=input_shape)
        if dtype.kind in "iu":
            check_input_grad = False
        layer = layer_cls(**init_kwargs)
        call = _caller(unpack_inputs and multi, call_kwargs or {})
        out = call(layer, x, training=training)
        if isinstance(out, (list, tuple)):
            _check_output_list(layer, x, out, expected_output_shape)
            call = _caller(unpack_inputs and multi, call_kwargs or {}, flatten_outputs=True)
            out = call(layer, x, training=training)
            expected_output_shape = None
            multi_out = True
        else:
            multi_out = False
        shape = tuple(out.shape)
        if expected_output_shape is not None:
            assert shape == tuple(expected_output_shape), (shape, expected_output_shape)
        if multi:
            shapes = [(None, *a.shape[1:]) for a in x]
            symbolic = (
                layer.compute_output_shape(*shapes)
                if unpack_inputs
                else layer.compute_output_shape(shapes)
            )
        else:
            symbolic = layer.compute_output_shape((None, *x.shape[1:]))
        if not multi_out:
            assert tuple(symbolic) == (None, *shape[1:]), (symbolic, shape)
        if expected_output is not None:
            np.testing.assert_allclose(to_numpy(out), expected_output, rtol=1e-6, atol=1e-7)
        if expected_num_trainable_weights is not None:
            assert len(layer.trainable_weights) == expected_num_trainable_weights
        if expected_num_non_trainable_weights is not None:
            assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights

        # Config round-trip, directly and through the registry.
        config = layer.get_config()
        clone = layer_cls.from_config(config)
        assert clone.get_config() == config
        again = layers.deserialize(layers.serialize(layer))
        assert type(again) is layer_cls and again.get_config() == config
        call(clone, x, training=training)
        clone.set_weights(layer.get_weights())
        if not training:
            # Explicitly in inference: a random layer called on its own trains, as in Keras.
            def infer(layer, x, **kw):
                return call(layer, x, training=False, **kw)

            np.testing.assert_allclose(to_numpy(infer(clone, x)), to_numpy(out), rtol=1e-12)
            _check_gradients(layer, x, check_input_grad, rtol, atol, infer)
        return layer
    finally:
        backend.set_floatx("float32")


def _caller(unpack: bool, call_kwargs: dict, flatten_outputs: bool = False):
    def call(layer, x, **kw):
        if getattr(layer, "stateful", False) is True and getattr(layer, "built", False):
            layer.reset_state()
        if unpack:
            out = layer(x[0], *x[1:], **call_kwargs, **kw)
        else:
            out = layer(x, **call_kwargs, **kw)
        if flatten_outputs and isinstance(out, (list, tuple)):
            out = ops.concatenate([ops.reshape(o, (-1,)) for o in out], axis=0)
        return out

    return call


def _check_output_list(layer, x, outs, expected_shapes) -> None:
    """Shapes of a list of outputs against the expected ones and compute_output_shape."""
    shapes = [tuple(o.shape) for o in outs]
    if expected_shapes is not None:
        assert shapes == [tuple(s) for s in expected_shapes], (shapes, expected_shapes)
    first = x[0] if isinstance(x, list) else x
    symbolic = layer.compute_output_shape((None, *first.shape[1:]))
    assert [tuple(s) for s in symbolic] == [(None, *s[1:]) for s in shapes], (symbolic, shapes)


def _check_gradients(layer, x, check_input_grad, rtol, atol, call=None) -> None:
    call = call or _caller(False, {})
    xs = x if isinstance(x, list) else [x]
    w = np.random.default_rng(0).normal(size=tuple(call(layer, x).shape))  # as numeric_grad
    params = layer.trainable_weights
    xvs = [Variable(a, dtype="float64") if a.dtype.kind == "f" else a for a in xs]
    with GradientTape() as tape:
        for xv in xvs:
            if isinstance(xv, Variable):
                tape.watch(xv)
        total = ops.sum(ops.multiply(call(layer, xvs if isinstance(x, list) else xvs[0]), w))
    grads = tape.gradient(total, [*(v if isinstance(v, Variable) else None for v in xvs), *params])

    def f_of_input(*xa):
        return call(layer, list(xa) if isinstance(x, list) else xa[0])

    if check_input_grad:
        for i, xi in enumerate(xs):
            expected = numeric_grad(f_of_input, xs, i)
            got = np.zeros_like(xi) if grads[i] is None else to_numpy(grads[i])
            np.testing.assert_allclose(
                got, expected, rtol=rtol, atol=atol, err_msg=f"input {i} grad"
            )
    for p, g in zip(params, grads[len(xs) :]):
        original = p.numpy().copy()

        def f_of_param(pa, p=p):
            p.assign(pa)
            return call(layer, x)

        expected = numeric_grad(f_of_param, [original], 0)
        p.assign(original)
        got = np.zeros_like(original) if g is None else to_numpy(g)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=p.path)
