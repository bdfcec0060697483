"""Symbolic-model cases for the ops of `distkeras/ops/manip.py` and `manip_2.py`.

name -> (function of symbolic-or-eager inputs, input specs without the batch axis), merged
into `OP_CASES` of tests/layers/test_keras_tensor.py.
"""

from __future__ import annotations

from distkeras import ops

X = ((4,),)
SQ = ((4, 4),)
M42 = ((4, 2),)

OP_CASES = {
    "append": (lambda a, b: ops.append(a, b, axis=1), [X, ((2,),)]),
    "array": (ops.array, [X]),
    "array_split": (lambda a: ops.array_split(a, 3, axis=1), [X]),
    "copy": (ops.copy, [X]),
    "diag": (lambda a: ops.diag(a[0], k=1), [X]),
    "diagflat": (lambda a: ops.diagflat(a[:2], k=-1), [X]),
    "diagonal": (lambda a: ops.diagonal(a, 1, 1, 2), [SQ]),
    "dsplit": (lambda a: ops.dsplit(a, 2), [M42]),
    "dstack": (lambda a, b: ops.dstack([a, b]), [M42, M42]),
    "empty_like": (ops.empty_like, [X]),
    "flip": (lambda a: ops.flip(a, axis=-1), [X]),
    "fliplr": (ops.fliplr, [X]),
    "flipud": (lambda a: ops.flipud(a), [M42]),
    "hsplit": (lambda a: ops.hsplit(a, [1, 3]), [X]),
    "hstack": (lambda a, b: ops.hstack([a, b]), [X, ((2,),)]),
    "meshgrid": (lambda a, b: ops.meshgrid(a[0], b[1]), [X, ((2,),)]),
    "roll": (lambda a: ops.roll(a, 1, axis=1), [X]),
    "rot90": (lambda a: ops.rot90(a, axes=(1, 2)), [M42]),
    "trace": (lambda a: ops.trace(a, axis1=1, axis2=2), [SQ]),
    "tril": (lambda a: ops.tril(a, k=-1), [SQ]),
    "triu": (ops.triu, [SQ]),
    "unravel_index": (lambda i: ops.unravel_index(i, (2, 3)), [((4,), "int32", "int:6")]),
    "vander": (lambda a: ops.vander(a, 3), [((),)]),
    "view": (lambda a: ops.view(a, "int32"), [X]),
    "vsplit": (lambda a: ops.vsplit(ops.transpose(a, (1, 0, 2)), 2), [M42]),
    "vstack": (lambda a, b: ops.vstack([a, b]), [X, X]),
}
