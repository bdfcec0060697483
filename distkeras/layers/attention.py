"""Attention layers: Attention (Luong), AdditiveAttention (Bahdanau), MultiHeadAttention."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras import constraints, initializers, ops, regularizers
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.backend.random import SeedGenerator
from distkeras.layers.layer import Layer


def _raw_mask(mask: Any) -> Any:
    if mask is None:
        return None
    data = mask.data if isinstance(mask, Tensor) else current_module().asarray(mask)
    return data.astype(bool)


def _check_dropout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            "Invalid value received for argument `dropout`. Expected a float value between "
            f"0 and 1 (1 excluded). Received: dropout={value!r}"
        )
    return float(value)


def _dropout(x: Tensor, rate: float, gen: SeedGenerator) -> Tensor:
    keep = 1.0 - rate
    mask = (gen.random(x.shape, dtype=x.dtype) < keep).astype(x.dtype)
    mask *= 1.0 / keep
    return ops.multiply(x, mask)


def _causal_mask(tq: int, tv: int) -> Any:
    """(1, tq, tv) boolean mask: query i sees keys j <= i."""
    xp = current_module()
    return (xp.arange(tq)[:, None] >= xp.arange(tv)[None, :])[None]


def masked_softmax(scores: Tensor, mask: Any, axis: int = -1) -> Tensor:
    """Softmax with False mask entries pushed to -1e9 before and zeroed after (Keras's)."""
    if mask is None:
        return ops.softmax(scores, axis=axis)
    m = mask.astype(scores.data.dtype)
    big = -3e4 if scores.dtype == "float16" else -1e9
    out = ops.softmax(ops.add(scores, (1.0 - m) * big), axis=axis)
    return ops.multiply(out, m)


class Attention(Layer):
    """Dot-product (Luong-style) attention over `[query, value]` or `[query, value, key]`.

    `scores = query @ key^T` (times a learned `scale` with `use_scale`) for
    `score_mode='dot'`, or `concat_score_weight * sum(tanh(scale * (q + k)))` for
    'concat'; `output = softmax(scores) @ value`.

    Args:
        use_scale: Learn a scalar that scales the scores.
        score_mode: 'dot' or 'concat'.
        dropout: Dropout rate on the attention weights in training.
        seed: Seed of the dropout stream.

    Call arguments:
        inputs: `[query (B, Tq, dim), value (B, Tv, dim)]` and optionally `key (B, Tv, dim)`.
        mask: `[query_mask (B, Tq), value_mask (B, Tv)]` (taken from the inputs' masks).
        return_attention_scores: Also return the attention weights `(B, Tq, Tv)`.
        use_causal_mask: Query i attends only to keys j <= i.
    """

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                "Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. "
                f"Received: score_mode={score_mode!r}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = _check_dropout(dropout)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.scale = None
        self.concat_score_weight = None

    def _validate(self, inputs: Any) -> None:
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                f"{type(self).__name__} layer must be called on a list of inputs, namely "
                "[query, value] or [query, value, key]. "
                f"Received: inputs of type {type(inputs).__name__}"
                + (f" and length {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
            )

    def build(self, input_shape: Any) -> None:
        self._validate(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(
                shape=(), initializer="ones", name="concat_score_weight"
            )
        self.built = True

    def _calculate_scores(self, query: Tensor, key: Tensor) -> Tensor:
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.swapaxes(key, -1, -2))
            if self.scale is not None:
                scores = ops.multiply(scores, self.scale)
            return scores
        summed = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if self.scale is not None:
            summed = ops.multiply(summed, self.scale)
        return ops.multiply(self.concat_score_weight, ops.sum(ops.tanh(summed), axis=-1))

    def call(
        self,
        inputs: Any,
        mask: Any = None,
        training: bool = False,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        self._validate(inputs)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None, None]
        q_mask = _raw_mask(masks[0])
        v_mask = _raw_mask(masks[1]) if len(masks) > 1 else None
        scores = self._calculate_scores(q, k)
        scores_mask = None if v_mask is None else v_mask[..., None, :]
        if use_causal_mask:
            causal = _causal_mask(scores.shape[-2], scores.shape[-1])
            scores_mask = causal if scores_mask is None else scores_mask & causal
        if scores_mask is not None:
            big = 65504.0 if scores.dtype == "float16" else 1.0e9
            scores = ops.subtract(scores, big * (~scores_mask).astype(scores.data.dtype))
        weights = ops.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            weights = _dropout(weights, self.dropout, self.seed_generator)
        result = ops.matmul(weights, v)
        if q_mask is not None:
            result = ops.multiply(result, q_mask[..., None].astype(result.data.dtype))
        if return_attention_scores:
            return [result, weights]
        return result

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if isinstance(previous_mask, (list, tuple)):
            return previous_mask[0]
        return None

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self._validate(input_shape)
        return (*tuple(input_shape[0])[:-1], input_shape[1][-1])

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "use_scale": self.use_scale,
                "score_mode": self.score_mode,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return cfg


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention: `scores = sum(scale * tanh(query + key))`.

    Args:
        use_scale: Learn a per-feature `scale` vector (glorot_uniform initialized).
        dropout: Dropout rate on the attention weights in training.
        seed: Seed of the dropout stream.
    """

    def __init__(
        self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None, **kwargs: Any
    ):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def build(self, input_shape: Any) -> None:
        self._validate(input_shape)
        dim = input_shape[0][-1]
        if self.use_scale:
            self.scale = self.add_weight(shape=(dim,), initializer="glorot_uniform", name="scale")
        self.built = True

    def _calculate_scores(self, query: Tensor, key: Tensor) -> Tensor:
        t = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.scale is not None:
            t = ops.multiply(t, self.scale)
        return ops.sum(t, axis=-1)

    def get_config(self) -> dict:
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017) with Keras 3's weight layout.

    The query, key and value projections have kernels `(dim, num_heads, key_dim)`
    (`value_dim` for the value) and biases `(num_heads, key_dim)`; the output
    projection has kernel `(num_heads, value_dim, *output_shape)` and bias
    `output_shape`. Scores are scaled by `1 / sqrt(key_dim)`.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head for query and key.
        value_dim: Size of each head for value (key_dim when omitted).
        dropout: Dropout rate on the attention weights in training.
        use_bias: Whether the projections have biases.
        output_shape: Output feature shape (the query's last dimension when omitted).
        attention_axes: Axes attention runs over (all axes but batch, heads and
            features when omitted).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            activity_regularizer, kernel_constraint, bias_constraint: As in Dense.
        seed: Seed of the dropout stream.

    Call arguments:
        query: `(B, T, dim)`; value: `(B, S, dim)`; key: `(B, S, dim)` (value when omitted).
        attention_mask: Boolean `(B, T, S)`: which keys each query may attend to.
        return_attention_scores: Also return the weights `(B, num_heads, T, S)`.
        use_causal_mask: Query i attends only to keys j <= i.
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        seed: int | None = None,
        **kwargs: Any,
    ):
        kwargs.pop("flash_attention", None)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.num_heads = _positive("num_heads", num_heads)
        self.key_dim = _positive("key_dim", key_dim)
        self.value_dim = self.key_dim if value_dim is None else _positive("value_dim", value_dim)
        self.dropout = _check_dropout(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is None or isinstance(output_shape, (list, tuple)):
            self._output_shape = None if output_shape is None else tuple(output_shape)
        else:
            self._output_shape = (_positive("output_shape", output_shape),)
        self._output_shape_arg = output_shape
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(
                "`attention_axes` must be an int, list, or tuple. "
                f"Received: attention_axes={attention_axes!r}"
            )
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self._shapes: dict | None = None

    # ------------------------------------------------------------ weights
    def _proj(self, name: str, shape: tuple, bias_shape: tuple) -> tuple:
        kernel = self.add_weight(
            shape=shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name=f"{name}/kernel",
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(
                shape=bias_shape,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name=f"{name}/bias",
            )
        return kernel, bias

    def build(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> None:
        """Creates the weights once the value shape is known (at the first call)."""
        if value_shape is None or self._shapes is not None:
            self.built = True
            return
        key_shape = value_shape if key_shape is None else key_shape
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out = self._output_shape or (query_shape[-1],)
        self.query_kernel, self.query_bias = self._proj("query", (query_shape[-1], h, kd), (h, kd))
        self.key_kernel, self.key_bias = self._proj("key", (key_shape[-1], h, kd), (h, kd))
        self.value_kernel, self.value_bias = self._proj("value", (value_shape[-1], h, vd), (h, vd))
        self.output_kernel, self.output_bias = self._proj("attention_output", (h, vd, *out), out)
        self._shapes = {
            "query_shape": list(query_shape),
            "value_shape": list(value_shape),
            "key_shape": list(key_shape),
        }
        rank = len(query_shape)
        axes = self.attention_axes or tuple(range(1, rank - 1))
        norm = tuple(sorted({a % rank for a in axes}))
        if any(a in (0, rank - 1) for a in norm):
            raise ValueError(
                "`attention_axes` must not include the batch or the feature axis. "
                f"Received: attention_axes={self.attention_axes}"
            )
        self._attn_axes = norm
        self.built = True

    def get_build_config(self) -> dict | None:
        return None if self._shapes is None else dict(self._shapes)

    def build_from_config(self, config: dict) -> None:
        if config and "value_shape" in config and self._shapes is None:
            shapes = {k: tuple(v) for k, v in config.items() if v is not None}
            self.build(shapes["query_shape"], shapes["value_shape"], shapes.get("key_shape"))

    # ------------------------------------------------------------ compute
    def _project(self, x: Tensor, kernel: Any, bias: Any) -> Tensor:
        dim, h, d = kernel.shape
        y = ops.matmul(x, ops.reshape(kernel, (dim, h * d)))
        if bias is not None:
            y = ops.add(y, ops.reshape(bias, (h * d,)))
        return ops.reshape(y, (*x.shape[:-1], h, d))

    def _to_heads(self, x: Tensor) -> tuple[Tensor, tuple]:
        """(B, *inner, H, D) -> (B, *other, H, T, D) with T the flattened attention axes."""
        n = x.ndim - 1  # the input's rank
        attn = self._attn_axes
        other = [a for a in range(1, n - 1) if a not in attn]
        perm = [0, *other, n - 1, *attn, n]
        xt = ops.transpose(x, perm)
        lead = xt.shape[: len(other) + 2]
        att_shape = tuple(x.shape[a] for a in attn)
        return ops.reshape(xt, (*lead, int(np.prod(att_shape)), x.shape[-1])), att_shape

    def _compute_mask(self, query, value, key, masks, attention_mask, use_causal_mask) -> Any:
        """Keras's combination of the query/value/key masks, causal mask and attention_mask."""
        q_mask, v_mask, k_mask = (
            _raw_mask(m if m is not None else getattr(t, "_keras_mask", None))
            if t is not None
            else None
            for t, m in zip((query, value, key), masks)
        )
        auto = None
        if q_mask is not None:
            auto = q_mask[..., None]
        for m in (v_mask, k_mask):
            if m is not None:
                m = m[..., None, :]
                auto = m if auto is None else auto & m
        if use_causal_mask:
            c = _causal_mask(query.shape[1], value.shape[1])
            auto = c if auto is None else auto & c
        if attention_mask is not None:
            attention_mask = _raw_mask(attention_mask)
            return attention_mask if auto is None else attention_mask & auto
        return auto

    def call(
        self,
        query: Any,
        value: Any,
        key: Any = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        training: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        value = self._convert_input(value)
        own_key = None if key is None else self._convert_input(key)
        key = value if own_key is None else own_key
        if self._shapes is None:
            self.build(query.shape, value.shape, key.shape)
        mask = self._compute_mask(
            query,
            value,
            own_key,
            (query_mask, value_mask, key_mask),
            attention_mask,
            use_causal_mask,
        )
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        q = ops.multiply(q, 1.0 / math.sqrt(self.key_dim))
        qh, q_att = self._to_heads(q)
        kh, k_att = self._to_heads(k)
        vh, _ = self._to_heads(v)
        scores = ops.matmul(qh, ops.swapaxes(kh, -1, -2))  # (B, *other, H, Tq, Tk)
        lead = scores.shape[:-2]
        full = (*lead, *q_att, *k_att)
        flat_mask = None
        if mask is not None:
            m = mask
            for _ in range(len(full) - m.ndim):
                m = current_module().expand_dims(m, -2 * len(q_att) - 1)
            flat_mask = current_module().broadcast_to(m, full).reshape(scores.shape)
        probs = masked_softmax(scores, flat_mask, axis=-1)
        if training and self.dropout > 0:
            dropped = _dropout(probs, self.dropout, self.seed_generator)
        else:
            dropped = probs
        out = ops.matmul(dropped, vh)  # (B, *other, H, Tq, V)
        out = ops.reshape(out, (*lead, *q_att, self.value_dim))
        n = query.ndim
        other = [a for a in range(1, n - 1) if a not in self._attn_axes]
        perm = [0, *other, n - 1, *self._attn_axes, n]
        out = ops.transpose(out, list(np.argsort(perm)))  # (B, *inner, H, V)
        h, vd = self.num_heads, self.value_dim
        okernel = self.output_kernel
        out_feat = okernel.shape[2:]
        y = ops.matmul(
            ops.reshape(out, (*out.shape[:-2], h * vd)),
            ops.reshape(okernel, (h * vd, int(np.prod(out_feat)))),
        )
        if self.output_bias is not None:
            y = ops.add(y, ops.reshape(self.output_bias, (int(np.prod(out_feat)),)))
        y = ops.reshape(y, (*out.shape[:-2], *out_feat))
        if return_attention_scores:
            return [y, ops.reshape(probs, full)]
        return y

    def compute_output_shape(
        self, query_shape: Any, value_shape: Any = None, key_shape: Any = None
    ) -> tuple:
        out = self._output_shape or (query_shape[-1],)
        return (*tuple(query_shape)[:-1], *out)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_shape": (
                    list(self._output_shape_arg)
                    if isinstance(self._output_shape_arg, (list, tuple))
                    else self._output_shape_arg
                ),
                "attention_axes": None
                if self.attention_axes is None
                else list(self.attention_axes),
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "seed": self.seed,
            }
        )
        return cfg
