"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization (Keras 3 arguments, weights and formulas)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras import constraints, initializers, ops, regularizers
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.backend.normalization import batch_norm_train
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.layer import Layer


def _check_int_axis(axis: Any) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"Expected an int for the argument `axis`. Received: axis={axis!r}")
    return int(axis)


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
        raise ValueError(f"`epsilon` must be a non-negative float. Received: epsilon={epsilon!r}")
    return float(epsilon)


def _resolve_axis(axis: int, ndim: int, name: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"Invalid axis for layer {name!r}: the input has rank {ndim}. Received: axis={axis}"
        )
    return axis % ndim


def _weights_config(layer: Layer) -> dict:
    return {
        "beta_initializer": initializers.serialize(layer.beta_initializer),
        "gamma_initializer": initializers.serialize(layer.gamma_initializer),
        "beta_regularizer": regularizers.serialize(layer.beta_regularizer),
        "gamma_regularizer": regularizers.serialize(layer.gamma_regularizer),
        "beta_constraint": constraints.serialize(layer.beta_constraint),
        "gamma_constraint": constraints.serialize(layer.gamma_constraint),
    }


class _AffineNormalization(Layer):
    """Holds the gamma/beta arguments shared by the normalization layers."""

    def _init_affine(
        self,
        center,
        scale,
        beta_initializer,
        gamma_initializer,
        beta_regularizer,
        gamma_regularizer,
        beta_constraint,
        gamma_constraint,
    ) -> None:
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = None
        self.beta = None

    def _scale_and_shift(self, out: Tensor, fit: Any) -> Tensor:
        """`out * gamma + beta` (each where present), `fit` shaping them to broadcast."""
        if self.gamma is not None:
            out = ops.multiply(out, fit(self.gamma))
        if self.beta is not None:
            out = ops.add(out, fit(self.beta))
        return out

    def _build_affine(self, shape: tuple, gamma: bool, beta: bool) -> None:
        if gamma:
            self.gamma = self.add_weight(
                shape=shape,
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                name="gamma",
            )
        if beta:
            self.beta = self.add_weight(
                shape=shape,
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                name="beta",
            )

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)


class BatchNormalization(_AffineNormalization):
    """Normalizes each channel with the batch statistics (training) or the moving ones.

    In training, `output = gamma * (x - mean(x)) / sqrt(var(x) + epsilon) + beta`
    over every axis but `axis`, and the moving statistics become
    `moving = moving * momentum + batch * (1 - momentum)`. In inference (or when
    the layer is frozen) the moving statistics replace the batch ones.

    Args:
        axis: The channel axis (-1 for channels_last, 1 for channels_first).
        momentum: Momentum of the moving averages.
        epsilon: Added to the variance.
        center: Whether to add the offset `beta`.
        scale: Whether to multiply by `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: Initializers.
        beta_regularizer, gamma_regularizer: Regularizers.
        beta_constraint, gamma_constraint: Constraints.
        synchronized: In a data-parallel run, compute the batch statistics over
            the global batch (all ranks) and all-reduce the gradient's
            reductions accordingly; no effect in one process. Every rank must run
            the same number of training forward passes per step (true for `fit`;
            in deterministic micro-shard mode the micro-shard count must be a
            multiple of the world size, and statistics cover one micro-shard per rank).

    Input shape: arbitrary. Output shape: the input's.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        **kwargs: Any,
    ):
        for legacy in ("renorm", "fused"):
            if kwargs.get(legacy):
                raise ValueError(
                    f"BatchNormalization does not support `{legacy}`. "
                    f"Received: {legacy}={kwargs[legacy]!r}"
                )
            kwargs.pop(legacy, None)
        super().__init__(**kwargs)
        self.axis = _check_int_axis(axis)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise ValueError(f"`momentum` must be a float. Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.epsilon = _check_epsilon(epsilon)
        self._init_affine(
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.synchronized = bool(synchronized)
        self.supports_masking = True

    def build(self, input_shape: Sequence[int | None]) -> None:
        ndim = len(input_shape)
        axis = _resolve_axis(self.axis, ndim, self.name)
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(
                f"Axis {self.axis} of the input to BatchNormalization layer {self.name!r} must "
                f"be defined. Received: input_shape={tuple(input_shape)}"
            )
        shape = (int(dim),)
        self._build_affine(shape, self.scale, self.center)
        self.moving_mean = self.add_weight(
            shape=shape,
            initializer=self.moving_mean_initializer,
            trainable=False,
            name="moving_mean",
        )
        self.moving_variance = self.add_weight(
            shape=shape,
            initializer=self.moving_variance_initializer,
            trainable=False,
            name="moving_variance",
        )
        self._axis = axis
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: int(dim)})
        self.built = True

    def _communicator(self) -> Any:
        if not self.synchronized:
            return None
        from distkeras import distributed  # noqa: PLC0415 - floor 1, imported lazily

        comm = distributed.get_communicator()
        return comm if comm.size > 1 else None

    def call(self, inputs: Tensor, training: bool = False, mask: Any = None) -> Tensor:
        if mask is not None:
            mshape = getattr(mask, "shape", None)
            if mshape is None or len(mshape) != inputs.ndim - 1:
                raise ValueError(
                    "The mask provided should be one dimension less than the inputs. "
                    f"Received: mask.shape={mshape}, inputs.shape={inputs.shape}"
                )
            if self._axis != inputs.ndim - 1:
                raise ValueError(
                    "A mask is only supported with the channel axis last. "
                    f"Received: axis={self.axis}"
                )
        if training and self.trainable:
            out, mean, var = batch_norm_train(
                inputs,
                self.gamma,
                self.beta,
                axis=self._axis,
                epsilon=self.epsilon,
                mask=mask,
                communicator=self._communicator(),
            )
            self._update_moving(mean, var)
            return out
        return self._inference(inputs)

    def _update_moving(self, mean: Any, var: Any) -> None:
        m = self.momentum
        with no_grad():
            mm, mv = self.moving_mean.data, self.moving_variance.data
            self.moving_mean.assign(mm * m + mean.astype(mm.dtype, copy=False) * (1.0 - m))
            self.moving_variance.assign(mv * m + var.astype(mv.dtype, copy=False) * (1.0 - m))

    def _inference(self, inputs: Tensor) -> Tensor:
        ndim = inputs.ndim
        bshape = tuple(-1 if i == self._axis else 1 for i in range(ndim))
        xp = current_module()
        mm = self.moving_mean.data.astype(inputs.dtype, copy=False)
        inv = (1.0 / xp.sqrt(self.moving_variance.data + self.epsilon)).astype(inputs.dtype)
        if self.gamma is not None:
            scale = ops.multiply(self.gamma, inv)
            shift = ops.negative(ops.multiply(scale, mm))
        else:
            scale = Tensor(inv)
            shift = Tensor(-mm * inv)
        if self.beta is not None:
            shift = ops.add(shift, self.beta)
        if self._axis != ndim - 1:
            scale = ops.reshape(scale, bshape)
            shift = ops.reshape(shift, bshape)
        return ops.add(ops.multiply(inputs, scale), shift)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(
                    self.moving_variance_initializer
                ),
                "synchronized": self.synchronized,
            }
        )
        cfg.update(_weights_config(self))
        return cfg


class LayerNormalization(_AffineNormalization):
    """Normalizes each sample over `axis`: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    Args:
        axis: Axis or list of axes to normalize over (and that gamma/beta span).
        epsilon: Added to the variance.
        center: Whether to add the offset `beta`.
        scale: Whether to multiply by `gamma`.
        rms_scaling: If True, `center` and `scale` are ignored and the output is
            `x * gamma / sqrt(mean(x**2) + epsilon)` (RMS normalization).
        beta_initializer, gamma_initializer: Initializers.
        beta_regularizer, gamma_regularizer: Regularizers.
        beta_constraint, gamma_constraint: Constraints.
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis: int | list[int] = [_check_int_axis(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(
                "Expected an int or a list/tuple of ints for the argument `axis`. "
                f"Received: axis={axis!r}"
            )
        self.epsilon = _check_epsilon(epsilon)
        self.rms_scaling = bool(rms_scaling)
        self._init_affine(
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )
        self.supports_masking = True

    def build(self, input_shape: Sequence[int | None]) -> None:
        ndim = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        self._axes = tuple(sorted({_resolve_axis(a, ndim, self.name) for a in axes}))
        shape = tuple(input_shape[a] for a in self._axes)
        if any(s is None for s in shape):
            raise ValueError(
                f"The normalized axes of the input to LayerNormalization layer {self.name!r} "
                f"must be defined. Received: input_shape={tuple(input_shape)}"
            )
        self._bshape = tuple(input_shape[i] if i in self._axes else 1 for i in range(ndim))
        self._build_affine(
            shape, self.scale or self.rms_scaling, self.center and not self.rms_scaling
        )
        self.built = True

    def _broadcast(self, v: Any) -> Any:
        if v is None or self._axes == (len(self._bshape) - 1,):
            return v
        return ops.reshape(v, self._bshape)

    def call(self, inputs: Tensor) -> Tensor:
        axes = self._axes
        if self.rms_scaling:
            ms = ops.mean(ops.square(inputs), axis=axes, keepdims=True)
            inv = ops.divide(1.0, ops.sqrt(ops.add(ms, self.epsilon)))
            return ops.multiply(ops.multiply(inputs, inv), self._broadcast(self.gamma))
        mean = ops.mean(inputs, axis=axes, keepdims=True)
        xc = ops.subtract(inputs, mean)
        var = ops.mean(ops.square(xc), axis=axes, keepdims=True)
        out = ops.multiply(xc, ops.divide(1.0, ops.sqrt(ops.add(var, self.epsilon))))
        return self._scale_and_shift(out, self._broadcast)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "axis": self.axis,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "rms_scaling": self.rms_scaling,
            }
        )
        cfg.update(_weights_config(self))
        return cfg


