"""Array creation and shape manipulation ops of `keras.ops`, part one: creation
(identity, linspace, tri, windows, ...), flips, rolls, rotations, triangles,
copies and views. Stacking, splitting and diagonals are in `manip_2.py`.

Functions that create a tensor from Python values only are `not_an_op` (no
graph node, no symbolic input). Flips, `roll`, `rot90`, `tril`/`triu` and
`copy` are differentiable, each through one primitive or a slice.

Dtypes follow Keras 3, except that 64-bit inputs keep their width (Keras's
`result_type` narrows int64/float64 to 32 bits; distkeras's `convert_to_tensor`
never does, so neither do these ops).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx, standardize_dtype, to_numpy
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor
from distkeras.backend.shape_primitives import sum_to as _sum_to
from distkeras.ops.symbolic import not_an_op

__all__ = [
    "array",
    "bartlett",
    "blackman",
    "copy",
    "dtype",
    "empty",
    "empty_like",
    "flip",
    "fliplr",
    "flipud",
    "geomspace",
    "hamming",
    "hanning",
    "identity",
    "kaiser",
    "linspace",
    "logspace",
    "roll",
    "rot90",
    "tri",
    "tril",
    "triu",
    "unravel_index",
    "view",
]


# ---------------------------------------------------------------- helpers
def _norm_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    """`axis` in [0, ndim), or a ValueError naming the received value."""
    a = int(axis)
    if not -ndim <= a < ndim:
        raise ValueError(
            f"`{name}` is out of bounds for a tensor of rank {ndim}. Received: {name}={axis}"
        )
    return a % ndim


def _norm_axes(axis: Any, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """`axis` (None: every axis; an int or a sequence) as a tuple of distinct axes."""
    if axis is None:
        return tuple(range(ndim))
    seq = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    out = tuple(_norm_axis(a, ndim, name) for a in seq)
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` has a repeated axis. Received: {name}={axis}")
    return out


def _host(v: Any) -> Any:
    """A Tensor's array or a NumPy scalar as a plain value for creation functions."""
    if isinstance(v, Tensor):
        return v.data
    return v


def _space_dtype(*values: Any) -> str:
    """Keras's result_type(start, stop, float): floatx unless an array brings a float dtype."""
    floats = []
    for v in values:
        if isinstance(v, (Tensor, np.ndarray)) or type(v).__module__ == "cupy":
            dt = np.dtype(standardize_dtype(v.dtype))
            if dt.kind == "f":
                floats.append(dt)
    if not floats:
        return floatx()
    if builtins.all(d.itemsize == 2 for d in floats):
        return np.result_type(*floats).name  # float16 with a weak Python float stays float16
    return builtins.max(np.result_type(*floats).name, floatx(), key=lambda n: np.dtype(n).itemsize)


def _window_length(x: Any) -> int:
    v = _host(x)
    try:
        return int(v.item() if hasattr(v, "item") else v)
    except (TypeError, ValueError):
        raise ValueError(
            f"The window length must be an integer scalar. Received: x={x!r}"
        ) from None


# ---------------------------------------------------------------- creation
@not_an_op
def dtype(x: Any) -> str:
    """Returns the standardized dtype name of a tensor, e.g. `'float32'`."""
    dt = getattr(x, "dtype", None)
    if dt is None:
        dt = convert_to_tensor(x).dtype
    return standardize_dtype(dt)


def array(x: Any, dtype: Any = None) -> Tensor:
    """Creates a tensor from array-like data, cast to `dtype` when given."""
    return convert_to_tensor(x, dtype=dtype)


@not_an_op
def identity(n: int, dtype: Any = None) -> Tensor:
    """Returns the `n` x `n` identity matrix (`floatx` by default)."""
    return Tensor(current_module().identity(int(n), dtype=standardize_dtype(dtype)))


@not_an_op
def empty(shape: Any, dtype: Any = None) -> Tensor:
    """Returns a tensor of `shape` whose contents are unspecified (zeros here)."""
    return Tensor(current_module().zeros(shape, dtype=standardize_dtype(dtype)))


def empty_like(x: Any, dtype: Any = None) -> Tensor:
    """Returns a tensor shaped like `x` whose contents are unspecified (zeros here)."""
    x = convert_to_tensor(x)
    dt = x.dtype if dtype is None else standardize_dtype(dtype)
    return Tensor(current_module().zeros(x.shape, dtype=dt))


@not_an_op
def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Tensor:  # noqa: N803
    """Returns ones at and below the `k`-th diagonal of an `N` x `M` matrix, zeros elsewhere."""
    return Tensor(current_module().tri(N, M=M, k=k, dtype=standardize_dtype(dtype)))


