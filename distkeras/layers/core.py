"""Core layers: Input, Dense, Activation, Dropout, Flatten, Reshape, Permute,
RepeatVector, Lambda, ActivityRegularization, Identity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras import activations, constraints, initializers, ops, regularizers
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor
from distkeras.backend.random import SeedGenerator
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.keras_tensor import KerasTensor, Node
from distkeras.layers.lambda_layer import Lambda  # noqa: F401 - its home was this module
from distkeras.layers.layer import Layer, auto_name


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


class InputLayer(Layer):
    """The entry point of a model: holds the input shape and dtype.

    Args:
        shape: Input shape without the batch axis.
        batch_size: Optional fixed batch size.
        dtype: Input dtype.
        batch_shape: Full shape including the batch axis (instead of shape/batch_size).
        name: Layer name.
    """

    def __init__(
        self,
        shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        dtype: Any = None,
        sparse: bool | None = None,
        batch_shape: Sequence[int | None] | None = None,
        input_tensor: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        kwargs.pop("trainable", None)
        if "input_shape" in kwargs and shape is None:
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs and batch_shape is None:
            batch_shape = kwargs.pop("batch_input_shape")
        super().__init__(name=name or auto_name("input_layer"), dtype=dtype, **kwargs)
        if sparse:
            raise ValueError(f"Sparse inputs are not supported. Received: sparse={sparse}")
        if shape is not None and batch_shape is not None:
            raise ValueError(
                "You cannot pass both `shape` and `batch_shape` at the same time. "
                f"Received: shape={shape}, batch_shape={batch_shape}"
            )
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument to Input. Received: shape=None")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size, *tuple(shape))
        for s in batch_shape:
            if s is not None and (not isinstance(s, (int, np.integer)) or s < 0):
                raise ValueError(
                    f"Input shape entries must be non-negative integers or None. "
                    f"Received: shape={tuple(batch_shape)[1:]}"
                )
        self.batch_shape = tuple(batch_shape)
        self.built = True
        out = KerasTensor(self.batch_shape, self.dtype, history=(self, 0, 0), name=self.name)
        node = Node(self, [])
        node.outputs = [out]  # `self.output` (Layer.output reads the first node)
        self._inbound_nodes.append(node)

    def get_config(self) -> dict:
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self.dtype,
            "sparse": False,
            "name": self.name,
        }


def Input(  # noqa: N802 - Keras's public name
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Sequence[int | None] | None = None,
    name: str | None = None,
    tensor: Any = None,
) -> KerasTensor:
    """Creates a symbolic input tensor (the output of a new InputLayer)."""
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        batch_shape=batch_shape,
        name=name,
    )
    return layer.output


class Dense(Layer):
    """`output = activation(dot(input, kernel) + bias)`.

    Args:
        units: Positive integer, dimensionality of the output.
        activation: Activation function (none when omitted).
        use_bias: Whether to add a bias vector.
        kernel_initializer, bias_initializer: Initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: Regularizers.
        kernel_constraint, bias_constraint: Constraints.

    Input shape: `(batch_size, ..., input_dim)`. Output shape: `(batch_size, ..., units)`.
    """

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = _positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the input to Dense layer {self.name!r} must be defined. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        else:
            self.bias = None
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        act = self.activation
        # One fused node for matmul + bias (+ relu): the same values as composing
        # them, with less memory traffic, and weight gradients written straight
        # into the trainer's fused gradient buffer.
        x = P.dense(inputs, self.kernel, self.bias, relu=act is activations.relu)
        if act is None or act is activations.linear or act is activations.relu:
            return x
        return act(x)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
            }
        )
        return cfg


class Activation(Layer):
    """Applies an activation function.

    Args:
        activation: Activation function or its name.
    """

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["activation"] = activations.serialize(self.activation)
        return cfg


class Dropout(Layer):
    """Randomly zeroes a fraction `rate` of inputs in training, scaling the rest by 1/(1-rate).

    Randomness and workers: by default each process draws its masks from the
    layer's own stream (seeded by `seed`, else by the global seed; data-parallel
    training folds the rank into it once, so ranks seeded alike draw independent
    masks), so a run repeats exactly for the same seeds and the same number of
    workers, but
    N workers draw other masks than one process (equally random: the trained
    weights differ, not their statistics). In deterministic mode
    (`distkeras.distributed.initialize(deterministic=True)`) a sample's mask
    depends only on the global seed, the training step and the sample's index
    in the global batch, never on the rank or the local batch size, so any
    number of workers up to `DISTKERAS_MICRO_SHARDS` (4) trains
    bitwise-identical weights. The same holds for every
    random layer (SpatialDropout, GaussianNoise, GaussianDropout, AlphaDropout,
    attention and recurrent dropout, the Random* image augmentations).

    Args:
        rate: Float in [0, 1), fraction of the inputs to drop.
        noise_shape: Shape of the binary mask, broadcast against the input
            (None entries take the input's size).
        seed: Seed of the layer's random stream.
    """

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(
                "Invalid value received for argument `rate`. Expected a float value between "
                f"0 and 1. Received: rate={rate!r}"
            )
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(inputs.shape, self.noise_shape))
        keep = 1.0 - self.rate
        u = self.seed_generator.random(shape, dtype=inputs.dtype)
        mask = (u < keep).astype(inputs.dtype)
        mask *= 1.0 / keep
        return ops.multiply(inputs, mask)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed})
        return cfg


class Flatten(Layer):
    """Flattens every axis but the batch axis.

    Args:
        data_format: 'channels_last' (default) or 'channels_first'; with
            channels_first the channels axis is moved last before flattening.
    """

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(
                "data_format must be 'channels_last' or 'channels_first'. "
                f"Received: data_format={data_format!r}"
            )
        self.data_format = data_format or "channels_last"
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.data_format == "channels_first" and x.ndim > 2:
            x = ops.transpose(x, (0, *range(2, x.ndim), 1))
        return ops.reshape(x, (x.shape[0], -1))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        rest = tuple(input_shape)[1:]
        n = None if any(s is None for s in rest) else int(np.prod(rest)) if rest else 1
        return (input_shape[0], n)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


class Reshape(Layer):
    """Reshapes the non-batch axes to `target_shape` (one entry may be -1).

    Args:
        target_shape: Output shape without the batch axis.
    """

    def __init__(self, target_shape: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape)
        if sum(1 for s in target_shape if s == -1) > 1 or any(
            not isinstance(s, (int, np.integer)) or (s < 1 and s != -1) for s in target_shape
        ):
            raise ValueError(
                "target_shape entries must be positive integers with at most one -1. "
                f"Received: target_shape={target_shape}"
            )
        self.target_shape = target_shape

    def _resolve(self, input_shape: Sequence[int | None]) -> tuple:
        rest = tuple(input_shape)[1:]
        if -1 not in self.target_shape:
            known = int(np.prod(self.target_shape))
            if all(s is not None for s in rest) and int(np.prod(rest)) != known:
                raise ValueError(
                    f"Cannot reshape an input of shape {tuple(input_shape)} to "
                    f"target_shape={self.target_shape}: total sizes differ."
                )
            return self.target_shape
        if any(s is None for s in rest):
            return tuple(None if s == -1 else s for s in self.target_shape)
        total = int(np.prod(rest))
        known = int(np.prod([s for s in self.target_shape if s != -1]))
        if known == 0 or total % known:
            raise ValueError(
                f"Cannot reshape an input of shape {tuple(input_shape)} to "
                f"target_shape={self.target_shape}."
            )
        return tuple(total // known if s == -1 else s for s in self.target_shape)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.reshape(inputs, (inputs.shape[0], *self._resolve(inputs.shape)))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], *self._resolve(input_shape))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["target_shape"] = list(self.target_shape)
        return cfg


class Permute(Layer):
    """Permutes the non-batch axes; `dims` is 1-indexed, e.g. (2, 1).

    Args:
        dims: A permutation of 1..ndim-1.
    """

    def __init__(self, dims: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in "
                f"`dims` must be consecutive and start from 1. Received: dims={dims}"
            )
        self.dims = dims
        self.input_spec = InputSpec(ndim=len(dims) + 1)

    def call(self, inputs: Tensor) -> Tensor:
        return ops.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        s = tuple(input_shape)
        return (s[0], *(s[d] for d in self.dims))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["dims"] = list(self.dims)
        return cfg


class RepeatVector(Layer):
    """Repeats a (batch, features) input n times: output (batch, n, features).

    Args:
        n: Number of repetitions.
    """

    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.n = _positive_int("n", n)
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs: Tensor) -> Tensor:
        x = ops.expand_dims(inputs, 1)
        return ops.broadcast_to(x, (inputs.shape[0], self.n, inputs.shape[1]))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["n"] = self.n
        return cfg


class ActivityRegularization(Layer):
    """Identity layer that adds l1 * sum|x| + l2 * sum x^2 (per sample) to the losses.

    Args:
        l1: L1 factor.
        l2: L2 factor.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"l1 and l2 must be non-negative. Received: l1={l1}, l2={l2}")
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("activity_regularizer", None)
        cfg.update({"l1": self.l1, "l2": self.l2})
        return cfg


class Identity(Layer):
    """Returns its input unchanged."""

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape
