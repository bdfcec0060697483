"""Image ops, public like `keras.ops.image`."""

from __future__ import annotations

__all__: list[str] = []
