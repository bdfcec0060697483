"""The `keras.ops.math` functions (erf, top_k, segment reductions, ...) and the
extra activation and normalization functions of `keras.ops.nn`.
"""

from __future__ import annotations

__all__: list[str] = []
