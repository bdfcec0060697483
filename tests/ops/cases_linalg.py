"""Every-op symbolic cases for `distkeras.ops.linalg` (merged into test_keras_tensor.py).

Format: name -> (function of symbolic-or-eager inputs, input specs without the batch axis).
"""

from __future__ import annotations

import numpy as np

from distkeras import ops

M = ((3, 3),)
TALL = ((4, 3),)
RHS = ((3, 2),)
A_LSTSQ = np.random.default_rng(5).normal(size=(4, 2)).astype("float32")
EYE3 = np.eye(3, dtype="float32")


def _spd(a):
    """A symmetric positive-definite stack from any stack of square matrices."""
    return ops.matmul(a, ops.transpose(a, (0, 2, 1))) + 3.0 * EYE3


OP_CASES = {
    "cholesky": (lambda a: ops.cholesky(_spd(a)), [M]),
    "cholesky_inverse": (lambda a: ops.cholesky_inverse(ops.cholesky(_spd(a))), [M]),
    "det": (ops.det, [M]),
    "eig": (ops.eig, [M]),
    "eigh": (lambda a: ops.eigh(_spd(a)), [M]),
    "inv": (ops.inv, [M]),
    "lstsq": (lambda b: ops.lstsq(A_LSTSQ, ops.transpose(b)), [((4,),)]),
    "lu_factor": (ops.lu_factor, [M]),
    "matrix_rank": (ops.matrix_rank, [TALL]),
    "pinv": (ops.pinv, [TALL]),
    "qr": (ops.qr, [TALL]),
    "slogdet": (ops.slogdet, [M]),
    "solve": (ops.solve, [M, RHS]),
    "solve_triangular": (lambda a, b: ops.solve_triangular(ops.add(a, 4.0 * EYE3), b), [M, RHS]),
    "svd": (lambda a: ops.svd(a, full_matrices=False), [TALL]),
}
