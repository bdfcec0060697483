"""Elementwise math ops of `keras.ops` beyond the basic arithmetic in
`distkeras.ops.numpy`: trigonometric and hyperbolic functions, rounding,
predicates (`isclose`, `isinf`, ...), bitwise and integer ops.
"""

from __future__ import annotations

__all__: list[str] = []