def _check_num(num: Any) -> int:
    if int(num) < 0:
        raise ValueError(f"The number of samples must be non-negative. Received: num={num}")
    return int(num)


@not_an_op
def linspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: int = 0,
) -> Tensor | tuple[Tensor, Tensor]:
    """Returns `num` evenly spaced samples from `start` to `stop` (inclusive by default)."""
    dt = _space_dtype(start, stop) if dtype is None else standardize_dtype(dtype)
    out = current_module().linspace(
        _host(start),
        _host(stop),
        num=_check_num(num),
        endpoint=endpoint,
        retstep=retstep,
        dtype=dt,
        axis=axis,
    )
    if retstep:
        return Tensor(out[0]), Tensor(current_module().asarray(out[1]))
    return Tensor(out)


@not_an_op
def logspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    base: float = 10,
    dtype: Any = None,
    axis: int = 0,
) -> Tensor:
    """Returns `num` samples spaced evenly on a log scale, from `base**start` to `base**stop`."""
    dt = _space_dtype(start, stop) if dtype is None else standardize_dtype(dtype)
    return Tensor(
        current_module().logspace(
            _host(start),
            _host(stop),
            num=_check_num(num),
            endpoint=endpoint,
            base=_host(base),
            dtype=dt,
            axis=axis,
        )
    )


@not_an_op
def geomspace(
    start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None, axis: int = 0
) -> Tensor:
    """Returns `num` samples spaced evenly on a log scale, from `start` to `stop` (geometric)."""
    host = [to_numpy(v) if hasattr(v, "dtype") else v for v in (_host(start), _host(stop))]
    out = np.geomspace(  # on the host: CuPy has no geomspace
        *host, num=_check_num(num), endpoint=endpoint, dtype=standardize_dtype(dtype), axis=axis
    )
    return Tensor(current_module().asarray(out))


def _window(name: str, x: Any, *args: Any) -> Tensor:
    n = _window_length(x)  # computed on the host (short), then moved to the array module
    return Tensor(current_module().asarray(getattr(np, name)(n, *args).astype(floatx())))


@not_an_op
def bartlett(x: Any) -> Tensor:
    """Returns the Bartlett (triangular) window of length `x` (`floatx`)."""
    return _window("bartlett", x)


@not_an_op
def blackman(x: Any) -> Tensor:
    """Returns the Blackman window of length `x` (`floatx`)."""
    return _window("blackman", x)


@not_an_op
def hamming(x: Any) -> Tensor:
    """Returns the Hamming window of length `x` (`floatx`)."""
    return _window("hamming", x)


@not_an_op
def hanning(x: Any) -> Tensor:
    """Returns the Hann window of length `x` (`floatx`)."""
    return _window("hanning", x)


@not_an_op
def kaiser(x: Any, beta: float) -> Tensor:
    """Returns the Kaiser window of length `x` and shape parameter `beta` (`floatx`)."""
    return _window("kaiser", x, float(_host(beta)))


# ---------------------------------------------------------------- primitives
def _copy(x):
    def vjp(g, needs):
        return (g,)

    return x.copy(), vjp


def _roll(x, shift=0, axis=None):
    xp = current_module()
    back = tuple(-s for s in shift) if isinstance(shift, tuple) else -shift

    def vjp(g, needs):
        return (xp.roll(g, back, axis=axis),)

    return xp.roll(x, shift, axis=axis), vjp


def _rot90(x, k=1, axes=(0, 1)):
    xp = current_module()

    def vjp(g, needs):
        return (xp.rot90(g, -k, axes=axes),)

    return xp.ascontiguousarray(xp.rot90(x, k, axes=axes)), vjp


def _triangle(x, k=0, lower=True):
    xp = current_module()
    fn = xp.tril if lower else xp.triu

    def vjp(g, needs):
        return (_sum_to(fn(g, k=k), x.shape),)  # a 1-D input was broadcast to a square

    return fn(x, k=k), vjp


# ---------------------------------------------------------------- manipulation
def copy(x: Any) -> Tensor:
    """Returns a copy of `x` (the gradient passes through)."""
    return apply(_copy, convert_to_tensor(x))


def flip(x: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    """Reverses the order of elements along `axis` (every axis when None)."""
    x = convert_to_tensor(x)
    axes = _norm_axes(axis, x.ndim)
    key = tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(x.ndim))
    return P.getitem(x, key)


def fliplr(x: Any) -> Tensor:
    """Reverses the order of elements along axis 1 (left/right)."""
    x = convert_to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"fliplr: `x` must be at least 2-D. Received: x.shape={x.shape}")
    return flip(x, axis=1)


def flipud(x: Any) -> Tensor:
    """Reverses the order of elements along axis 0 (up/down)."""
    x = convert_to_tensor(x)
    if x.ndim < 1:
        raise ValueError(f"flipud: `x` must be at least 1-D. Received: x.shape={x.shape}")
    return flip(x, axis=0)


def roll(x: Any, shift: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Tensor:
    """Rolls elements along `axis` by `shift`; those past the end come back at the start."""
    x = convert_to_tensor(x)
    if isinstance(shift, (list, tuple)):
        shift = tuple(int(s) for s in shift)
    else:
        shift = int(_host(shift))
    if axis is not None:
        seq = tuple(axis) if isinstance(axis, (list, tuple)) else None
        axis = (
            tuple(_norm_axis(a, x.ndim) for a in seq)
            if seq is not None
            else _norm_axis(axis, x.ndim)
        )
        if isinstance(shift, tuple) != isinstance(axis, tuple):
            n = len(axis) if isinstance(axis, tuple) else len(shift)
            shift = shift if isinstance(shift, tuple) else (shift,) * n
            axis = axis if isinstance(axis, tuple) else (axis,) * n
        if isinstance(shift, tuple) and len(shift) != len(axis):
            raise ValueError(
                "`shift` and `axis` must have the same length. "
                f"Received: shift={shift}, axis={axis}"
            )
    elif isinstance(shift, tuple):
        raise ValueError(f"`shift` must be an integer when `axis` is None. Received: shift={shift}")
    return apply(_roll, x, shift=shift, axis=axis)


def rot90(array: Any, k: int = 1, axes: Sequence[int] = (0, 1)) -> Tensor:
    """Rotates `array` by 90 degrees `k` times in the plane of `axes` (first towards second)."""
    x = convert_to_tensor(array)
    if x.ndim < 2:
        raise ValueError(
            f"Input array must have at least 2 dimensions. Received: array.ndim={x.ndim}"
        )
    axes = tuple(axes)
    if len(axes) != 2 or axes[0] == axes[1]:
        raise ValueError(f"Invalid axes: {axes}. Axes must be a tuple of two different dimensions.")
    ax = _norm_axes(axes, x.ndim, "axes")
    if len(ax) != 2:
        raise ValueError(f"`axes` must name two different axes. Received: axes={axes}")
    return apply(_rot90, x, k=int(k) % 4, axes=ax)


def tril(x: Any, k: int = 0) -> Tensor:
    """Keeps the elements at and below the `k`-th diagonal of the last two axes, zeros the rest."""
    x = convert_to_tensor(x)
    if x.ndim < 1:
        raise ValueError(f"tril: `x` must be at least 1-D. Received: x.shape={x.shape}")
    return apply(_triangle, x, k=int(k), lower=True)


def triu(x: Any, k: int = 0) -> Tensor:
    """Keeps the elements at and above the `k`-th diagonal of the last two axes, zeros the rest."""
    x = convert_to_tensor(x)
    if x.ndim < 1:
        raise ValueError(f"triu: `x` must be at least 1-D. Received: x.shape={x.shape}")
    return apply(_triangle, x, k=int(k), lower=False)


def view(x: Any, dtype: Any = None) -> Tensor:
    """Reinterprets the bytes of `x` as `dtype` (the last axis rescales with the item size)."""
    x = convert_to_tensor(x)
    dt = x.dtype if dtype is None else standardize_dtype(dtype)
    try:
        out = x.data.view(dt)
    except ValueError as e:
        raise ValueError(f"view: {e} Received: x.shape={x.shape}, dtype={dtype!r}") from None
    return Tensor(out.copy())  # never an alias of the input's memory


def unravel_index(indices: Any, shape: Sequence[int]) -> tuple[Tensor, ...]:
    """Converts flat indices into a tuple of coordinate tensors for `shape` (dtype of `indices`)."""
    if isinstance(indices, (list, tuple)) and np.asarray(indices).dtype.kind in "iu":
        indices = convert_to_tensor(indices, dtype="int32")  # Python ints: int32, as Keras
    idx = convert_to_tensor(indices)
    if idx.data.dtype.kind not in "iu":
        raise TypeError(f"`indices` must be integers. Received: indices.dtype={idx.dtype}")
    shape = tuple(int(s) for s in shape)
    try:
        coords = current_module().unravel_index(idx.data, shape)
    except ValueError as e:
        raise ValueError(f"unravel_index: {e}. Received: shape={shape}") from None
    return tuple(Tensor(c.astype(idx.data.dtype)) for c in coords)
