"""Differentiable primitives: each forward sits next to its vector-Jacobian product.

Every function here takes Tensors, arrays or scalars and returns a Tensor. The
private `_name(*arrays)` functions compute `(output, vjp)` on raw arrays;
`vjp(g, needs)` returns one gradient per input, computing only those in `needs`.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module, floatx, standardize_dtype
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor
from distkeras.backend.reduction_primitives import (  # noqa: F401 - re-exported
    _axis_arg,
    _expand_reduced,
    _norm_axis,
    cumsum,
    int_sum_dtype,
    max,
    mean,
    min,
    sum,
)
from distkeras.backend.shape_primitives import (  # noqa: F401 - re-exported
    broadcast_to,
    concatenate,
    getitem,
    pad,
    repeat,
    reshape,
    stack,
    sum_to,
    take,
    take_along_axis,
    tile,
    transpose,
)


def _xp():
    return current_module()


def _shape(x: Any) -> tuple:
    return getattr(x, "shape", ())


# ---------------------------------------------------------------- elementwise
def _promote(a: Any, b: Any) -> tuple:
    """Keras's rules where NumPy's promotion widens: the result of a binary op.

    A float array with an integer or bool one keeps the float's dtype (NumPy
    widened float32 with int32 to float64, and everything after it); an integer
    or bool array with a Python float gives `floatx()` (NumPy: float64), and a
    bool array with a Python int gives int32 (NumPy: int64).
    """
    ka = getattr(getattr(a, "dtype", None), "kind", None)
    kb = getattr(getattr(b, "dtype", None), "kind", None)
    if ka == "f" and kb in ("i", "u", "b"):
        return a, b.astype(a.dtype)
    if kb == "f" and ka in ("i", "u", "b"):
        return a.astype(b.dtype), b
    if kb is None and ka in ("i", "u", "b"):
        return _weak(a, b), b
    if ka is None and kb in ("i", "u", "b"):
        return a, _weak(b, a)
    return a, b


def _weak(arr: Any, scalar: Any) -> Any:
    """`arr` (integer or bool) cast for an operation with the Python number `scalar`."""
    if type(scalar) is float:
        return arr.astype(floatx())
    if type(scalar) is int and arr.dtype.kind == "b":
        return arr.astype("int32")
    return arr


def _float_result(a: Any, b: Any) -> tuple:
    """The operands of a true division: integer and bool arrays become `floatx()`
    when neither operand is float, as in Keras (NumPy divides them in float64)."""
    a, b = _promote(a, b)
    if _kind(a) != "f" and _kind(b) != "f":
        a = a.astype(floatx()) if hasattr(a, "dtype") else a
        b = b.astype(floatx()) if hasattr(b, "dtype") else b
    return a, b


def _kind(x: Any) -> str:
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    return kind if kind is not None else ("f" if isinstance(x, float) else "i")


def _add(a, b):
    a, b = _promote(a, b)

    def vjp(g, needs):
        return (
            sum_to(g, _shape(a)) if needs[0] else None,
            sum_to(g, _shape(b)) if needs[1] else None,
        )

    return a + b, vjp


def _subtract(a, b):
    a, b = _promote(a, b)

    def vjp(g, needs):
        return (
            sum_to(g, _shape(a)) if needs[0] else None,
            -sum_to(g, _shape(b)) if needs[1] else None,
        )

    return a - b, vjp


def _multiply(a, b):
    a, b = _promote(a, b)

    def vjp(g, needs):
        return (
            sum_to(g * b, _shape(a)) if needs[0] else None,
            sum_to(g * a, _shape(b)) if needs[1] else None,
        )

    return a * b, vjp


def _divide(a, b):
    a, b = _float_result(a, b)
    out = a / b

    def vjp(g, needs):
        gb = None
        if needs[1]:
            gb = sum_to(-g * out / b, _shape(b))
        return (sum_to(g / b, _shape(a)) if needs[0] else None, gb)

    return out, vjp


def _power(a, b):
    a, b = _promote(a, b)
    out = a**b

    def vjp(g, needs):
        ga = gb = None
        if needs[0]:
            ga = sum_to(g * b * a ** (b - 1), _shape(a))
        if needs[1]:
            xp = _xp()
            safe = xp.where(a > 0, a, 1)
            gb = sum_to(g * out * xp.log(safe), _shape(b))
        return ga, gb

    return out, vjp


def _maximum(a, b):
    a, b = _promote(a, b)
    xp = _xp()
    out = xp.maximum(a, b)

    def vjp(g, needs):
        mask = a >= b
        return (
            sum_to(g * mask, _shape(a)) if needs[0] else None,
            sum_to(g * ~mask, _shape(b)) if needs[1] else None,
        )

    return out, vjp


def _minimum(a, b):
    a, b = _promote(a, b)
    xp = _xp()
    out = xp.minimum(a, b)

    def vjp(g, needs):
        mask = a <= b
        return (
            sum_to(g * mask, _shape(a)) if needs[0] else None,
            sum_to(g * ~mask, _shape(b)) if needs[1] else None,
        )

    return out, vjp


def _where(cond, a, b):
    a, b = _promote(a, b)
    xp = _xp()
    out = xp.where(cond, a, b)

    def vjp(g, needs):
        zero = xp.zeros((), dtype=g.dtype)
        return (
            None,
            sum_to(xp.where(cond, g, zero), _shape(a)) if needs[1] else None,
            sum_to(xp.where(cond, zero, g), _shape(b)) if needs[2] else None,
        )

    return out, vjp


def _unary(fwd, dfn, floats: bool = True):
    """Builds an elementwise primitive from `fwd(x)` and `dfn(x, out, g)`.

    With `floats`, integer and bool inputs are computed in `floatx()`, as Keras
    does (NumPy gives float64, or float16 for bool and 8-bit inputs, and the
    activations written with `where`/`maximum` kept the integers).
    """

    def prim(x):
        if floats and x.dtype.kind in "biu":
            x = x.astype(floatx())
        out = fwd(x)

        def vjp(g, needs):
            return (dfn(x, out, g),)

        return out, vjp

    return prim


def _negative_f(x):
    return -x


def _neg_d(x, out, g):
    return -g


def _exp_d(x, out, g):
    return g * out


def _log_d(x, out, g):
    return g / x


def _sqrt_d(x, out, g):
    return g / (2 * out)


def _square_d(x, out, g):
    return g * (2 * x)


def _abs_d(x, out, g):
    return g * _xp().sign(x)


def _tanh_d(x, out, g):
    return g * (1 - out * out)


def _sigmoid_f(x):
    xp = _xp()
    # Numerically stable logistic: exp(-|x|) never overflows.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _sigmoid_d(x, out, g):
    return g * out * (1 - out)


def _relu_f(x):
    return _xp().maximum(x, 0)


def _relu_d(x, out, g):
    return g * (out > 0)


def _softplus_f(x):
    xp = _xp()
    return xp.logaddexp(x, 0).astype(x.dtype, copy=False)


def _softplus_d(x, out, g):
    return g * _sigmoid_f(x)


def _log1p_d(x, out, g):
    return g / (1 + x)


def _expm1_d(x, out, g):
    return g * (out + 1)


def _sin_d(x, out, g):
    return g * _xp().cos(x)


def _cos_d(x, out, g):
    return -g * _xp().sin(x)


def _xpf(name):
    return lambda x: getattr(_xp(), name)(x)


_negative = _unary(_negative_f, _neg_d, floats=False)
_exp = _unary(_xpf("exp"), _exp_d)
_log = _unary(_xpf("log"), _log_d)
_sqrt = _unary(_xpf("sqrt"), _sqrt_d)
_square = _unary(_xpf("square"), _square_d, floats=False)
_absolute = _unary(_xpf("abs"), _abs_d, floats=False)
_tanh = _unary(_xpf("tanh"), _tanh_d)
_sigmoid = _unary(_sigmoid_f, _sigmoid_d)
_relu = _unary(_relu_f, _relu_d, floats=False)
_softplus = _unary(_softplus_f, _softplus_d)
_log1p = _unary(_xpf("log1p"), _log1p_d)
_expm1 = _unary(_xpf("expm1"), _expm1_d)
_sin = _unary(_xpf("sin"), _sin_d)
_cos = _unary(_xpf("cos"), _cos_d)


def _clip(x, lo, hi):
    out = _xp().clip(x, lo, hi)

    def vjp(g, needs):
        return (g * ((x >= lo) & (x <= hi)),)

    return out, vjp


def float_tensor(x: Any) -> Tensor:
    """`x` as a Tensor; integer and bool inputs cast to `floatx()` (as Keras's float ops)."""
    x = x if isinstance(x, Tensor) else convert_to_tensor(x)
    if x.data.dtype.kind in "biu":
        return cast(x, floatx())
    return x


def _cast(x, dtype):
    out = x.astype(dtype)
    src = x.dtype

    def vjp(g, needs):
        return (g.astype(src),)

    return out, vjp


# ---------------------------------------------------------------- linear algebra
def _matmul(a, b):
    a, b = _promote(a, b)
    out = a @ b

    def vjp(g, needs):
        ga = gb = None
        if needs[0]:
            if b.ndim == 1:
                ga = sum_to(g[..., None] * b, a.shape)
            else:
                ga = sum_to(g @ b.swapaxes(-1, -2), a.shape) if a.ndim > 1 else g @ b.T
        if needs[1]:
            if a.ndim == 1:
                gb = a[:, None] * g[..., None, :] if b.ndim > 1 else g * a
                gb = sum_to(gb, b.shape)
            elif b.ndim == 1:
                gb = sum_to(g[..., None] * a, a.shape).reshape(-1, b.shape[0]).sum(0)
            elif a.ndim == 2 and b.ndim == 2:
                gb = a.T @ g
            else:
                gb = sum_to(a.swapaxes(-1, -2) @ g, b.shape)
        return ga, gb

    return out, vjp


def column_sums(x2: Any, out: Any = None) -> Any:
    """Sum over the rows of a 2-D array, as a GEMV with a ones vector.

    Several times faster than `sum(axis=0)`, which walks short rows one by one.
    """
    xp = _xp()
    return xp.matmul(xp.ones((x2.shape[0],), dtype=x2.dtype), x2, out=out)


def _dense(x, w, b, relu=False):
    """x @ w (+ b) (then relu), fused: one node, bias and relu applied in place."""
    xp = _xp()
    out = x @ w
    if b is not None:
        out += b
    if relu:
        xp.maximum(out, 0, out=out)

    def vjp(g, needs, outs=(None, None, None)):
        if relu:
            g = g * (out > 0)
        units = w.shape[1]
        g2 = g.reshape(-1, units)
        gx = gw = gb = None
        if needs[0]:
            gx = g @ w.T
        if needs[1]:
            x2 = x.reshape(-1, w.shape[0])
            gw = x2.T @ g2 if outs[1] is None else xp.matmul(x2.T, g2, out=outs[1])
        if needs[2]:  # column sums as a GEMV: much faster than sum(axis=0) on short rows
            gb = column_sums(g2, out=outs[2])
        return gx, gw, gb

    vjp.accepts_out = True
    return out, vjp


# ---------------------------------------------------------------- nn
def _softmax(x, axis=-1):
    xp = _xp()
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)

    def vjp(g, needs):
        gy = g * out
        return (gy - out * gy.sum(axis=axis, keepdims=True),)

    return out, vjp


def _log_softmax(x, axis=-1):
    xp = _xp()
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def vjp(g, needs):
        return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)

    return out, vjp


def _logsumexp(x, axis=None, keepdims=False):
    xp = _xp()
    m = x.max(axis=axis, keepdims=True)
    s = xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True)) + m
    out = (
        s
        if keepdims
        else s.reshape([d for i, d in enumerate(s.shape) if i not in _norm_axis(axis, x.ndim)])
    )

    def vjp(g, needs):
        axes = _norm_axis(axis, x.ndim)
        gg = _expand_reduced(g, x.shape, axes, keepdims)
        return (gg * xp.exp(x - s),)

    return out, vjp


# Every positional input of these is a tensor: `apply` converts Python lists given
# for any of them (for other primitives only the first input, `x`, is data).
for _prim in (_add, _subtract, _multiply, _divide, _power, _maximum, _minimum, _matmul, _where):
    _prim.tensor_inputs = True


# ---------------------------------------------------------------- public wrappers
def add(x, y) -> Tensor:
    """Elementwise x + y."""
    return apply(_add, x, y)


def subtract(x, y) -> Tensor:
    """Elementwise x - y."""
    return apply(_subtract, x, y)


def multiply(x, y) -> Tensor:
    """Elementwise x * y."""
    return apply(_multiply, x, y)


