"""The `keras.ops.core` functions: control flow (cond, while_loop, scan, ...),
slicing and scatter updates, custom gradients.
"""

from __future__ import annotations

__all__: list[str] = []
