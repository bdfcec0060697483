"""The `keras.ops.nn` functions beyond `distkeras.ops.nn`: the further activations,
normalizations, attention, CTC and shape-rearranging functions.

Everything is composed from the differentiable primitives, so gradients follow
Keras's wherever Keras's ops are differentiable.
"""

from __future__ import annotations

import re as _re
from typing import Any

import numpy as _np

from distkeras.backend import ctc as _ctc
from distkeras.backend import current_module as _xp
from distkeras.backend import epsilon as _epsilon
from distkeras.backend import floatx as _floatx
from distkeras.backend import primitives as P
from distkeras.backend import standardize_dtype as _std_dtype
from distkeras.backend.autodiff import Tensor, apply
from distkeras.backend.autodiff import convert_to_tensor as _tensor
from distkeras.backend.primitives import float_tensor as _float
from distkeras.ops.nn import hard_sigmoid as _hard_sigmoid
from distkeras.ops.nn import one_hot as _one_hot

__all__ = [
    "batch_normalization",
    "celu",
    "ctc_decode",
    "ctc_loss",
    "dot_product_attention",
    "glu",
    "hard_shrink",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "layer_normalization",
    "moments",
    "multi_hot",
    "normalize",
    "polar",
    "psnr",
    "rearrange",
    "rms_normalization",
    "soft_shrink",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "tanh_shrink",
    "threshold",
]


# ---------------------------------------------------------------- helpers
def _compute_dtype(dtype: str) -> str:
    """Keras's `result_type(dtype, "float32")`: at least float32 for the statistics."""
    return "float64" if dtype == "float64" else "float32"