def divide(x, y) -> Tensor:
    """Elementwise x / y."""
    return apply(_divide, x, y)


def power(x, y) -> Tensor:
    """Elementwise x ** y."""
    return apply(_power, x, y)


def maximum(x, y) -> Tensor:
    """Elementwise maximum (ties send the gradient to x)."""
    return apply(_maximum, x, y)


def minimum(x, y) -> Tensor:
    """Elementwise minimum (ties send the gradient to x)."""
    return apply(_minimum, x, y)


def where(condition, x1=None, x2=None) -> Tensor | tuple:
    """Picks `x1` where `condition` holds, else `x2`.

    With neither given, as in Keras: the indices where `condition` is true, one
    int tensor per axis (like `numpy.nonzero`).
    """
    cond = condition.data if isinstance(condition, Tensor) else condition
    if x1 is None and x2 is None:
        return tuple(Tensor(i) for i in _xp().nonzero(_xp().asarray(cond)))
    if x1 is None or x2 is None:
        raise ValueError(
            "`x1` and `x2` must be given together (or neither, for the indices). "
            f"Received: x1={x1!r}, x2={x2!r}"
        )
    return apply(_where, cond, x1, x2)


def negative(x) -> Tensor:
    """Elementwise -x."""
    return apply(_negative, x)


