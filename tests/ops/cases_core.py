"""Symbolic cases for the graph ops of `distkeras/ops/core.py` (merged by
tests/layers/test_keras_tensor.py). The control-flow functions take Python callables
and are not graph nodes (`not_an_op`); they are tested in tests/ops/test_core.py."""

from __future__ import annotations

from distkeras import ops

X = ((4,),)
IDX = ((2,), "int32", "int:3")

# name -> (function of symbolic-or-eager inputs, input specs without the batch axis)
OP_CASES = {
    "get_item": (lambda a: ops.get_item(a, (slice(None), slice(1, 3))), [((4, 2),)]),
    "scatter": (lambda i, v: ops.scatter(i, v, (3, 3, 4)), [IDX, X]),
    "scatter_update": (lambda a, i, u: ops.scatter_update(a, i, u), [((3, 4),), IDX, X]),
    "slice": (lambda a: ops.slice(a, [0, 1, 0], [-1, 2, 2]), [((4, 2),)]),
    "slice_update": (lambda a, u: ops.slice_update(a, [0, 1], u), [X, ((2,),)]),
    "unstack": (lambda a: ops.unstack(a, axis=1), [((3, 2),)]),
}
