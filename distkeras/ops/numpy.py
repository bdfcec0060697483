"""Array operations in the spirit of `keras.ops` (NumPy-like names).

Differentiable operations come from the backend's primitives or are
compositions of them; comparison, rounding and index operations carry no
gradient.
"""

from __future__ import annotations

import builtins as _builtins
from typing import Any

from distkeras.backend import current_module, floatx, standardize_dtype
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, convert_to_tensor, is_tensor
from distkeras.backend.primitives import (  # noqa: F401
    absolute,
    add,
    broadcast_to,
    cast,
    clip,
    concatenate,
    cos,
    divide,
    exp,
    expm1,
    log,
    log1p,
    logsumexp,
    matmul,
    maximum,
    minimum,
    multiply,
    negative,
    pad,
    power,
    repeat,
    reshape,
    sin,
    sqrt,
    square,
    stack,
    subtract,
    take,
    take_along_axis,
    tanh,
    tile,
    transpose,
    where,
)

abs = absolute  # noqa: A001
pow = power  # noqa: A001
true_divide = divide


def _arr(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple, float, int)):  # Python data: converted as Keras does
        return convert_to_tensor(x).data
    return current_module().asarray(x)


def _const(a: Any) -> Tensor:
    return Tensor(a)


def expand_dims(x, axis: int) -> Tensor:
    """Inserts a length-1 axis at `axis`."""
    x = convert_to_tensor(x)
    shape = list(x.shape)
    ax = axis if axis >= 0 else len(shape) + axis + 1
    shape.insert(ax, 1)
    return P.reshape(x, tuple(shape))


def squeeze(x, axis=None) -> Tensor:
    """Removes length-1 axes (only `axis` when given)."""
    x = convert_to_tensor(x)
    if axis is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        axes = {a % x.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(
                    f"Cannot squeeze axis {a} of size {x.shape[a]}. Received: axis={axis}"
                )
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    return P.reshape(x, shape)


def split(x, indices_or_sections, axis: int = 0) -> list[Tensor]:
    """Splits into equal sections or at the given indices, like `numpy.split`."""
    x = convert_to_tensor(x)
    n = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError(
                f"split: axis {axis} of size {n} is not divisible into "
                f"{indices_or_sections} equal sections. "
                f"Received: indices_or_sections={indices_or_sections}"
            )
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0, *list(indices_or_sections), n]
    out = []
    ax = axis % x.ndim
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        key = (slice(None),) * ax + (slice(lo, hi),)
        out.append(P.getitem(x, key))
    return out


def flatten(x) -> Tensor:
    """Flattens to one axis."""
    return P.reshape(x, (-1,))


def ravel(x) -> Tensor:
    """Flattens to one axis."""
    return P.reshape(x, (-1,))


def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    """Swaps two axes."""
    x = convert_to_tensor(x)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return P.transpose(x, axes)


def moveaxis(x, source: int, destination: int) -> Tensor:
    """Moves one axis to a new position."""
    x = convert_to_tensor(x)
    axes = list(range(x.ndim))
    a = axes.pop(source % x.ndim)
    axes.insert(destination % x.ndim if destination >= 0 else x.ndim + destination, a)
    return P.transpose(x, axes)


def dot(x, y) -> Tensor:
    """NumPy's dot: matmul for 1-D/2-D operands, scalar product otherwise."""
    x, y = convert_to_tensor(x), convert_to_tensor(y)
    if x.ndim == 0 or y.ndim == 0:
        return P.multiply(x, y)
    if y.ndim <= 2:
        return P.matmul(x, y)
    # numpy.dot semantics: sum over last axis of x and second-to-last of y.
    yt = moveaxis(y, -2, 0)
    yshape = yt.shape
    res = P.matmul(x, P.reshape(yt, (yshape[0], -1)))
    return P.reshape(res, x.shape[:-1] + yshape[1:])


def tensordot(x, y, axes=2) -> Tensor:
    """Sum of products over the given axes (see `numpy.tensordot`)."""
    x, y = convert_to_tensor(x), convert_to_tensor(y)
    if isinstance(axes, int):
        ax_x = list(range(x.ndim - axes, x.ndim))
        ax_y = list(range(axes))
    else:
        ax_x = [a % x.ndim for a in _as_list(axes[0])]
        ax_y = [a % y.ndim for a in _as_list(axes[1])]
    free_x = [a for a in range(x.ndim) if a not in ax_x]
    free_y = [a for a in range(y.ndim) if a not in ax_y]
    k = 1
    for a in ax_x:
        k *= x.shape[a]
    xt = P.reshape(P.transpose(x, free_x + ax_x), (-1, k))
    yt = P.reshape(P.transpose(y, ax_y + free_y), (k, -1))
    out_shape = tuple(x.shape[a] for a in free_x) + tuple(y.shape[a] for a in free_y)
    return P.reshape(P.matmul(xt, yt), out_shape)


def _stacked(x: Any) -> Any:
    """A list or tuple as one tensor (stacked, as Keras's `convert_to_tensor` does)."""
    return convert_to_tensor(x) if isinstance(x, (list, tuple)) else x


