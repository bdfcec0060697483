"""Reshaping layers: Cropping1D/2D/3D, UpSampling1D/2D/3D, ZeroPadding1D/2D/3D."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer

_FORMATS = ("channels_last", "channels_first")


def standardize_data_format(data_format: Any) -> str:
    """None -> 'channels_last'; validates the name."""
    if data_format is None:
        return "channels_last"
    fmt = str(data_format).lower() if isinstance(data_format, str) else data_format
    if fmt not in _FORMATS:
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format!r}"
        )
    return fmt


def _nonneg_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"The `{name}` argument must be a tuple of non-negative integers. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def _pairs(name: str, value: Any, n: int) -> tuple[tuple[int, int], ...]:
    """int -> same (a, a) on every axis; n ints -> (a, a) per axis; n pairs -> as given."""
    try:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            v = _nonneg_int(name, value)
            return tuple((v, v) for _ in range(n))
        value = tuple(value)
        if n == 1 and len(value) == 2 and all(not isinstance(v, (tuple, list)) for v in value):
            return ((_nonneg_int(name, value[0]), _nonneg_int(name, value[1])),)
        if len(value) != n:
            raise ValueError
        out = []
        for v in value:
            if isinstance(v, (tuple, list)):
                if len(v) != 2:
                    raise ValueError
                out.append((_nonneg_int(name, v[0]), _nonneg_int(name, v[1])))
            else:
                iv = _nonneg_int(name, v)
                out.append((iv, iv))
        return tuple(out)
    except (TypeError, ValueError):
        pass
    raise ValueError(
        f"`{name}` should be an int, a tuple of {n} ints or a tuple of {n} tuples of 2 "
        f"non-negative ints. Received: {name}={value!r}"
    )


def _sizes(name: str, value: Any, n: int) -> tuple[int, ...]:
    given = value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,) * n
    try:
        value = tuple(value)
    except TypeError:
        value = ()
    if len(value) != n or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in value
    ):
        raise ValueError(
            f"The `{name}` argument must be a positive int or a tuple of {n} positive ints. "
            f"Received: {name}={given!r}"
        )
    return tuple(int(v) for v in value)


def _spatial_axes(ndim: int, n: int, data_format: str) -> tuple[int, ...]:
    start = 1 if data_format == "channels_last" else 2
    return tuple(range(start, start + n))


def _listify(pairs: tuple) -> list:
    return [list(p) for p in pairs]


class _SpatialLayer(Layer):
    _rank = 1

    def _init_spatial(self, data_format: Any) -> None:
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._rank + 2)

    def _axes(self) -> tuple[int, ...]:
        return _spatial_axes(self._rank + 2, self._rank, self.data_format)


# ---------------------------------------------------------------------------- cropping
class _Cropping(_SpatialLayer):
    def __init__(self, cropping: Any, data_format: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.cropping = _pairs("cropping", cropping, self._rank)
        self._init_spatial(data_format)

    def _check(self, input_shape: Any) -> None:
        for ax, (a, b) in zip(self._axes(), self.cropping):
            s = input_shape[ax]
            if s is not None and a + b >= s:
                raise ValueError(
                    f"`cropping` parameter of {type(self).__name__} layer must be smaller than "
                    f"the input length. Received: input_shape={tuple(input_shape)}, "
                    f"cropping={self.cropping}"
                )

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs.shape)
        key = [slice(None)] * inputs.ndim
        for ax, (a, b) in zip(self._axes(), self.cropping):
            key[ax] = slice(a, inputs.shape[ax] - b)
        return ops.getitem(inputs, tuple(key))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self._check(input_shape)
        out = list(input_shape)
        for ax, (a, b) in zip(self._axes(), self.cropping):
            if out[ax] is not None:
                out[ax] = out[ax] - a - b
        return tuple(out)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["cropping"] = _listify(self.cropping)
        cfg["data_format"] = self.data_format
        return cfg


class Cropping1D(_Cropping):
    """Crops along the time axis of `(batch, steps, features)` inputs.

    Args:
        cropping: int or (start, end): units to remove at each end.
    """

    _rank = 1

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any):
        kwargs.pop("data_format", None)
        super().__init__(cropping, **kwargs)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("data_format")
        cfg["cropping"] = list(self.cropping[0])
        return cfg


class Cropping2D(_Cropping):
    """Crops the spatial axes of 4D image inputs.

    Args:
        cropping: int, (h, w) symmetric, or ((top, bottom), (left, right)).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    _rank = 2

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: Any = None, **kwargs: Any):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops the three spatial axes of 5D volume inputs.

    Args:
        cropping: int, 3 ints, or 3 pairs of ints.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    _rank = 3

    def __init__(
        self, cropping: Any = ((1, 1), (1, 1), (1, 1)), data_format: Any = None, **kwargs: Any
    ):
        super().__init__(cropping, data_format, **kwargs)


