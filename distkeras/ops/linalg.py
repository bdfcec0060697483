"""Linear algebra, public like `keras.ops.linalg` (also exported at the top of
`distkeras.ops`, as Keras does).
"""

from __future__ import annotations

__all__: list[str] = []
