"""`InputSpec`: the ndim/axes contract a built layer checks its inputs against."""

from __future__ import annotations

from typing import Any


class InputSpec:
    """Expected rank and axis sizes of a layer input.

    Args:
        ndim: Exact rank.
        min_ndim: Minimum rank.
        axes: Mapping axis -> required size.
        dtype: Expected dtype (unchecked; kept for compatibility).
    """

    def __init__(
        self,
        dtype: Any = None,
        shape: Any = None,
        ndim: int | None = None,
        max_ndim: int | None = None,
        min_ndim: int | None = None,
        axes: dict | None = None,
        allow_last_axis_squeeze: bool = False,
        name: str | None = None,
    ):
        self.dtype = dtype
        self.shape = shape
        self.ndim = len(shape) if shape is not None else ndim
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.axes = {int(k): v for k, v in (axes or {}).items()}
        self.name = name


def assert_input_compatibility(spec: Any, inputs: Any, layer_name: str) -> None:
    """Raises ValueError when `inputs` break the layer's InputSpec."""
    specs = spec if isinstance(spec, list) else [spec]
    xs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    for i, (s, x) in enumerate(zip(specs, xs)):
        if s is None:
            continue
        shape = tuple(x.shape)
        ndim = len(shape)
        if s.ndim is not None and ndim != s.ndim:
            raise ValueError(
                f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                f"expected ndim={s.ndim}, found ndim={ndim}. Full shape received: {shape}"
            )
        if s.min_ndim is not None and ndim < s.min_ndim:
            raise ValueError(
                f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                f"expected min_ndim={s.min_ndim}, found ndim={ndim}. Full shape received: {shape}"
            )
        if s.max_ndim is not None and ndim > s.max_ndim:
            raise ValueError(
                f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                f"expected max_ndim={s.max_ndim}, found ndim={ndim}. Full shape received: {shape}"
            )
        for axis, value in s.axes.items():
            if value is None:
                continue
            if -ndim <= axis < ndim and shape[axis] is not None and shape[axis] != value:
                raise ValueError(
                    f'Input {i} of layer "{layer_name}" is incompatible with the layer: '
                    f"expected axis {axis} of input shape to have value {value}, "
                    f"but received input with shape {shape}"
                )
