"""Activation functions, as in `keras.activations`.

Every function takes a Tensor (or array) and returns a Tensor built from
`distkeras.ops`, so gradients flow through it. `get` resolves the identifiers
layers accept: None (linear), a name such as 'relu', a callable, or a
serialized dict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from distkeras import ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    get_from_identifier,
    serialize_keras_object,
)


def _t(x: Any) -> Tensor:
    return convert_to_tensor(x)


# ------------------------------------------------------------------ erf
def _erf_series(x: Any) -> Any:
    """erf on raw arrays from the all-positive series (accurate to float64 precision).

    erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)).
    """
    xp = current_module()
    z = xp.clip(x.astype("float64"), -6.0, 6.0)  # erf(6) == 1 in float64
    z2 = z * z
    term = z.copy()
    total = z.copy()
    n = 0
    while True:
        n += 1
        term = term * (2.0 * z2 / (2 * n + 1))
        total = total + term
        if n > 8 and float(xp.max(xp.abs(term) - 1e-17 * xp.abs(total))) <= 0.0:
            break
    return (total * (2.0 / math.sqrt(math.pi)) * xp.exp(-z2)).astype(x.dtype)


def _erf_array(x: Any) -> Any:
    if type(x).__module__.startswith("cupy"):
        from cupyx.scipy.special import erf  # noqa: PLC0415

        return erf(x)
    try:
        from scipy.special import erf  # noqa: PLC0415
    except ImportError:  # pragma: no cover - depends on the install
        return _erf_series(x)
    return erf(x).astype(x.dtype, copy=False)


def _erf_prim(x: Any):
    out = _erf_array(x)

    def vjp(g, needs):
        xp = current_module()
        return (g * (2.0 / math.sqrt(math.pi)) * xp.exp(-x * x),)

    return out, vjp


def erf(x: Any) -> Tensor:
    """The error function, differentiable (helper for exact GELU)."""
    return apply(_erf_prim, x)


# ------------------------------------------------------------------ activations
def linear(x: Any) -> Any:
    """Identity activation: returns `x` unchanged."""
    return x


def relu(
    x: Any, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> Tensor:
    """Rectified linear unit with Keras's optional slope, cap and threshold.

    Args:
        x: Input tensor.
        negative_slope: Slope below the threshold.
        max_value: Upper saturation value (None for no cap).
        threshold: Values below it are damped (set to 0 when the slope is 0).
    """
    x = _t(x)
    negative_part: Any = None
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return ops.leaky_relu(x, negative_slope=negative_slope)
        negative_part = ops.relu(ops.subtract(threshold, x))
    clip_max = max_value is not None
    if threshold != 0:
        out = ops.where(x.data > threshold, x, 0.0)
    elif max_value == 6:
        out = ops.relu6(x)
        clip_max = False
    else:
        out = ops.relu(x)
    if clip_max:
        out = ops.clip(out, 0.0, max_value)
    if negative_part is not None:
        out = ops.subtract(out, ops.multiply(negative_part, negative_slope))
    return out


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Tensor:
    """x for x >= 0, negative_slope * x otherwise."""
    return ops.leaky_relu(x, negative_slope=negative_slope)


def relu6(x: Any) -> Tensor:
    """min(max(x, 0), 6)."""
    return ops.relu6(x)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`."""
    return ops.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed stably."""
    return ops.log_softmax(x, axis=axis)


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return ops.elu(x, alpha=alpha)


def selu(x: Any) -> Tensor:
    """Scaled ELU: scale * elu(x, alpha) with the self-normalizing constants."""
    return ops.selu(x)


def celu(x: Any, alpha: float = 1.0) -> Tensor:
    """max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)."""
    x = _t(x)
    neg = ops.multiply(ops.expm1(ops.divide(ops.minimum(x, 0.0), alpha)), alpha)
    return ops.add(ops.relu(x), neg)


def softplus(x: Any) -> Tensor:
    """log(exp(x) + 1)."""
    return ops.softplus(x)


def softsign(x: Any) -> Tensor:
    """x / (|x| + 1)."""
    return ops.softsign(x)


def squareplus(x: Any, b: float = 4) -> Tensor:
    """(x + sqrt(x^2 + b)) / 2."""
    x = _t(x)
    return ops.multiply(ops.add(x, ops.sqrt(ops.add(ops.square(x), float(b)))), 0.5)


def sparse_plus(x: Any) -> Tensor:
    """0 for x <= -1, (x + 1)^2 / 4 for -1 < x < 1, x for x >= 1."""
    x = _t(x)
    mid = ops.multiply(ops.square(ops.add(x, 1.0)), 0.25)
    return ops.where(x.data <= -1, 0.0, ops.where(x.data < 1, mid, x))


def silu(x: Any) -> Tensor:
    """x * sigmoid(x) (also available as `swish`)."""
    return ops.silu(x)


swish = silu


def gelu(x: Any, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit.

    Args:
        x: Input tensor.
        approximate: Use the tanh approximation instead of the exact
            x * (1 + erf(x / sqrt(2))) / 2.
    """
    if approximate:
        return ops.gelu(x, approximate=True)
    x = _t(x)
    cdf = ops.multiply(ops.add(erf(ops.multiply(x, 1.0 / math.sqrt(2.0))), 1.0), 0.5)
    return ops.multiply(x, cdf)


