"""Sorting, searching, statistics and product ops of `keras.ops` (sort, quantile,
median, histogram, einsum, outer, kron, ...).
"""

from __future__ import annotations

__all__: list[str] = []
