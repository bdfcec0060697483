"""GradientTape, no_grad and the recording rules of the autodiff engine."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import GradientTape, ops
from distkeras.backend import Variable, convert_to_tensor, no_grad
from distkeras.backend.autodiff import backward


def test_nothing_is_recorded_outside_a_tape():
    v = Variable(np.ones(3))
    y = ops.sum(ops.multiply(v, 2.0))
    assert y._parents is None and not y.requires_grad


def test_no_grad_inside_a_tape_records_nothing():
    v = Variable(np.ones(3))
    with GradientTape() as tape:
        with no_grad():
            y = ops.sum(v * v)
    assert y._parents is None
    assert tape.gradient(y, [v]) == [None]


def test_gradient_of_shared_subexpression_accumulates():
    v = Variable(np.array([1.0, 2.0]), dtype="float64")
    with GradientTape() as tape:
        a = v * v
        y = ops.sum(a + a * 3.0)  # 4 v^2
    (g,) = tape.gradient(y, [v])
    np.testing.assert_allclose(np.asarray(g), 8 * np.array([1.0, 2.0]))


def test_non_persistent_tape_refuses_second_gradient():
    v = Variable(np.ones(2))
    with GradientTape() as tape:
        y = ops.sum(v)
    tape.gradient(y, [v])
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, [v])


def test_persistent_tape_and_structures():
    v = Variable(np.array([3.0]), dtype="float64")
    w = Variable(np.array([2.0]), dtype="float64")
    with GradientTape(persistent=True) as tape:
        y = ops.sum(v * w)
        z = ops.sum(v * v)
    g1 = tape.gradient(y, {"v": v, "w": w})
    g2 = tape.gradient(z, [v, w])
    assert float(g1["v"].numpy()[0]) == 2.0 and float(g1["w"].numpy()[0]) == 3.0
    assert float(g2[0].numpy()[0]) == 6.0 and g2[1] is None


def test_watch_constant_tensor_and_frozen_variable():
    x = convert_to_tensor(np.array([1.0, 2.0]))
    frozen = Variable(np.array([1.0, 1.0]), trainable=False)
    with GradientTape() as tape:
        tape.watch([x, frozen])
        y = ops.sum(x * x * frozen)
    gx, gf = tape.gradient(y, [x, frozen])
    np.testing.assert_allclose(np.asarray(gx), [2.0, 4.0])
    np.testing.assert_allclose(np.asarray(gf), [1.0, 4.0])
    assert not frozen.requires_grad  # restored when the tape closes


def test_watch_rejects_plain_arrays():
    with GradientTape() as tape:
        with pytest.raises(TypeError, match="Received: tensor of type ndarray"):
            tape.watch(np.ones(2))


def test_frozen_variable_gets_no_gradient_by_default():
    a = Variable(np.ones(2))
    b = Variable(np.ones(2), trainable=False)
    with GradientTape() as tape:
        y = ops.sum(a * b)
    ga, gb = tape.gradient(y, [a, b])
    assert ga is not None and gb is None


def test_backward_hook_sees_each_leaf_once_with_final_gradient():
    a = Variable(np.array([1.0, 2.0]), dtype="float64")
    b = Variable(np.array([3.0]), dtype="float64")
    seen = {}
    with GradientTape():
        h = a * b
        y = ops.sum(h * h + a)
    backward(y, hook=lambda leaf, g: seen.setdefault(id(leaf), []).append(np.array(g)))
    assert len(seen[id(a)]) == 1 and len(seen[id(b)]) == 1
    np.testing.assert_allclose(seen[id(a)][0], 2 * np.array([1.0, 2.0]) * 9 + 1)
    np.testing.assert_allclose(seen[id(b)][0], [2 * (1 * 1 + 2 * 2) * 3])


def test_variable_assign_is_in_place_and_checks_shape():
    v = Variable(np.zeros((2, 2)), name="w")
    data = v.data
    v.assign(np.ones((2, 2)))
    assert v.data is data and float(v.data.sum()) == 4
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        v.assign(np.ones(3))


def test_backward_writes_single_consumer_gradients_into_sinks():
    from distkeras.backend import primitives as P

    x = np.random.default_rng(0).normal(size=(5, 3))
    w = Variable(np.random.default_rng(1).normal(size=(3, 2)), dtype="float64")
    b = Variable(np.zeros(2), dtype="float64")
    shared = Variable(np.ones((3, 2)), dtype="float64")  # used twice: no sink
    sink_w, sink_b, sink_s = np.zeros((3, 2)), np.zeros(2), np.zeros((3, 2))
    with GradientTape():
        y = ops.sum(P.dense(x, w, b, relu=True)) + ops.sum(shared * shared)
    plain = backward(y)
    with GradientTape():
        y = ops.sum(P.dense(x, w, b, relu=True)) + ops.sum(shared * shared)
    sunk = backward(y, sinks={id(w): sink_w, id(b): sink_b, id(shared): sink_s})
    assert sunk[id(w)] is sink_w and sunk[id(b)] is sink_b
    np.testing.assert_allclose(sink_w, plain[id(w)])
    np.testing.assert_allclose(sink_b, plain[id(b)])
    assert sunk[id(shared)] is not sink_s and not sink_s.any()