def glu(x: Any, axis: int = -1) -> Tensor:
    """Gated linear unit: a * sigmoid(b) where x = concat(a, b) along `axis`."""
    x = _t(x)
    if x.shape[axis] % 2 != 0:
        raise ValueError(
            "glu: the size of `axis` must be divisible by 2. "
            f"Received: x.shape={x.shape}, axis={axis}"
        )
    a, b = ops.split(x, 2, axis=axis)
    return ops.multiply(a, ops.sigmoid(b))


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent."""
    return ops.tanh(x)


def tanh_shrink(x: Any) -> Tensor:
    """x - tanh(x)."""
    x = _t(x)
    return ops.subtract(x, ops.tanh(x))


def hard_tanh(x: Any) -> Tensor:
    """clip(x, -1, 1)."""
    return ops.clip(x, -1.0, 1.0)


def hard_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x where |x| > threshold, else 0."""
    x = _t(x)
    xp = current_module()
    return ops.where(xp.abs(x.data) > threshold, x, 0.0)


def soft_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x - threshold above threshold, x + threshold below -threshold, else 0."""
    x = _t(x)
    return ops.where(
        x.data > threshold,
        ops.subtract(x, threshold),
        ops.where(x.data < -threshold, ops.add(x, threshold), 0.0),
    )


def threshold(x: Any, threshold: float, default_value: float) -> Tensor:
    """x where x > threshold, else default_value."""
    x = _t(x)
    return ops.where(x.data > threshold, x, float(default_value))


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + exp(-x))."""
    return ops.sigmoid(x)


def sparse_sigmoid(x: Any) -> Tensor:
    """0 for x <= -1, 1 for x >= 1, (x + 1) / 2 in between."""
    return ops.multiply(ops.add(ops.clip(x, -1.0, 1.0), 1.0), 0.5)


def exponential(x: Any) -> Tensor:
    """exp(x)."""
    return ops.exp(x)


def hard_sigmoid(x: Any) -> Tensor:
    """Piecewise-linear sigmoid: relu6(x + 3) / 6."""
    return ops.hard_sigmoid(x)


def hard_silu(x: Any) -> Tensor:
    """x * hard_sigmoid(x) (also available as `hard_swish`)."""
    x = _t(x)
    return ops.multiply(x, ops.hard_sigmoid(x))


hard_swish = hard_silu


def log_sigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)), computed stably."""
    return ops.log_sigmoid(x)


def mish(x: Any) -> Tensor:
    """x * tanh(softplus(x))."""
    x = _t(x)
    return ops.multiply(x, ops.tanh(ops.softplus(x)))


def sparsemax(x: Any, axis: int = -1) -> Tensor:
    """Euclidean projection of x onto the probability simplex along `axis`."""
    x = _t(x)
    xp = current_module()
    z = x.data
    zs = -xp.sort(-z, axis=axis)
    k = xp.arange(1, z.shape[axis] + 1, dtype=z.dtype)
    k = k.reshape([-1 if i == axis % z.ndim else 1 for i in range(z.ndim)])
    support = (1 + k * zs) > xp.cumsum(zs, axis=axis)
    k_z = xp.sum(support, axis=axis, keepdims=True).astype(z.dtype)
    tau_sum = xp.sum(xp.where(support, zs, 0), axis=axis, keepdims=True)
    tau_data = (tau_sum - 1) / k_z
    in_support = (z > tau_data).astype(z.dtype)  # fixed locally: no gradient needed
    tau = ops.divide(
        ops.subtract(ops.sum(ops.multiply(x, in_support), axis=axis, keepdims=True), 1.0), k_z
    )
    return ops.relu(ops.subtract(x, tau))


# ------------------------------------------------------------------ registry
ALL_OBJECTS = (
    celu,
    elu,
    exponential,
    gelu,
    glu,
    hard_shrink,
    hard_sigmoid,
    hard_silu,
    hard_tanh,
    leaky_relu,
    linear,
    log_sigmoid,
    log_softmax,
    mish,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    soft_shrink,
    softmax,
    softplus,
    softsign,
    sparse_plus,
    sparse_sigmoid,
    sparsemax,
    squareplus,
    tanh,
    tanh_shrink,
    threshold,
)
ALL_OBJECTS_DICT: dict[str, Callable] = {fn.__name__: fn for fn in ALL_OBJECTS}
ALL_OBJECTS_DICT["swish"] = silu
ALL_OBJECTS_DICT["hard_swish"] = hard_silu


def serialize(activation: Callable) -> str | dict:
    """Returns the name of a built-in activation, or a config dict for custom ones."""
    name = getattr(activation, "__name__", None)
    if name is not None and ALL_OBJECTS_DICT.get(name) is activation:
        return name
    try:
        return serialize_keras_object(activation)
    except TypeError as e:
        raise ValueError(
            "Cannot serialize activation: it is neither a built-in activation, a function, "
            f"nor an object with get_config(). Received: activation={activation!r}"
        ) from e


def deserialize(config: str | dict, custom_objects: dict | None = None) -> Callable:
    """Returns the activation named or described by `config`."""
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="activation function",
    )


def get(identifier: Any) -> Callable:
    """Resolves an activation identifier.

    Args:
        identifier: None (linear), a name such as 'relu', a serialized dict,
            or a callable.

    Returns:
        A callable activation.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return linear
    return get_from_identifier(
        identifier, ALL_OBJECTS_DICT, "activation function", instantiate=False
    )
