"""Neural-network operations in the spirit of `keras.ops.nn`."""

from __future__ import annotations

from distkeras.backend import current_module, epsilon, standardize_dtype
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.backend.loss_primitives import sparse_crossentropy as _fused_sparse_xent
from distkeras.backend.primitives import (  # noqa: F401
    log_softmax,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from distkeras.ops.math import erf as _erf


def one_hot(x, num_classes: int, axis: int = -1, dtype=None) -> Tensor:
    """One-hot encodes integer labels (no gradient).

    Args:
        x: Integer class indices.
        num_classes: Number of classes; indices outside [0, num_classes) encode to zeros.
        axis: Where the class axis goes.
        dtype: Output dtype (the default float type when omitted).
    """
    xp = current_module()
    idx = x.data if isinstance(x, Tensor) else xp.asarray(x)
    idx = idx.astype("int64", copy=False)
    out = (idx[..., None] == xp.arange(num_classes)).astype(standardize_dtype(dtype))
    if axis != -1:
        out = xp.moveaxis(out, -1, axis)
    return Tensor(out)


def relu6(x) -> Tensor:
    """min(max(x, 0), 6)."""
    return P.clip(x, 0.0, 6.0)


def leaky_relu(x, negative_slope: float = 0.2) -> Tensor:
    """x where x >= 0, else negative_slope * x."""
    x = convert_to_tensor(x)
    return P.where(x.data >= 0, x, P.multiply(x, negative_slope))


def elu(x, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    x = convert_to_tensor(x)
    neg = P.multiply(P.expm1(P.minimum(x, 0.0)), alpha)
    return P.where(x.data > 0, x, neg)


def selu(x) -> Tensor:
    """Scaled ELU with the self-normalizing constants."""
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    return P.multiply(elu(x, alpha), scale)


def silu(x) -> Tensor:
    """x * sigmoid(x)."""
    return P.multiply(x, P.sigmoid(x))


swish = silu


def softsign(x) -> Tensor:
    """x / (1 + |x|)."""
    return P.divide(x, P.add(P.absolute(x), 1.0))


def gelu(x, approximate: bool = True) -> Tensor:
    """Gaussian error linear unit: the tanh approximation, or with `approximate=False`
    the exact `x * (1 + erf(x / sqrt(2))) / 2`."""
    x = convert_to_tensor(x)
    if not approximate:
        return P.multiply(P.multiply(x, 0.5), P.add(_erf(P.multiply(x, 0.7071067811865476)), 1.0))
    inner = P.multiply(P.add(x, P.multiply(P.power(x, 3.0), 0.044715)), 0.7978845608028654)
    return P.multiply(P.multiply(x, 0.5), P.add(P.tanh(inner), 1.0))


def hard_sigmoid(x) -> Tensor:
    """relu6(x + 3) / 6, Keras 3's hard sigmoid."""
    return P.divide(relu6(P.add(x, 3.0)), 6.0)


def log_sigmoid(x) -> Tensor:
    """log(sigmoid(x)) computed stably as -softplus(-x)."""
    return P.negative(P.softplus(P.negative(x)))


def binary_crossentropy(target, output, from_logits: bool = False) -> Tensor:
    """Elementwise binary crossentropy, as Keras computes it.

    With probabilities, the output is clipped to [eps, 1 - eps] first.
    """
    target = convert_to_tensor(target)
    output = convert_to_tensor(output)
    if from_logits:
        # max(x, 0) - x * z + log(1 + exp(-|x|))
        return P.add(
            P.subtract(P.relu(output), P.multiply(output, target)),
            P.log1p(P.exp(P.negative(P.absolute(output)))),
        )
    eps = epsilon()
    output = P.clip(output, eps, 1.0 - eps)
    return P.negative(
        P.add(
            P.multiply(target, P.log(output)),
            P.multiply(P.subtract(1.0, target), P.log(P.subtract(1.0, output))),
        )
    )


def categorical_crossentropy(target, output, from_logits: bool = False, axis: int = -1) -> Tensor:
    """Categorical crossentropy over `axis`, as Keras computes it.

    Probabilities are renormalized to sum to one and clipped to [eps, 1 - eps].
    """
    target = convert_to_tensor(target)
    output = convert_to_tensor(output)
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={target.shape}, output.shape={output.shape}"
        )
    if from_logits:
        return P.negative(P.sum(P.multiply(target, P.log_softmax(output, axis=axis)), axis=axis))
    output = P.divide(output, P.sum(output, axis=axis, keepdims=True))
    eps = epsilon()
    output = P.clip(output, eps, 1.0 - eps)
    return P.negative(P.sum(P.multiply(target, P.log(output)), axis=axis))


def sparse_categorical_crossentropy(
    target, output, from_logits: bool = False, axis: int = -1
) -> Tensor:
    """Crossentropy with integer targets, as Keras computes it.

    Raises:
        ValueError: when a label lies outside [0, num_classes).
    """
    output = convert_to_tensor(output)
    xp = current_module()
    t = target.data if isinstance(target, Tensor) else xp.asarray(target)
    if t.ndim == output.ndim and t.shape[-1] == 1:
        t = t.reshape(t.shape[:-1])
    if t.shape != output.shape[:-1]:
        raise ValueError(
            "Arguments `target` and `output` must have compatible shapes: target should have "
            "the shape of output without its last axis. "
            f"Received: target.shape={tuple(t.shape)}, output.shape={output.shape}"
        )
    num_classes = output.shape[axis]
    t = t.astype("int64", copy=False)
    if t.size and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        bad = int(t.max()) if int(t.max()) >= num_classes else int(t.min())
        raise ValueError(
            f"Sparse labels must lie in [0, {num_classes}) for an output with {num_classes} "
            f"classes. Received: label={bad}"
        )
    if axis in (-1, output.ndim - 1):  # one fused node, the same bits as the composition below
        return _fused_sparse_xent(output, t, from_logits, epsilon())
    if from_logits:
        logp = P.log_softmax(output, axis=axis)
    else:
        out = P.divide(output, P.sum(output, axis=axis, keepdims=True))
        eps = epsilon()
        logp = P.log(P.clip(out, eps, 1.0 - eps))
    picked = P.take_along_axis(logp, t[..., None], axis=-1)
    return P.negative(P.reshape(picked, tuple(t.shape)))
