"""How a layer called on symbolic tensors finds its output shapes and masks.

Layers without `compute_output_shape` run once on stand-ins: zeros shaped like
the `KerasTensor`s (unknown sizes 1, the batch axis 1) carrying all-True masks.
When some non-batch size is unknown, a second, bounded run with those sizes at
7 tells which output sizes follow them (they become None).
"""

from __future__ import annotations

import math
from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.mask_propagation import concrete_mask, flat_values, input_mask
from distkeras.saving.limits import check_trace

SECOND_TRACE_ELEMENTS = 1 << 16  # stand-in elements up to which unknown axes are traced twice


def stand_in(t: Any, unknown: int = 1) -> Any:
    """Zeros standing for symbolic tensors (all-True masks for boolean ones).

    Unknown sizes become `unknown` (the batch axis always 1).
    """
    if isinstance(t, KerasTensor):
        shape = tuple(
            (1 if i == 0 else unknown) if d is None else int(d) for i, d in enumerate(t.shape)
        )
        xpm = current_module()
        fill = xpm.ones if t.dtype == "bool" else xpm.zeros
        value = Tensor(fill(shape, dtype=t.dtype))
        value._keras_mask = concrete_mask(t, unknown)
        return value
    if isinstance(t, dict):
        return {k: stand_in(v, unknown) for k, v in t.items()}
    if isinstance(t, (list, tuple)):
        return type(t)(stand_in(v, unknown) for v in t)
    return t


def trace_masks(layer: Any, inputs: Any, mask: Any, default: bool) -> Any:
    """The output mask(s) of a call on symbolic inputs.

    Args:
        layer: The layer called.
        inputs: Its symbolic inputs.
        mask: The explicit `mask=` argument, or None (then the inputs' masks).
        default: Whether the layer keeps `Layer.compute_mask`, which passes the
            symbolic mask on; an overridden one runs on stand-ins of the inputs.
    """
    prev = mask if mask is not None else input_mask(inputs)
    if default:
        return prev
    for x in flat_values(inputs):
        if isinstance(x, KerasTensor):
            check_trace(x.shape, layer.name)  # a no-op unless loading a file
    dummy = stand_in(inputs)
    with no_grad():
        return layer.compute_mask(dummy, stand_in(prev))


def _trace(layer: Any, inputs: Any, args: tuple, kwargs: dict, unknown: int) -> Any:
    with no_grad():
        return layer(
            stand_in(inputs, unknown),
            *stand_in(args, unknown),
            training=False,
            **stand_in(kwargs, unknown),
        )


def trace_output_shapes(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> tuple:
    """Output shape(s) and mask(s) of a call on symbolic tensors, found by running it on zeros.

    The batch axis is traced as 1 and comes back as None. Other unknown sizes
    are traced as 1, then as 7 (when there are a few): sizes that change are None.
    """
    out = _trace(layer, inputs, args, kwargs, 1)
    flat_in = [x for x in flat_values((inputs, args, kwargs)) if isinstance(x, KerasTensor)]
    first = next(x for x in flat_values(inputs) if isinstance(x, KerasTensor))
    batch_unknown = len(first.shape) > 0 and first.shape[0] is None
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    shapes = [list(o.shape) for o in outs]
    unknown = sum(x.shape[1:].count(None) for x in flat_in)
    elements = sum(math.prod(7 if d is None else d for d in x.shape[1:]) for x in flat_in)
    # A second, bounded trace: at most 3 unknown axes, small stand-ins.
    if 0 < unknown <= 3 and elements <= SECOND_TRACE_ELEMENTS:
        try:
            again = _trace(layer, inputs, args, kwargs, 7)
        except Exception:  # noqa: BLE001 - the sizes of the first trace stand
            again = None
        if again is not None:
            again = list(again) if isinstance(again, (list, tuple)) else [again]
            for s, o in zip(shapes, again):
                for i, (a, b) in enumerate(zip(s, o.shape)):
                    if a != b:
                        s[i] = None
    for s in shapes:
        if batch_unknown and s:
            s[0] = None
    masks = [getattr(o, "_keras_mask", None) for o in outs]
    if isinstance(out, (list, tuple)):
        return [tuple(s) for s in shapes], masks
    return tuple(shapes[0]), masks[0]
