"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from distkeras import constraints, initializers, ops, regularizers
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


class _Elementwise(Layer):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)


class ReLU(_Elementwise):
    """Rectified linear unit with an optional cap, leak and threshold.

    `f(x) = max_value` for `x >= max_value`, `x` for `threshold <= x < max_value`,
    `negative_slope * (x - threshold)` otherwise.

    Args:
        max_value: Non-negative cap (None: no cap).
        negative_slope: Non-negative slope below the threshold.
        threshold: Non-negative threshold below which values are damped.
    """

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if max_value is not None and (not _number(max_value) or max_value < 0.0):
            raise ValueError(
                "max_value of a ReLU layer cannot be a negative value. "
                f"Received: max_value={max_value!r}"
            )
        if not _number(negative_slope) or negative_slope < 0.0:
            raise ValueError(
                "negative_slope of a ReLU layer cannot be a negative value. "
                f"Received: negative_slope={negative_slope!r}"
            )
        if not _number(threshold) or threshold < 0.0:
            raise ValueError(
                "threshold of a ReLU layer cannot be a negative value. "
                f"Received: threshold={threshold!r}"
            )
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        below = x.data < self.threshold
        if self.negative_slope:
            low = ops.multiply(ops.subtract(x, self.threshold), self.negative_slope)
        else:
            low = current_module().zeros((), dtype=x.data.dtype)
        out = ops.where(below, low, x)
        if self.max_value is not None:
            out = ops.where(x.data >= self.max_value, self.max_value, out)
        return ops.cast(out, x.dtype) if out.dtype != x.dtype else out

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "max_value": self.max_value,
                "negative_slope": self.negative_slope,
                "threshold": self.threshold,
            }
        )
        return cfg


class LeakyReLU(_Elementwise):
    """`f(x) = x` for `x >= 0`, `negative_slope * x` otherwise.

    Args:
        negative_slope: Non-negative slope for negative inputs (`alpha` is accepted
            as a deprecated alias).
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2
            )
        super().__init__(**kwargs)
        if negative_slope is None or not _number(negative_slope) or negative_slope < 0:
            raise ValueError(
                "The negative_slope value of a Leaky ReLU layer cannot be None or a negative "
                f"value. Expected a float. Received: negative_slope={negative_slope!r}"
            )
        self.negative_slope = float(negative_slope)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["negative_slope"] = self.negative_slope
        return cfg


class PReLU(_Elementwise):
    """Parametric ReLU: `f(x) = x` for `x >= 0`, `alpha * x` otherwise, `alpha` learned.

    Args:
        alpha_initializer: Initializer of the slopes.
        alpha_regularizer: Regularizer of the slopes.
        alpha_constraint: Constraint of the slopes.
        shared_axes: 1-based axes along which the slopes are shared (e.g. [1, 2]
            for one slope per channel of a 2D feature map).
    """

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: int | Sequence[int] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [int(a) for a in shared_axes]
        else:
            self.shared_axes = [int(shared_axes)]

    def build(self, input_shape: Sequence[int | None]) -> None:
        param_shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if not 1 <= a < len(input_shape):
                raise ValueError(
                    f"shared_axes must be 1-based axes of the input (rank {len(input_shape)}). "
                    f"Received: shared_axes={self.shared_axes}"
                )
            param_shape[a - 1] = 1
        if any(s is None for s in param_shape):
            raise ValueError(
                "PReLU needs every non-shared input axis to be defined. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.alpha = self.add_weight(
            shape=param_shape,
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
            name="alpha",
        )
        axes = {i: input_shape[i] for i in range(1, len(input_shape))}
        for a in self.shared_axes or []:
            axes.pop(a, None)
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes)
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        pos = ops.relu(inputs)
        neg = ops.multiply(ops.negative(self.alpha), ops.relu(ops.negative(inputs)))
        return ops.add(pos, neg)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes,
            }
        )
        return cfg


class ELU(_Elementwise):
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise.

    Args:
        alpha: Scale of the negative part.
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        if not _number(alpha):
            raise ValueError(f"alpha of an ELU layer must be a float. Received: alpha={alpha!r}")
        self.alpha = float(alpha)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.elu(inputs, alpha=self.alpha)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["alpha"] = self.alpha
        return cfg


def _large_negative(dtype: Any) -> float:
    return -3e4 if str(dtype) == "float16" else -1e9


class Softmax(_Elementwise):
    """Softmax over `axis`; masked positions get (numerically) zero probability.

    Args:
        axis: Axis, or list of axes, to normalize over.

    Call arguments:
        inputs: The logits.
        mask: Optional boolean array broadcastable to the inputs; False entries
            are pushed to -1e9 before the softmax and zeroed after it.
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis: int | list[int] = [int(a) for a in axis]
        elif _number(axis) and int(axis) == axis:
            self.axis = int(axis)
        else:
            raise ValueError(f"`axis` must be an int or a list of ints. Received: axis={axis!r}")

    def call(self, inputs: Tensor, mask: Any = None) -> Tensor:
        x = inputs
        m = None
        if mask is not None:
            m = (mask.data if isinstance(mask, Tensor) else current_module().asarray(mask)).astype(
                x.data.dtype
            )
            if m.ndim == x.ndim - 1:
                m = m[..., None]
            x = ops.add(x, (1.0 - m) * _large_negative(x.dtype))
        if isinstance(self.axis, list) and len(self.axis) > 1:
            axes = tuple(self.axis)
            out = ops.exp(ops.subtract(x, ops.logsumexp(x, axis=axes, keepdims=True)))
        else:
            axis = self.axis[0] if isinstance(self.axis, list) else self.axis
            out = ops.softmax(x, axis=axis)
        if m is not None:
            out = ops.multiply(out, m)
        return out

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg
