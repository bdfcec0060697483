"""Symbolic-op cases for `distkeras/ops/math.py`, merged by test_keras_tensor.py."""

from __future__ import annotations

import numpy as np

from distkeras import ops

X = ((4,),)
P = ((4,), "float32", "pos")
IDS = ((), "int32", "int:2")  # one segment id per batch row
SQ = ((3, 3),)
_EYE = 4 * np.eye(3, dtype="float32")

OP_CASES = {
    "cdist": (ops.cdist, [((3, 2),), ((4, 2),)]),
    "erfc": (ops.erfc, [X]),
    "view_as_complex": (lambda a: ops.view_as_real(ops.view_as_complex(a)), [((3, 2),)]),
    "view_as_real": (lambda a, b: ops.view_as_real(ops.polar(a, b)), [X, X]),
    "erf": (ops.erf, [X]),
    "erfinv": (lambda a: ops.erfinv(ops.tanh(a)), [X]),
    "extract_sequences": (lambda a: ops.extract_sequences(a, 2, 1), [X]),
    "in_top_k": (lambda t, p: ops.in_top_k(t, p, 2), [((), "int32", "int:4"), X]),
    "logdet": (lambda a: ops.logdet(ops.add(a, _EYE)), [SQ]),
    "rsqrt": (ops.rsqrt, [P]),
    "saturate_cast": (lambda a: ops.saturate_cast(ops.multiply(a, 200.0), "int8"), [X]),
    "segment_max": (lambda d, i: ops.segment_max(d, i, num_segments=2), [X, IDS]),
    "segment_min": (lambda d, i: ops.segment_min(d, i, num_segments=2), [X, IDS]),
    "segment_prod": (lambda d, i: ops.segment_prod(d, i, num_segments=2), [X, IDS]),
    "segment_sum": (lambda d, i: ops.segment_sum(d, i, num_segments=2), [X, IDS]),
    "top_k": (lambda a: ops.top_k(a, 2), [X]),
}