class GroupNormalization(_AffineNormalization):
    """Normalizes each sample over groups of channels (and every other non-batch axis).

    Args:
        groups: Number of groups; must divide the number of channels (-1: one
            group per channel, i.e. instance normalization).
        axis: The channel axis.
        epsilon: Added to the variance.
        center: Whether to add the per-channel offset `beta`.
        scale: Whether to multiply by the per-channel `gamma`.
        beta_initializer, gamma_initializer: Initializers.
        beta_regularizer, gamma_regularizer: Regularizers.
        beta_constraint, gamma_constraint: Constraints.
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(groups, bool)
            or not isinstance(groups, (int, np.integer))
            or (groups <= 0 and groups != -1)
        ):
            raise ValueError(
                f"`groups` must be a positive integer or -1. Received: groups={groups!r}"
            )
        self.groups = int(groups)
        self.axis = _check_int_axis(axis)
        self.epsilon = _check_epsilon(epsilon)
        self._init_affine(
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )
        self.supports_masking = True

    def build(self, input_shape: Sequence[int | None]) -> None:
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(
                f"GroupNormalization needs inputs of rank >= 2. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        axis = _resolve_axis(self.axis, ndim, self.name)
        if axis == 0:
            raise ValueError(f"`axis` cannot be the batch axis. Received: axis={self.axis}")
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(
                f"Axis {self.axis} of input tensor should have a defined dimension but the "
                f"layer received an input with shape {tuple(input_shape)}."
            )
        groups = int(dim) if self.groups == -1 else self.groups
        if groups > dim:
            raise ValueError(
                f"Number of groups ({groups}) cannot be more than the number of channels "
                f"({dim}). Received: groups={self.groups}"
            )
        if dim % groups:
            raise ValueError(
                f"The number of channels ({dim}) must be a multiple of the number of groups "
                f"({groups}). Received: groups={self.groups}"
            )
        self._axis, self._groups = axis, groups
        self._build_affine((int(dim),), self.scale, self.center)
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: int(dim)})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        shape = inputs.shape
        ax, groups = self._axis, self._groups
        gshape = (*shape[:ax], groups, shape[ax] // groups, *shape[ax + 1 :])
        x = ops.reshape(inputs, gshape)
        red = tuple(i for i in range(1, len(gshape)) if i != ax)
        mean = ops.mean(x, axis=red, keepdims=True)
        xc = ops.subtract(x, mean)
        var = ops.mean(ops.square(xc), axis=red, keepdims=True)
        out = ops.reshape(
            ops.multiply(xc, ops.divide(1.0, ops.sqrt(ops.add(var, self.epsilon)))), shape
        )
        bshape = tuple(-1 if i == ax else 1 for i in range(len(shape)))
        return self._scale_and_shift(out, lambda v: ops.reshape(v, bshape))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "groups": self.groups,
                "axis": self.axis,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
            }
        )
        cfg.update(_weights_config(self))
        return cfg


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over `axis`: `x / sqrt(max(sum(x**2), 1e-12))`.

    Args:
        axis: Axis or list of axes to normalize over.
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis: int | list[int] = [_check_int_axis(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(
                "Invalid value for `axis` argument: expected an int or a list/tuple of ints. "
                f"Received: axis={axis!r}"
            )
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        sq = ops.sum(ops.square(inputs), axis=axis, keepdims=True)
        return ops.multiply(inputs, ops.divide(1.0, ops.sqrt(ops.maximum(sq, 1e-12))))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg
