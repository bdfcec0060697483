"""How Keras masks travel with tensors from layer to layer.

A mask is a boolean array (usually `(batch, timesteps)`) attached to a tensor
as `_keras_mask`. After each call, a layer that supports masking attaches
`compute_mask(inputs, previous_mask)` to those outputs that carry no mask yet
(Keras 3's rule: a mask set inside `call` wins). Symbolic tensors carry a
symbolic mask: a boolean `KerasTensor` with the mask's shape, linked to the
tensor it belongs to, so a Functional model finds the real mask at run time
on the real tensor (see `Functional.call`).
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.keras_tensor import KerasTensor


def flat_values(x: Any) -> list:
    """Leaves of nested lists/tuples/dicts."""
    if isinstance(x, dict):
        return [v for item in x.values() for v in flat_values(item)]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in flat_values(item)]
    return [x]


def input_mask(inputs: Any) -> Any:
    """The `_keras_mask` carried by the inputs (a list for list inputs), or None."""
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return None if all(m is None for m in masks) else masks
    return getattr(inputs, "_keras_mask", None)


def as_mask_tensor(mask: Any) -> Any:
    """A mask as a boolean `Tensor` (None, lists and symbolic masks unchanged)."""
    if mask is None or isinstance(mask, (Tensor, KerasTensor)):
        return mask
    if isinstance(mask, (list, tuple)):
        return type(mask)(as_mask_tensor(m) for m in mask)
    return Tensor(current_module().asarray(mask).astype(bool))


def set_output_masks(layer: Any, inputs: Any, outputs: Any, previous_mask: Any) -> None:
    """Attaches `layer.compute_mask(...)` to the outputs that carry no mask (Keras 3).

    Args:
        layer: The layer just called (only one that supports masking sets masks).
        inputs: The call's first argument.
        outputs: The call's outputs.
        previous_mask: The explicit `mask=` argument, else the inputs' mask.
    """
    if not layer.supports_masking:
        return
    flat = [o for o in flat_values(outputs) if isinstance(o, Tensor)]
    if not flat or all(o._keras_mask is not None for o in flat):
        return
    masks = layer.compute_mask(inputs, previous_mask)
    if masks is None:
        return
    if isinstance(outputs, (list, tuple)) and not isinstance(masks, (list, tuple)):
        masks = [masks] * len(outputs)
    if isinstance(masks, (list, tuple)):
        pairs: Any = zip(flat_values(outputs), flat_values(masks))
    else:
        pairs = [(outputs, masks)]
    for o, m in pairs:
        if isinstance(o, Tensor) and o._keras_mask is None and m is not None:
            o._keras_mask = as_mask_tensor(m)


def concrete_mask(kt: KerasTensor, unknown: int = 1) -> Any:
    """An all-True mask standing for a symbolic one while a layer is traced on zeros.

    Unknown sizes become `unknown` (the batch axis always 1).
    """
    mask = kt._keras_mask
    if mask is None:
        return None
    shape = tuple(
        (1 if i == 0 else unknown) if d is None else int(d) for i, d in enumerate(mask.shape)
    )
    return Tensor(current_module().ones(shape, dtype=bool))


def symbolic_mask(out: KerasTensor, traced_mask: Any, batch_unknown: bool) -> KerasTensor:
    """The symbolic mask of `out`, shaped like the mask traced on zeros.

    Axes that the mask shares with `out` take `out`'s sizes (None where unknown).
    """
    shape = tuple(getattr(traced_mask, "shape", ()))
    if len(shape) <= len(out.shape) and all(d is None or s == d for s, d in zip(shape, out.shape)):
        shape = out.shape[: len(shape)]
    elif batch_unknown and shape:
        shape = (None, *shape[1:])
    mask = KerasTensor(shape, "bool", name=f"{out.name}_mask")
    mask._mask_of = out
    return mask