def _float_operand(x: Any) -> Any:
    """`x` (stacked), cast to float32 when integer or bool: Keras's mean/var/std dtype rule."""
    x = _stacked(x)
    data = x.data if isinstance(x, Tensor) else x
    if getattr(getattr(data, "dtype", None), "kind", "f") in "biu":
        return P.cast(x, "float32")
    return x


# The public reductions accept a (nested) list or tuple of arrays, tensors or
# numbers, as in Keras: it is stacked into one tensor first, so
# `sum([a, b], axis=0)` is `a + b` and gradients reach tensor elements.
def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Sum over `axis` (all axes when None)."""
    return P.sum(_stacked(x), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False) -> Tensor:
    """Mean over `axis` (all axes when None); integer and bool inputs give float32."""
    return P.mean(_float_operand(x), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Maximum over `axis`; tied maxima share the gradient."""
    return P.max(_stacked(x), axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Minimum over `axis`; tied minima share the gradient."""
    return P.min(_stacked(x), axis=axis, keepdims=keepdims)


amax = max
amin = min


def cumsum(x, axis=None) -> Tensor:
    """Cumulative sum along `axis` (over the flattened array when None)."""
    return P.cumsum(_stacked(x), axis=axis)


def _as_list(a):
    return list(a) if isinstance(a, (list, tuple)) else [a]


def reciprocal(x) -> Tensor:
    """Elementwise 1 / x."""
    return P.divide(1.0, x)


def log2(x) -> Tensor:
    """Elementwise base-2 logarithm."""
    return P.divide(P.log(x), 0.6931471805599453)


def log10(x) -> Tensor:
    """Elementwise base-10 logarithm."""
    return P.divide(P.log(x), 2.302585092994046)


def var(x, axis=None, keepdims=False) -> Tensor:
    """Variance over `axis`; integer and bool inputs give float32."""
    x = _float_operand(x)
    m = P.mean(x, axis=axis, keepdims=True)
    return P.mean(P.square(P.subtract(x, m)), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False) -> Tensor:
    """Standard deviation over `axis`; integer and bool inputs give float32."""
    return P.sqrt(var(x, axis=axis, keepdims=keepdims))


def prod(x, axis=None, keepdims=False) -> Tensor:
    """Product over `axis` (through exp-sum-log for positive inputs; exact forward)."""
    x = convert_to_tensor(_stacked(x))
    xp = current_module()
    data = x.data
    if not x.requires_grad:
        return _const(xp.prod(data, axis=axis, keepdims=keepdims, dtype=P.int_sum_dtype(data)))
    sign = xp.prod(xp.sign(data), axis=axis, keepdims=keepdims)
    mag = P.exp(P.sum(P.log(P.absolute(x)), axis=axis, keepdims=keepdims))
    return P.multiply(mag, sign)


# --------------------------------------------------------------- no gradient
def _nograd(fn):
    def wrapped(*args, **kwargs):
        args = [_arr(a) if isinstance(a, (Tensor, list)) else a for a in args]
        return _const(fn(*args, **kwargs))

    wrapped.__name__ = fn.__name__ if hasattr(fn, "__name__") else "op"
    return wrapped


def argmax(x, axis=None, keepdims=False) -> Tensor:
    """Index of the maximum along `axis`, int32 as in Keras (no gradient)."""
    out = current_module().argmax(_arr(x), axis=axis, keepdims=keepdims)
    return _const(out.astype("int32"))


def argmin(x, axis=None, keepdims=False) -> Tensor:
    """Index of the minimum along `axis`, int32 as in Keras (no gradient)."""
    out = current_module().argmin(_arr(x), axis=axis, keepdims=keepdims)
    return _const(out.astype("int32"))


def argsort(x, axis=-1) -> Tensor:
    """Indices that sort `x` along `axis`, int32 as in Keras (no gradient)."""
    return _const(current_module().argsort(_arr(x), axis=axis).astype("int32"))


def _cmp(name):
    def op(x, y) -> Tensor:
        return _const(getattr(current_module(), name)(_arr(x), _arr(y)))

    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (boolean result, no gradient)."
    return op


equal = _cmp("equal")
not_equal = _cmp("not_equal")
greater = _cmp("greater")
greater_equal = _cmp("greater_equal")
less = _cmp("less")
less_equal = _cmp("less_equal")
logical_and = _cmp("logical_and")
logical_or = _cmp("logical_or")
logical_xor = _cmp("logical_xor")


def floor_divide(x, y) -> Tensor:
    """Elementwise `floor(x / y)`, like `numpy.floor_divide` (no gradient)."""
    x, y = convert_to_tensor(x), convert_to_tensor(y)
    return _const(current_module().floor_divide(*P._promote(x.data, y.data)))


def mod(x, y) -> Tensor:
    """Elementwise remainder with the sign of `y`, like `numpy.mod`.

    Gradients: 1 for `x` and `-floor(x / y)` for `y` (the quotient is piecewise constant).
    """
    x, y = convert_to_tensor(x), convert_to_tensor(y)
    if not (x.requires_grad or y.requires_grad):
        return _const(current_module().mod(*P._promote(x.data, y.data)))
    return P.subtract(x, P.multiply(floor_divide(x, y), y))


def logical_not(x) -> Tensor:
    """Elementwise logical not."""
    return _const(current_module().logical_not(_arr(x)))


def sign(x) -> Tensor:
    """Elementwise sign (no gradient)."""
    return _const(current_module().sign(_arr(x)))


def round(x, decimals: int = 0) -> Tensor:  # noqa: A001
    """Elementwise rounding half to even (no gradient)."""
    return _const(current_module().round(_arr(x), decimals))


def _float_data(x: Any) -> Any:
    """`x`'s array, integers and bools as `floatx()` (Keras's floor and ceil of ints)."""
    a = _arr(x)
    return a.astype(floatx()) if a.dtype.kind in "biu" else a


def floor(x) -> Tensor:
    """Elementwise floor; integer input gives `floatx()`, as in Keras (no gradient)."""
    return _const(current_module().floor(_float_data(x)))


def ceil(x) -> Tensor:
    """Elementwise ceiling; integer input gives `floatx()`, as in Keras (no gradient)."""
    return _const(current_module().ceil(_float_data(x)))


def isnan(x) -> Tensor:
    """Elementwise NaN test."""
    return _const(current_module().isnan(_arr(x)))


def isfinite(x) -> Tensor:
    """Elementwise finiteness test."""
    return _const(current_module().isfinite(_arr(x)))


def all(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Logical AND over `axis`."""
    return _const(current_module().all(_arr(x), axis=axis, keepdims=keepdims))


def any(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    """Logical OR over `axis`."""
    return _const(current_module().any(_arr(x), axis=axis, keepdims=keepdims))


def count_nonzero(x, axis=None) -> Tensor:
    """Number of non-zero entries over `axis`."""
    out = current_module().count_nonzero(_arr(x), axis=axis)
    return _const(current_module().asarray(out, dtype="int32"))


# --------------------------------------------------------------- creation
def zeros(shape, dtype=None) -> Tensor:
    """A tensor of zeros."""
    return _const(current_module().zeros(shape, dtype=standardize_dtype(dtype)))


def ones(shape, dtype=None) -> Tensor:
    """A tensor of ones."""
    return _const(current_module().ones(shape, dtype=standardize_dtype(dtype)))


def full(shape, fill_value, dtype=None) -> Tensor:
    """A tensor filled with `fill_value`."""
    return _const(current_module().full(shape, fill_value, dtype=standardize_dtype(dtype)))


def zeros_like(x, dtype=None) -> Tensor:
    """Zeros shaped like `x`."""
    return _const(current_module().zeros_like(_arr(x), dtype=dtype))


def ones_like(x, dtype=None) -> Tensor:
    """Ones shaped like `x`."""
    return _const(current_module().ones_like(_arr(x), dtype=dtype))


def full_like(x, fill_value, dtype=None) -> Tensor:
    """`fill_value` shaped like `x`."""
    return _const(current_module().full_like(_arr(x), fill_value, dtype=dtype))


def _arange_dtype(values: list) -> str:
    """Keras's default dtype of `arange`: floatx for Python floats, int32 for ints,
    the widest float or int among tensor arguments."""
    names = []
    for v in values:
        if isinstance(v, bool) or isinstance(v, int):
            names.append("int32")
        elif isinstance(v, float):
            names.append(floatx())
        else:
            names.append(standardize_dtype(_arr(v).dtype))
    floats = [n for n in names if "float" in n]
    if floats:
        return _builtins.max(floats, key=lambda n: current_module().dtype(n).itemsize)
    return current_module().result_type(*names).name


def _number(v: Any) -> Any:
    return _arr(v).item() if is_tensor(v) or hasattr(v, "shape") else v


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    """Evenly spaced values in [start, stop).

    Without `dtype`, Python ints give int32 and floats `floatx()`, as in Keras
    (NumPy's own defaults are int64 and float64).
    """
    given = [start, step] if stop is None else [start, stop, step]
    dtype = _arange_dtype(given) if dtype is None else standardize_dtype(dtype)
    if stop is None:
        start, stop = 0, start
    xp = current_module()
    return _const(xp.arange(_number(start), _number(stop), _number(step), dtype=dtype))


def eye(n: int, m: int | None = None, dtype=None) -> Tensor:
    """Identity matrix."""
    return _const(current_module().eye(n, m, dtype=standardize_dtype(dtype)))


def shape(x) -> tuple:
    """The static shape as a tuple of ints."""
    return tuple(getattr(x, "shape", ()))


def ndim(x) -> int:
    """Number of axes."""
    return len(shape(x))


def size(x) -> int:
    """Number of elements."""
    n = 1
    for s in shape(x):
        n *= s
    return n


def dtype_of(x) -> str:
    """The dtype name of `x`."""
    return standardize_dtype(getattr(x, "dtype", None) or floatx())
