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
) -> Any:
    """Runs the shared checks on one layer configuration; returns the built layer."""
    init_kwargs = dict(init_kwargs or {})
    backend.set_floatx("float64")
    try:
        rng = np.random.default_rng(0)
        x = (
            rng.normal(size=input_shape)
            if input_data is None
            else np.asarray(input_data, np.float64)
        )
        layer = layer_cls(**init_kwargs)
        out = layer(x, training=training)
        shape = tuple(out.shape)
        if expected_output_shape is not None:
            assert shape == tuple(expected_output_shape), (shape, expected_output_shape)
        symbolic = layer.compute_output_shape((None, *x.shape[1:]))
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
        clone(x, training=training)
        clone.set_weights(layer.get_weights())
        if not training:
            np.testing.assert_allclose(to_numpy(clone(x)), to_numpy(out), rtol=1e-12)

        if not training:
            _check_gradients(layer, x, check_input_grad, rtol, atol)
        return layer
    finally:
        backend.set_floatx("float32")


def _check_gradients(layer, x, check_input_grad, rtol, atol) -> None:
    w = np.random.default_rng(0).normal(size=tuple(layer(x).shape))  # as numeric_grad
    params = layer.trainable_weights
    xv = Variable(x, dtype="float64")
    with GradientTape() as tape:
        tape.watch(xv)
        total = ops.sum(ops.multiply(layer(xv), w))
    grads = tape.gradient(total, [xv, *params])

    def f_of_input(xa):
        return layer(xa)

    if check_input_grad:
        expected = numeric_grad(f_of_input, [x], 0)
        got = np.zeros_like(x) if grads[0] is None else to_numpy(grads[0])
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg="input grad")
    for p, g in zip(params, grads[1:]):
        original = p.numpy().copy()

        def f_of_param(pa, p=p):
            p.assign(pa)
            return layer(x)

        expected = numeric_grad(f_of_param, [original], 0)
        p.assign(original)
        got = np.zeros_like(original) if g is None else to_numpy(g)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=p.path)
