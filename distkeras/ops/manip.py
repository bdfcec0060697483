"""Array creation, shape manipulation, sorting and statistics ops of `keras.ops`
(flip, roll, tril, stacks and splits, einsum, sort, quantile, ...).
"""

from __future__ import annotations

__all__: list[str] = []
