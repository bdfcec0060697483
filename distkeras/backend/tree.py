"""Nested structures of lists, tuples and dicts, walked as Keras 3's `tree` does
(dict values in sorted key order)."""

from __future__ import annotations

from typing import Any


def flatten(struct: Any) -> list:
    """The leaves of `struct`, dict values by sorted key, as Keras 3's `tree.flatten`."""
    if isinstance(struct, dict):
        return [leaf for k in sorted(struct) for leaf in flatten(struct[k])]
    if isinstance(struct, (list, tuple)):
        return [leaf for item in struct for leaf in flatten(item)]
    return [struct]


def pack_sequence_as(struct: Any, leaves: list) -> Any:
    """`leaves` (as `flatten` orders them) put back in the structure of `struct`."""
    it = iter(leaves)

    def build(t: Any) -> Any:
        if isinstance(t, dict):
            return {k: build(t[k]) for k in sorted(t)}
        if isinstance(t, (list, tuple)):
            return type(t)(build(v) for v in t)
        return next(it)

    return build(struct)