def _axes(axis: Any, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Normalizes an int or a sequence of ints to sorted non-negative axes."""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, _np.integer)) or not -ndim <= a < ndim:
            raise ValueError(
                f"Argument `{name}` is out of range for an input of rank {ndim}. "
                f"Received: {name}={axis}"
            )
        out.append(int(a) % ndim)
    return tuple(sorted(out))


def _zero_like(x: Tensor) -> Any:
    return _xp().zeros((), dtype=x.data.dtype)


# ---------------------------------------------------------------- activations
def celu(x: Any, alpha: float = 1.0) -> Tensor:
    """Continuously differentiable ELU: max(x, 0) + alpha * expm1(min(x, 0) / alpha)."""
    x = _float(x)
    neg = P.multiply(P.expm1(P.divide(P.minimum(x, 0.0), alpha)), alpha)
    return P.add(P.maximum(x, 0.0), neg)


def glu(x: Any, axis: int = -1) -> Tensor:
    """Gated linear unit: a * sigmoid(b) where a, b are the two halves of `axis`."""
    x = _float(x)
    if x.shape[axis] % 2 != 0:
        raise ValueError(
            f"axis size must be divisible by 2. Received: x.shape={x.shape} with axis={axis}"
        )
    half = x.shape[axis] // 2
    ax = axis % x.ndim
    first = tuple([slice(None)] * ax + [slice(0, half)])
    second = tuple([slice(None)] * ax + [slice(half, None)])
    return P.multiply(P.getitem(x, first), P.sigmoid(P.getitem(x, second)))


def hard_tanh(x: Any) -> Tensor:
    """Clips to [-1, 1]."""
    return P.clip(_float(x), -1.0, 1.0)


def hard_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x where |x| > threshold, else 0."""
    x = _float(x)
    return P.where(_xp().abs(x.data) > threshold, x, _zero_like(x))


def soft_shrink(x: Any, threshold: float = 0.5) -> Tensor:
    """x - threshold above threshold, x + threshold below -threshold, else 0."""
    x = _float(x)
    d = x.data
    shrunk = P.subtract(x, P.multiply(_xp().sign(d).astype(d.dtype), threshold))
    return P.where(_xp().abs(d) > threshold, shrunk, _zero_like(x))


def tanh_shrink(x: Any) -> Tensor:
    """x - tanh(x)."""
    x = _float(x)
    return P.subtract(x, P.tanh(x))


def hard_silu(x: Any) -> Tensor:
    """x * hard_sigmoid(x)."""
    x = _float(x)
    return P.multiply(x, _hard_sigmoid(x))


hard_swish = hard_silu


def sparse_plus(x: Any) -> Tensor:
    """0 for x <= -1, (x + 1)**2 / 4 for -1 < x < 1, x for x >= 1."""
    x = _float(x)
    d = x.data
    quad = P.multiply(P.square(P.add(x, 1.0)), 0.25)
    return P.where(d <= -1, _zero_like(x), P.where(d < 1, quad, x))


def sparse_sigmoid(x: Any) -> Tensor:
    """0 for x <= -1, (x + 1) / 2 for -1 < x < 1, 1 for x >= 1."""
    x = _float(x)
    return P.clip(P.multiply(P.add(x, 1.0), 0.5), 0.0, 1.0)


def squareplus(x: Any, b: float = 4) -> Tensor:
    """(x + sqrt(x**2 + b)) / 2."""
    x = _float(x)
    return P.multiply(P.add(x, P.sqrt(P.add(P.square(x), b))), 0.5)


def threshold(x: Any, threshold: float, default_value: float) -> Tensor:
    """x where x > threshold, else default_value."""
    x = _tensor(x)
    fill = _xp().asarray(default_value, dtype=x.data.dtype)
    return P.where(x.data > threshold, x, fill)


def sparsemax(x: Any, axis: int = -1) -> Tensor:
    """max(x - tau, 0) along `axis`, with Keras's threshold tau (see below)."""
    x = _float(x)
    xp = _xp()
    d = x.data
    order = xp.argsort(-d, axis=axis, kind="stable")
    z = xp.take_along_axis(d, order, axis=axis)
    cs = xp.cumsum(z, axis=axis)
    shape = [1] * d.ndim
    shape[axis] = -1
    r = xp.arange(1, d.shape[axis] + 1).reshape(shape)
    k = (z - (cs - 1) / r > 0).sum(axis=axis, keepdims=True)
    # Keras's tau is (sum of the first k cumulative sums of the sorted values - 1) / k,
    # i.e. (sum_j x_j * max(k - rank_j, 0) - 1) / k with rank_j the 0-based sorted
    # position of x_j: the weights are fixed, x carries the gradient.
    rank = xp.argsort(order, axis=axis)
    weights = xp.maximum(k - rank, 0).astype(d.dtype)
    total = P.sum(P.multiply(x, weights), axis=axis, keepdims=True)
    tau = P.divide(P.subtract(total, 1.0), k.astype(d.dtype))
    return P.maximum(P.subtract(x, tau), 0.0)


# ---------------------------------------------------------------- encodings
def multi_hot(
    inputs: Any, num_classes: int | None = None, axis: int = -1, dtype: Any = None, **kwargs: Any
) -> Tensor:
    """Multi-hot encodes integer labels: the one-hot vectors of each row, OR-ed together."""
    if num_classes is None:
        num_classes = kwargs.pop("num_tokens", None)
    if kwargs.pop("sparse", False):
        raise ValueError("Unsupported value `sparse=True` with this backend.")
    if kwargs:
        raise TypeError(f"multi_hot: unexpected arguments. Received: {sorted(kwargs)}")
    if num_classes is None:
        raise ValueError("Argument `num_classes` must be specified. Received: num_classes=None")
    x = _tensor(inputs)
    reduction_axis = 1 if x.ndim > 1 else 0
    hot = _one_hot(x, num_classes, axis=axis, dtype=dtype)
    return Tensor(hot.data.max(axis=reduction_axis))


# ---------------------------------------------------------------- normalization
def moments(
    x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False
) -> tuple[Tensor, Tensor]:
    """Mean and variance of `x` over `axes` (float16 computed in float32)."""
    if synchronized:
        raise NotImplementedError(
            "Argument synchronized=True is not supported. Received: synchronized=True"
        )
    x = _tensor(x)
    dtype = x.dtype
    if dtype in ("float16", "bfloat16"):
        x = P.cast(x, "float32")
    ax = _axes(axes, x.ndim, "axes")
    mean = P.mean(x, axis=ax, keepdims=True)
    variance = P.mean(P.square(P.subtract(x, mean)), axis=ax, keepdims=keepdims)
    if not keepdims:
        mean = P.reshape(mean, variance.shape)
    if x.dtype != dtype:
        mean, variance = P.cast(mean, dtype), P.cast(variance, dtype)
    return mean, variance


def batch_normalization(
    x: Any,
    mean: Any,
    variance: Any,
    axis: int,
    offset: Any = None,
    scale: Any = None,
    epsilon: float = 1e-3,
) -> Tensor:
    """(x - mean) / sqrt(variance + epsilon) * scale + offset, vectors along `axis`."""
    x = _tensor(x)
    mean, variance = _tensor(mean), _tensor(variance)
    shape = [1] * x.ndim
    shape[axis] = mean.shape[0]
    inv = P.divide(1.0, P.sqrt(P.add(P.reshape(variance, shape), epsilon)))
    if scale is not None:
        inv = P.multiply(inv, P.reshape(_tensor(scale), shape))
    res = P.multiply(P.negative(P.reshape(mean, shape)), inv)
    if offset is not None:
        res = P.add(res, P.reshape(_tensor(offset), shape))
    return P.add(P.multiply(x, inv), res)


def _broadcast_param(v: Any, x: Tensor, ax: tuple[int, ...], dtype: str) -> Tensor | None:
    if v is None:
        return None
    v = _tensor(v, dtype)
    if v.ndim != x.ndim and ax != (x.ndim - 1,):
        v = P.reshape(v, [x.shape[i] if i in ax else 1 for i in range(x.ndim)])
    return v


def layer_normalization(
    x: Any,
    gamma: Any = None,
    beta: Any = None,
    axis: Any = -1,
    epsilon: float | None = None,
    **kwargs: Any,
) -> Tensor:
    """Normalizes `x` to zero mean and unit variance over `axis`, then gamma * . + beta."""
    rms_scaling = kwargs.pop("rms_scaling", False)
    if kwargs:
        raise TypeError(f"layer_normalization: unexpected arguments. Received: {sorted(kwargs)}")
    eps = _epsilon() if epsilon is None else epsilon
    x = _tensor(x)
    dtype = x.dtype
    x = _tensor(x, _compute_dtype(dtype))
    ax = _axes(axis, x.ndim)
    gamma = _broadcast_param(gamma, x, ax, x.dtype)
    beta = _broadcast_param(beta, x, ax, x.dtype)
    if rms_scaling:  # deprecated in Keras: scales by the variance, not the RMS
        mean = P.mean(x, axis=ax, keepdims=True)
        var = P.mean(P.square(P.subtract(x, mean)), axis=ax, keepdims=True)
        out = P.divide(x, P.sqrt(P.add(var, eps)))
        if gamma is not None:
            out = P.multiply(out, gamma)
        return P.cast(out, dtype) if out.dtype != dtype else out
    mean, var = moments(x, ax, keepdims=True)
    inv = P.divide(1.0, P.sqrt(P.add(var, eps)))
    if gamma is not None:
        inv = P.multiply(inv, gamma)
    res = P.multiply(P.negative(mean), inv)
    if beta is not None:
        res = P.add(res, beta)
    out = P.add(P.multiply(x, inv), res)
    return P.cast(out, dtype) if out.dtype != dtype else out


def rms_normalization(
    x: Any, scale: Any = None, axis: Any = -1, epsilon: float | None = None
) -> Tensor:
    """x * rsqrt(mean(x**2, axis) + epsilon) * scale."""
    eps = _epsilon() if epsilon is None else epsilon
    x = _tensor(x)
    dtype = x.dtype
    x = _tensor(x, _compute_dtype(dtype))
    if x.ndim == 0:
        x = P.reshape(x, (1,))
    ax = _axes(axis, x.ndim)
    rrms = P.divide(1.0, P.sqrt(P.add(P.mean(P.square(x), axis=ax, keepdims=True), eps)))
    out = P.multiply(x, rrms)
    if scale is not None:
        out = P.multiply(out, _tensor(scale, x.dtype))
    return P.cast(out, dtype) if out.dtype != dtype else out


def normalize(x: Any, axis: Any = -1, order: int = 2, epsilon: float | None = None) -> Tensor:
    """x / max(norm(x, order, axis), epsilon)."""
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise ValueError(f"Argument `order` must be an int >= 1. Received: order={order}")
    eps = _epsilon() if epsilon is None else epsilon
    x = _float(x)
    if x.ndim == 0:
        x = P.reshape(x, (1,))
    ax = _axes(axis, x.ndim)
    if order == 2:
        square_sum = P.sum(P.square(x), axis=ax, keepdims=True)
        # min(rsqrt(s), 1 / eps) as rsqrt(max(s, eps**2)): the same, without dividing by 0
        return P.divide(x, P.sqrt(P.maximum(square_sum, eps * eps)))
    absx = P.absolute(x)
    if order == 1:
        nrm = P.sum(absx, axis=ax, keepdims=True)
    else:
        nrm = P.power(P.sum(P.power(absx, float(order)), axis=ax, keepdims=True), 1.0 / order)
    return P.divide(x, P.maximum(nrm, eps))


def polar(abs_: Any, angle: Any) -> Tensor:
    """The complex64 tensor abs_ * (cos(angle) + 1j * sin(angle)), as torch.polar."""
    a, t = _tensor(abs_).data, _tensor(angle).data
    if a.shape != t.shape:
        raise ValueError(
            "Arguments `abs_` and `angle` must have the same shape. "
            f"Received: abs_.shape={tuple(a.shape)}, angle.shape={tuple(t.shape)}"
        )
    xp = _xp()
    return Tensor((a * xp.cos(t) + 1j * (a * xp.sin(t))).astype("complex64"))


# ---------------------------------------------------------------- metrics
def psnr(x1: Any, x2: Any, max_val: float) -> Tensor:
    """Peak signal-to-noise ratio: 20 * log10(max_val) - 10 * log10(mean((x1 - x2)**2))."""
    x1, x2 = _tensor(x1), _tensor(x2)
    if x1.shape != x2.shape:
        raise ValueError(
            f"Input shapes {x1.shape} and {x2.shape} must match for PSNR calculation. "
            f"Received: x1.shape={x1.shape}, x2.shape={x2.shape}"
        )
    mse = P.mean(P.square(P.subtract(x1, x2)))
    log10_max = float(_np.log10(_np.asarray(max_val, dtype="float64")))
    return P.subtract(20.0 * log10_max, P.multiply(P.log(mse), 10.0 / float(_np.log(10.0))))


# ---------------------------------------------------------------- attention
def dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    bias: Any = None,
    mask: Any = None,
    scale: float | None = None,
    is_causal: bool = False,
    flash_attention: bool | None = None,
    attn_logits_soft_cap: float | None = None,
) -> Tensor:
    """Scaled dot-product attention on (batch, seq, heads, head_dim) tensors."""
    if flash_attention:
        raise ValueError(
            "Flash attention is not supported in this backend. "
            f"Received: flash_attention={flash_attention}"
        )
    if attn_logits_soft_cap is not None:
        raise ValueError(
            "attn_logits_soft_cap is only supported for JAX on TPU. "
            f"Received: attn_logits_soft_cap={attn_logits_soft_cap}"
        )
    query, key, value = _tensor(query), _tensor(key), _tensor(value)
    if query.ndim != 4:
        raise ValueError(
            "`dot_product_attention` only supports 4D inputs. "
            f"Received: query.shape={query.shape}, key.shape={key.shape}, "
            f"value.shape={value.shape}."
        )
    dtype = _std_dtype(_np.result_type(query.data.dtype, key.data.dtype, value.data.dtype))
    if dtype in ("bool",) or dtype.startswith(("int", "uint")):
        dtype = _floatx()
    query, key, value = _tensor(query, dtype), _tensor(key, dtype), _tensor(value, dtype)
    head_dim = key.shape[-1]
    scale = 1.0 / float(_np.sqrt(head_dim)) if scale is None else scale
    q = P.transpose(query, (0, 2, 1, 3))  # B N T H
    k = P.transpose(key, (0, 2, 3, 1))  # B N H S
    v = P.transpose(value, (0, 2, 1, 3))  # B N S H
    logits = P.multiply(P.matmul(q, k), scale)  # B N T S
    if bias is not None:
        logits = P.add(logits, _tensor(bias, dtype))
    if mask is not None or is_causal:
        xp = _xp()
        keep = xp.ones(logits.shape, dtype=bool)
        if mask is not None:
            m = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
            keep = keep & m.astype(bool)
        if is_causal:
            t, s = logits.shape[2], logits.shape[3]
            keep = keep & xp.tril(xp.ones((t, s), dtype=bool))
        fill = xp.asarray(-0.7 * (65500.0 if dtype == "float16" else 3.38953e38), dtype=dtype)
        logits = P.where(keep, logits, fill)
    soft_dtype = "float64" if dtype == "float64" else "float32"
    probs = P.softmax(P.cast(logits, soft_dtype) if soft_dtype != dtype else logits, axis=-1)
    if probs.dtype != dtype:
        probs = P.cast(probs, dtype)
    return P.transpose(P.matmul(probs, v), (0, 2, 1, 3))


# ---------------------------------------------------------------- CTC
def _int_array(x: Any, name: str, ndim: int) -> Any:
    a = x.data if isinstance(x, Tensor) else _xp().asarray(x)
    if a.ndim != ndim or (a.size and a.dtype.kind not in "biu"):
        raise ValueError(
            f"Argument `{name}` must be a {ndim}-D integer tensor. "
            f"Received: {name}.shape={tuple(a.shape)}, {name}.dtype={a.dtype}"
        )
    return a.astype("int64")


def ctc_loss(
    target: Any, output: Any, target_length: Any, output_length: Any, mask_index: int = 0
) -> Tensor:
    """Per-sample CTC negative log-likelihood of `output` logits (batch, steps, classes)."""
    output = _tensor(output)
    if output.ndim != 3:
        raise ValueError(
            "Argument `output` must have shape (batch_size, max_length, num_classes). "
            f"Received: output.shape={output.shape}"
        )
    dtype = "float64" if output.dtype == "float64" else "float32"
    if output.dtype != dtype:
        output = P.cast(output, dtype)
    target = _int_array(target, "target", 2)
    b = output.shape[0]
    lengths = []
    for name, v in (("target_length", target_length), ("output_length", output_length)):
        a = _int_array(v, name, 1)
        if a.shape[0] != b:
            raise ValueError(
                f"Argument `{name}` must have shape (batch_size,) = ({b},). "
                f"Received: {name}.shape={tuple(a.shape)}"
            )
        lengths.append(a)
    if target.shape[0] != b:
        raise ValueError(
            f"Arguments `target` and `output` must have the same batch size. "
            f"Received: target.shape={tuple(target.shape)}, output.shape={output.shape}"
        )
    t_len = _xp().clip(lengths[0], 0, target.shape[1])
    o_len = _xp().clip(lengths[1], 0, output.shape[1])
    return apply(_ctc.ctc_nll, output, target, t_len, o_len, int(mask_index))