# ---------------------------------------------------------------------------- padding
class _ZeroPadding(_SpatialLayer):
    def __init__(self, padding: Any, data_format: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.padding = _pairs("padding", padding, self._rank)
        self._init_spatial(data_format)

    def _pad_width(self, ndim: int) -> list:
        width = [(0, 0)] * ndim
        for ax, p in zip(self._axes(), self.padding):
            width[ax] = p
        return width

    def call(self, inputs: Tensor) -> Tensor:
        return ops.pad(inputs, self._pad_width(inputs.ndim))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        out = list(input_shape)
        for ax, (a, b) in zip(self._axes(), self.padding):
            if out[ax] is not None:
                out[ax] = out[ax] + a + b
        return tuple(out)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["padding"] = _listify(self.padding)
        cfg["data_format"] = self.data_format
        return cfg


class ZeroPadding1D(_ZeroPadding):
    """Pads the time axis of `(batch, steps, features)` inputs with zeros.

    Args:
        padding: int or (start, end).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    _rank = 1

    def __init__(self, padding: Any = 1, data_format: Any = None, **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["padding"] = list(self.padding[0])
        return cfg


class ZeroPadding2D(_ZeroPadding):
    """Pads the spatial axes of 4D image inputs with zeros.

    Args:
        padding: int, (h, w) symmetric, or ((top, bottom), (left, right)).
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    _rank = 2

    def __init__(self, padding: Any = (1, 1), data_format: Any = None, **kwargs: Any):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Pads the three spatial axes of 5D volume inputs with zeros.

    Args:
        padding: int, 3 ints, or 3 pairs of ints.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    _rank = 3

    def __init__(
        self, padding: Any = ((1, 1), (1, 1), (1, 1)), data_format: Any = None, **kwargs: Any
    ):
        super().__init__(padding, data_format, **kwargs)


# ---------------------------------------------------------------------------- upsampling
def bilinear_matrix(n_in: int, scale: int, dtype: Any) -> Any:
    """(n_in * scale, n_in) half-pixel-centre linear interpolation weights, edges clamped."""
    n_out = n_in * scale
    src = (np.arange(n_out) + 0.5) / scale - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in))
    w[np.arange(n_out), lo] += 1.0 - frac
    w[np.arange(n_out), hi] += frac
    return current_module().asarray(w.astype(dtype))


class _UpSampling(_SpatialLayer):
    def __init__(
        self, size: Any, data_format: Any = None, interpolation: str = "nearest", **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.size = _sizes("size", size, self._rank)
        self._init_spatial(data_format)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(
                "`interpolation` argument should be one of: 'nearest', 'bilinear'. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        for ax, s in zip(self._axes(), self.size):
            if s == 1:
                continue
            if self.interpolation == "nearest":
                x = ops.repeat(x, s, axis=ax)
            else:
                w = bilinear_matrix(x.shape[ax], s, x.dtype)
                moved = ops.moveaxis(x, ax, -1)
                x = ops.moveaxis(ops.matmul(moved, w.T), -1, ax)
        return x

    def compute_output_shape(self, input_shape: Any) -> tuple:
        out = list(input_shape)
        for ax, s in zip(self._axes(), self.size):
            if out[ax] is not None:
                out[ax] = out[ax] * s
        return tuple(out)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["size"] = list(self.size)
        cfg["data_format"] = self.data_format
        return cfg


class UpSampling1D(_UpSampling):
    """Repeats each time step `size` times along the time axis.

    Args:
        size: Upsampling factor.
    """

    _rank = 1

    def __init__(self, size: int = 2, **kwargs: Any):
        super().__init__(size, None, "nearest", **kwargs)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("data_format")
        cfg["size"] = self.size[0]
        return cfg


class UpSampling2D(_UpSampling):
    """Upsamples the rows and columns of 4D image inputs.

    Args:
        size: int or (rows, cols) factors.
        data_format: 'channels_last' (default) or 'channels_first'.
        interpolation: 'nearest' (repeat) or 'bilinear' (half-pixel centres).
    """

    _rank = 2

    def __init__(
        self,
        size: Any = (2, 2),
        data_format: Any = None,
        interpolation: str = "nearest",
        **kwargs: Any,
    ):
        super().__init__(size, data_format, interpolation, **kwargs)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["interpolation"] = self.interpolation
        return cfg


class UpSampling3D(_UpSampling):
    """Repeats the three spatial axes of 5D volume inputs (nearest neighbour).

    Args:
        size: int or 3 factors.
        data_format: 'channels_last' (default) or 'channels_first'.
    """

    _rank = 3

    def __init__(self, size: Any = (2, 2, 2), data_format: Any = None, **kwargs: Any):
        super().__init__(size, data_format, "nearest", **kwargs)
