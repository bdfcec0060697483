"""The `keras.ops.nn` functions beyond `distkeras.ops.nn`: the further activations,
normalizations, attention, CTC and shape-rearranging functions.
"""

from __future__ import annotations

__all__: list[str] = []
