"""Every-op symbolic cases for `distkeras.ops.image_nn` (merged into test_keras_tensor.py).

Format: name -> (function of symbolic-or-eager inputs, input specs without the batch axis).
"""

from __future__ import annotations

from distkeras import ops

OP_CASES = {
    "adaptive_average_pool": (lambda a: ops.adaptive_average_pool(a, (3, 4)), [((7, 10, 3),)]),
    "adaptive_max_pool": (lambda a: ops.adaptive_max_pool(a, 3), [((7, 2),)]),
    "depth_to_space": (lambda a: ops.depth_to_space(a, 2), [((2, 3, 8),)]),
    "fold": (lambda a: ops.fold(a, (3, 4), 2, stride=(1, 2)), [((12, 4),)]),
    "space_to_depth": (lambda a: ops.space_to_depth(a, 2), [((4, 6, 2),)]),
    "unfold": (lambda a: ops.unfold(a, 3, dilation=2, padding=1), [((2, 7, 8),)]),
}
