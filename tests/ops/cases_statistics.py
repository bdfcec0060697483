"""Symbolic cases for the ops of `distkeras/ops/statistics.py` and `statistics_2.py`.

Merged into `OP_CASES` by tests/layers/test_keras_tensor.py (same format).
"""

from __future__ import annotations

import numpy as np

from distkeras import ops

_RNG = np.random.default_rng(7)
X = ((4,),)
P = ((4,), "float32", "pos")
B = ((4,), "bool", "bool")
V3 = ((3,),)
W23 = _RNG.normal(size=(2, 3)).astype("float32")
EDGES = np.array([-1.0, -0.2, 0.3, 1.1], "float32")
KERN = np.array([0.5, -1.0, 2.0], "float32")

OP_CASES = {
    "argpartition": (lambda a: ops.argpartition(a, 1), [X]),
    "average": (lambda a, w: ops.average(a, axis=1, weights=w), [X, P]),
    "bincount": (lambda a: ops.bincount(a, minlength=5), [((4,), "int32", "int:5")]),
    "corrcoef": (ops.corrcoef, [X]),
    "correlate": (lambda a: ops.correlate(ops.reshape(a, (-1,)), KERN, mode="same"), [X]),
    "cross": (ops.cross, [V3, V3]),
    "cumprod": (lambda a: ops.cumprod(a, axis=1), [X]),
    "diff": (lambda a: ops.diff(a, n=2), [X]),
    "digitize": (lambda a: ops.digitize(a, EDGES), [X]),
    "einsum": (lambda a, b: ops.einsum("bij,bjk->bik", a, b), [((2, 4),), ((4, 3),)]),
    "histogram": (lambda a: ops.histogram(ops.reshape(a, (-1,)), bins=4), [X]),
    "inner": (ops.inner, [X, X]),
    "kron": (lambda a: ops.kron(a, W23), [X]),
    "median": (lambda a: ops.median(a, axis=1), [X]),
    "nanargmax": (lambda a: ops.nanargmax(a, axis=1), [X]),
    "nanargmin": (lambda a: ops.nanargmin(a, axis=1), [X]),
    "nancumprod": (lambda a: ops.nancumprod(a, axis=1), [X]),
    "nancumsum": (lambda a: ops.nancumsum(a, axis=1), [X]),
    "nanmax": (lambda a: ops.nanmax(a, axis=1), [X]),
    "nanmean": (lambda a: ops.nanmean(a, axis=1), [X]),
    "nanmedian": (lambda a: ops.nanmedian(a, axis=1, keepdims=True), [X]),
    "nanmin": (lambda a: ops.nanmin(a, axis=1), [X]),
    "nanpercentile": (lambda a: ops.nanpercentile(a, 70.0, axis=1), [X]),
    "nanprod": (lambda a: ops.nanprod(a, axis=1), [X]),
    "nanquantile": (lambda a: ops.nanquantile(a, 0.3, axis=1), [X]),
    "nanstd": (lambda a: ops.nanstd(a, axis=1), [X]),
    "nansum": (lambda a: ops.nansum(a, axis=1), [X]),
    "nanvar": (lambda a: ops.nanvar(a, axis=1), [X]),
    "nonzero": (ops.nonzero, [X]),
    "outer": (ops.outer, [X, V3]),
    "percentile": (lambda a: ops.percentile(a, 30.0, axis=1), [X]),
    "ptp": (lambda a: ops.ptp(a, axis=1), [X]),
    "quantile": (lambda a: ops.quantile(a, [0.25, 0.5], axis=-1), [X]),
    "searchsorted": (lambda a: ops.searchsorted(EDGES, a, side="right"), [X]),
    "select": (lambda c, a, b: ops.select([c], [a], b), [B, X, X]),
    "sort": (ops.sort, [X]),
    "trapezoid": (lambda a: ops.trapezoid(a, dx=0.5), [X]),
    "unique": (lambda a: ops.unique(a, size=5), [((4,), "int32", "int:4")]),
    "vdot": (ops.vdot, [X, X]),
}