def ctc_decode(
    inputs: Any,
    sequence_lengths: Any,
    strategy: str = "greedy",
    beam_width: int = 100,
    top_paths: int = 1,
    merge_repeated: bool = True,
    mask_index: int = 0,
) -> tuple[Tensor, Tensor]:
    """Decodes CTC logits: (paths (top_paths, batch, steps) int32 with -1 padding, scores)."""
    inputs = _tensor(inputs)
    if inputs.ndim != 3:
        raise ValueError(
            "Argument `inputs` must have shape (batch_size, max_length, num_classes). "
            f"Received: inputs.shape={inputs.shape}"
        )
    dtype = "float64" if inputs.dtype == "float64" else "float32"
    data = inputs.data.astype(dtype, copy=False)
    lengths = _int_array(sequence_lengths, "sequence_lengths", 1)
    if mask_index is None:
        mask_index = inputs.shape[-1] - 1
    if strategy == "greedy":
        paths, scores = _ctc.greedy_decode(data, lengths, merge_repeated, int(mask_index))
    elif strategy == "beam_search":
        for name, v in (("beam_width", beam_width), ("top_paths", top_paths)):
            if not isinstance(v, (int, _np.integer)) or v < 1:
                raise ValueError(f"Argument `{name}` must be a positive int. Received: {name}={v}")
        paths, scores = _ctc.beam_search_decode(
            data, lengths, int(beam_width), int(top_paths), int(mask_index)
        )
    else:
        raise ValueError(
            f"Invalid strategy {strategy}. Supported values are 'greedy' and 'beam_search'. "
            f"Received: strategy={strategy!r}"
        )
    return Tensor(paths), Tensor(scores)


