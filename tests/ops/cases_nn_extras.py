"""Symbolic-op cases for `distkeras/ops/nn_extras.py`, merged by test_keras_tensor.py."""

from __future__ import annotations

import numpy as np

from distkeras import ops

_R = np.random.default_rng(7)
X = ((4,),)
SEQ = ((3, 4),)
HEADS = ((3, 2, 4),)  # (seq, heads, head_dim)
G4 = _R.normal(size=4).astype("float32")
V4 = _R.uniform(0.5, 2.0, size=4).astype("float32")

OP_CASES = {
    "batch_normalization": (
        lambda a: ops.batch_normalization(a, G4, V4, axis=-1, offset=G4, scale=V4),
        [SEQ],
    ),
    "celu": (lambda a: ops.celu(a, alpha=0.5), [X]),
    "ctc_decode": (
        lambda a, n: ops.ctc_decode(a, n, strategy="beam_search", beam_width=3, top_paths=2),
        [((5, 4),), ((), "int32", "int:6")],
    ),
    "ctc_loss": (
        lambda t, o, n: ops.ctc_loss(t, o, n, ops.add(ops.multiply(n, 0), 6)),
        [((2,), "int32", "int:4"), ((6, 4),), ((), "int32", "int:3")],
    ),
    "dot_product_attention": (
        lambda q, k, v: ops.dot_product_attention(q, k, v, is_causal=True),
        [HEADS, HEADS, HEADS],
    ),
    "glu": (ops.glu, [X]),
    "hard_shrink": (ops.hard_shrink, [X]),
    "hard_silu": (ops.hard_silu, [X]),
    "hard_swish": (ops.hard_swish, [X]),
    "hard_tanh": (ops.hard_tanh, [X]),
    "layer_normalization": (lambda a: ops.layer_normalization(a, G4, V4), [SEQ]),
    "moments": (lambda a: ops.moments(a, axes=[1]), [SEQ]),
    "multi_hot": (lambda i: ops.multi_hot(i, 6), [((4,), "int32", "int:6")]),
    "normalize": (lambda a: ops.normalize(a, axis=1, order=1), [SEQ]),
    "polar": (lambda a, b: ops.view_as_real(ops.polar(a, b)), [X, X]),
    "psnr": (lambda a, b: ops.psnr(a, b, 1.0), [X, X]),
    "rearrange": (lambda a: ops.rearrange(a, "b (h h1) w -> b h (w h1)", h1=2), [((4, 3),)]),
    "rms_normalization": (lambda a: ops.rms_normalization(a, V4), [SEQ]),
    "soft_shrink": (ops.soft_shrink, [X]),
    "sparse_plus": (ops.sparse_plus, [X]),
    "sparse_sigmoid": (ops.sparse_sigmoid, [X]),
    "sparsemax": (ops.sparsemax, [X]),
    "squareplus": (ops.squareplus, [X]),
    "tanh_shrink": (ops.tanh_shrink, [X]),
    "threshold": (lambda a: ops.threshold(a, 0.1, -1.0), [X]),
}