def exp(x) -> Tensor:
    """Elementwise e**x."""
    return apply(_exp, x)


def log(x) -> Tensor:
    """Elementwise natural logarithm."""
    return apply(_log, x)


def sqrt(x) -> Tensor:
    """Elementwise square root."""
    return apply(_sqrt, x)


def square(x) -> Tensor:
    """Elementwise x**2."""
    return apply(_square, x)


def absolute(x) -> Tensor:
    """Elementwise |x|."""
    return apply(_absolute, x)


def tanh(x) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return apply(_tanh, x)


def sigmoid(x) -> Tensor:
    """Elementwise logistic function 1 / (1 + exp(-x))."""
    return apply(_sigmoid, x)


def relu(x) -> Tensor:
    """Elementwise max(x, 0)."""
    return apply(_relu, x)


def softplus(x) -> Tensor:
    """Elementwise log(1 + exp(x))."""
    return apply(_softplus, x)


def log1p(x) -> Tensor:
    """Elementwise log(1 + x)."""
    return apply(_log1p, x)


def expm1(x) -> Tensor:
    """Elementwise exp(x) - 1."""
    return apply(_expm1, x)


def sin(x) -> Tensor:
    """Elementwise sine."""
    return apply(_sin, x)


def cos(x) -> Tensor:
    """Elementwise cosine."""
    return apply(_cos, x)


def clip(x, x_min, x_max) -> Tensor:
    """Clips values to [x_min, x_max]; the gradient passes inside the range."""
    return apply(_clip, x, x_min, x_max)


def cast(x, dtype) -> Tensor:
    """Casts to `dtype`; the gradient is cast back."""
    return apply(_cast, x, standardize_dtype(dtype))


def matmul(x, y) -> Tensor:
    """Matrix product with NumPy's broadcasting rules."""
    return apply(_matmul, x, y)


def dense(x, kernel, bias=None, relu: bool = False) -> Tensor:
    """`x @ kernel + bias`, optionally followed by relu, as one fused node.

    Same values as composing matmul, add and relu; the backward writes weight
    gradients straight into a fused gradient buffer when the trainer has one.
    """
    return apply(_dense, x, kernel, bias, relu=relu)


def logsumexp(x, axis=None, keepdims=False) -> Tensor:
    """log(sum(exp(x))) computed stably."""
    return apply(_logsumexp, x, axis=_axis_arg(axis), keepdims=keepdims)


def softmax(x, axis=-1) -> Tensor:
    """Softmax along `axis`, computed stably."""
    return apply(_softmax, x, axis=axis)


def log_softmax(x, axis=-1) -> Tensor:
    """log(softmax(x)) along `axis`, computed stably."""
    return apply(_log_softmax, x, axis=axis)


def float_dtype() -> str:
    """The default float type (kept here so ops need not import the backend)."""
    return floatx()