# ---------------------------------------------------------------- einops
def _einops_side(side: str, pattern: str) -> list[list[str]]:
    """One side of an einops pattern as groups of axis names: "b (h w)" -> [[b], [h, w]]."""
    groups = []
    for token in _re.findall(r"\([^()]*\)|[^\s()]+|[()]", side):
        names = token[1:-1].split() if token.startswith("(") and token.endswith(")") else [token]
        if token in "()" or not all(n.isidentifier() for n in names):
            raise ValueError(
                f"Argument `pattern` has an axis Keras's rearrange does not support: {token!r}. "
                f"Received: pattern={pattern!r}"
            )
        groups.append(names)
    return groups


def rearrange(tensor: Any, pattern: str, **axes_lengths: int) -> Tensor:
    """Reorders, merges and splits axes einops-style, e.g. "b (h h1) w c -> b h (w h1 c)"."""
    tensor = _tensor(tensor)
    sides = _re.split(r"\s*->\s*", pattern.strip()) if isinstance(pattern, str) else []
    if len(sides) != 2:
        raise ValueError(
            f'Argument `pattern` must look like "a (b c) -> (a b) c". Received: pattern={pattern!r}'
        )
    inp, out = _einops_side(sides[0], pattern), _einops_side(sides[1], pattern)
    flat_in = [a for g in inp for a in g]
    flat_out = [a for g in out for a in g]
    if len(set(flat_in)) != len(flat_in) or sorted(flat_in) != sorted(flat_out):
        raise ValueError(
            "Argument `pattern` must name each axis once on each side, the same axes on both. "
            f"Received: pattern={pattern!r}"
        )
    if len(inp) != tensor.ndim:
        raise ValueError(
            f"Argument `pattern` has {len(inp)} input axes for a tensor of rank {tensor.ndim}. "
            f"Received: pattern={pattern!r}, tensor.shape={tensor.shape}"
        )
    sizes: dict[str, int] = {}
    for group, dim in zip(inp, tensor.shape):
        unknown = [a for a in group if a not in axes_lengths]
        known = int(_np.prod([axes_lengths[a] for a in group if a in axes_lengths]))
        if len(group) == 1 and unknown:
            sizes[group[0]] = dim
            continue
        if len(unknown) > 1 or (unknown and dim % known) or (not unknown and known != dim):
            raise ValueError(
                f"Argument `pattern` cannot split an axis of size {dim} into {group}. "
                f"Received: pattern={pattern!r}, axes_lengths={axes_lengths}"
            )
        sizes.update({a: int(axes_lengths[a]) for a in group if a in axes_lengths})
        if unknown:
            sizes[unknown[0]] = dim // known
    x = P.reshape(tensor, tuple(sizes[a] for a in flat_in))
    x = P.transpose(x, tuple(flat_in.index(a) for a in flat_out))
    return P.reshape(x, tuple(int(_np.prod([sizes[a] for a in g])) for g in out))
