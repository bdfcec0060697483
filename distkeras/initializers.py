"""Weight initializers, as in `keras.initializers`.

An initializer is called as `init(shape, dtype=None)` and returns an array on
the current array module (NumPy or CuPy) with the requested dtype (the default
float type when omitted). Random initializers draw from a `SeedGenerator`: an
integer seed gives the same values at every call, as in Keras 3; with
`seed=None` each instance takes a fresh seed from the global stream, so
`distkeras.backend.random.set_global_seed(s)` makes them reproducible.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from distkeras.backend import current_module, standardize_dtype
from distkeras.backend.autodiff import Tensor, Variable
from distkeras.backend.random import SeedGenerator, global_seed_generator
from distkeras.saving.serialization_lib import (
    deserialize_keras_object,
    get_from_identifier,
    serialize_keras_object,
)


class Initializer:
    """Base class: subclasses implement `__call__(shape, dtype=None)`."""

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        raise NotImplementedError("Initializer subclasses must implement the `__call__()` method.")

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-friendly dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        """Builds an initializer from `get_config()` output."""
        return cls(**config)

    def clone(self) -> Initializer:
        """Returns a new initializer with the same configuration."""
        return self.__class__.from_config(self.get_config())


def _shape(shape: Any) -> tuple:
    return tuple(int(s) for s in shape)


# ------------------------------------------------------------------ constants
class Zeros(Initializer):
    """Fills with 0."""

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        return current_module().zeros(_shape(shape), dtype=standardize_dtype(dtype))


class Ones(Initializer):
    """Fills with 1."""

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        return current_module().ones(_shape(shape), dtype=standardize_dtype(dtype))


class Constant(Initializer):
    """Fills with a constant (a scalar, or an array that broadcasts to the shape).

    Args:
        value: The fill value.
    """

    def __init__(self, value: Any = 0.0):
        self.value = value

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        xp = current_module()
        dtype = standardize_dtype(dtype)
        value = self.value.data if isinstance(self.value, Tensor) else self.value
        if isinstance(value, np.ndarray) and xp is not np:
            value = xp.asarray(value)
        return xp.asarray(value, dtype=dtype) * xp.ones(_shape(shape), dtype=dtype)

    def get_config(self) -> dict:
        return {"value": serialize_keras_object(self.value)}


class Identity(Initializer):
    """The identity matrix times `gain` (2D shapes only).

    Args:
        gain: Multiplicative factor.
    """

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        dtype = standardize_dtype(dtype)
        return (self.gain * current_module().eye(*shape, dtype=dtype)).astype(dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain}


# ------------------------------------------------------------------ random
class RandomInitializer(Initializer):
    """Base class for initializers that draw random numbers.

    Args:
        seed: An integer (same values at every call), a `SeedGenerator`
            (advances at every call), or None (a fresh seed drawn from the
            global stream when the initializer is created).
    """

    def __init__(self, seed: int | SeedGenerator | None = None):
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer, SeedGenerator))
        ):
            raise ValueError(
                "`seed` argument should be an instance of `SeedGenerator` or an integer. "
                f"Received: seed={seed!r}"
            )
        self._init_seed = seed
        self.seed = global_seed_generator().next_seed() if seed is None else seed

    def _generator(self) -> SeedGenerator:
        if isinstance(self.seed, SeedGenerator):
            return self.seed
        return SeedGenerator(int(self.seed))

    @staticmethod
    def _float_dtype(dtype: Any) -> str:
        dtype = standardize_dtype(dtype)
        if np.dtype(dtype).kind != "f":
            raise ValueError(
                f"Random initializers need a floating point dtype. Received: dtype={dtype!r}"
            )
        return dtype

    def get_config(self) -> dict:
        seed = self._init_seed
        if isinstance(seed, SeedGenerator):
            seed = seed.seed
        return {"seed": None if seed is None else int(seed)}


class RandomNormal(RandomInitializer):
    """Samples from a normal distribution.

    Args:
        mean: Mean of the distribution.
        stddev: Standard deviation of the distribution.
        seed: See `RandomInitializer`.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Any = None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        dtype = self._float_dtype(dtype)
        return self._generator().normal(_shape(shape), self.mean, self.stddev, dtype=dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomInitializer):
    """Samples from a normal distribution, redrawing values beyond two standard deviations.

    Args:
        mean: Mean of the distribution.
        stddev: Standard deviation before truncation.
        seed: See `RandomInitializer`.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Any = None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        dtype = self._float_dtype(dtype)
        gen = self._generator()
        return gen.truncated_normal(_shape(shape), self.mean, self.stddev, dtype=dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Samples uniformly from [minval, maxval).

    Args:
        minval: Lower bound.
        maxval: Upper bound.
        seed: See `RandomInitializer`.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Any = None):
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed=seed)

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        dtype = self._float_dtype(dtype)
        return self._generator().uniform(_shape(shape), self.minval, self.maxval, dtype=dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


def compute_fans(shape: tuple, input_axes=None, output_axes=None) -> tuple[int, int]:
    """Returns (fan_in, fan_out) of a weight shape, as Keras computes them.

    Dense kernels are (fan_in, fan_out); convolution kernels
    (*spatial, in_channels, out_channels) multiply both by the receptive field size.
    """
    shape = _shape(shape)
    if input_axes is not None and output_axes is not None:
        return (
            int(math.prod(shape[a] for a in input_axes)),
            int(math.prod(shape[a] for a in output_axes)),
        )
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("uniform", "truncated_normal", "untruncated_normal")


class VarianceScaling(RandomInitializer):
    """Scales the sample variance to `scale / n`, n chosen by `mode`.

    Args:
        scale: Positive scaling factor.
        mode: 'fan_in', 'fan_out' or 'fan_avg'.
        distribution: 'truncated_normal' ('normal'), 'untruncated_normal' or 'uniform'.
        seed: See `RandomInitializer`.
        input_axes: Optional axes whose product is fan_in.
        output_axes: Optional axes whose product is fan_out.
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Any = None,
        input_axes=None,
        output_axes=None,
    ):
        if not isinstance(scale, Real) or scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale!r}")
        if mode not in _MODES:
            raise ValueError(
                f"Invalid `mode` argument. Expected one of {_MODES}. Received: mode={mode!r}"
            )
        dist = str(distribution).lower()
        dist = "truncated_normal" if dist == "normal" else dist
        if dist not in _DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution` argument. Expected one of {_DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = dist
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed=seed)

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        dtype = self._float_dtype(dtype)
        shape = _shape(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        gen = self._generator()
        if self.distribution == "truncated_normal":
            # 0.879... is the stddev of a unit normal truncated to [-2, 2].
            stddev = math.sqrt(scale) / 0.87962566103423978
            return gen.truncated_normal(shape, 0.0, stddev, dtype=dtype)
        if self.distribution == "untruncated_normal":
            return gen.normal(shape, 0.0, math.sqrt(scale), dtype=dtype)
        limit = math.sqrt(3.0 * scale)
        return gen.uniform(shape, -limit, limit, dtype=dtype)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset whose config holds only the seed and axes."""

    _preset: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed: Any = None, input_axes=None, output_axes=None):
        scale, mode, dist = self._preset
        super().__init__(
            scale, mode, dist, seed=seed, input_axes=input_axes, output_axes=output_axes
        )

    def get_config(self) -> dict:
        cfg = RandomInitializer.get_config(self)
        return {**cfg, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out))."""

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(2 / (fan_in + fan_out))."""

    _preset = (1.0, "fan_avg", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(3 / fan_in)."""

    _preset = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(1 / fan_in)."""

    _preset = (1.0, "fan_in", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform in [-limit, limit], limit = sqrt(6 / fan_in)."""

    _preset = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with stddev sqrt(2 / fan_in)."""

    _preset = (2.0, "fan_in", "truncated_normal")


class Orthogonal(RandomInitializer):
    """A random orthogonal matrix (rows or columns orthonormal), times `gain`.

    Shapes of rank > 2 are treated as (prod(shape[:-1]), shape[-1]).

    Args:
        gain: Multiplicative factor.
        seed: See `RandomInitializer`.
    """

    def __init__(self, gain: float = 1.0, seed: Any = None):
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape: tuple, dtype: Any = None) -> Any:
        dtype = self._float_dtype(dtype)
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        xp = current_module()
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._generator().normal((max(rows, cols), min(rows, cols)), dtype="float64")
        q, r = xp.linalg.qr(a)
        q = q * xp.sign(xp.diagonal(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "gain": self.gain}


# Lower-case aliases exported by Keras 3.
zeros = Zeros
ones = Ones
constant = Constant
identity = Identity
random_normal = RandomNormal
truncated_normal = TruncatedNormal
random_uniform = RandomUniform
variance_scaling = VarianceScaling
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
lecun_uniform = LecunUniform
lecun_normal = LecunNormal
he_uniform = HeUniform
he_normal = HeNormal
orthogonal = Orthogonal

_CLASSES = (
    Initializer,
    Constant,
    Identity,
    Ones,
    Zeros,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
)
_SNAKE = {
    "Initializer": "initializer",
    "Constant": "constant",
    "Identity": "identity",
    "Ones": "ones",
    "Zeros": "zeros",
    "GlorotNormal": "glorot_normal",
    "GlorotUniform": "glorot_uniform",
    "HeNormal": "he_normal",
    "HeUniform": "he_uniform",
    "LecunNormal": "lecun_normal",
    "LecunUniform": "lecun_uniform",
    "Orthogonal": "orthogonal",
    "RandomNormal": "random_normal",
    "RandomUniform": "random_uniform",
    "TruncatedNormal": "truncated_normal",
    "VarianceScaling": "variance_scaling",
}
ALL_OBJECTS_DICT: dict[str, type] = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({_SNAKE[cls.__name__]: cls for cls in _CLASSES})
ALL_OBJECTS_DICT.update(
    {
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
        "normal": RandomNormal,
        "uniform": RandomUniform,
        "one": Ones,
        "zero": Zeros,
    }
)


def state_variable(initializer: Any, shape: tuple, dtype: str, name: str | None) -> Variable:
    """A non-trainable Variable (metric or optimizer state) of `shape` and `dtype`.

    Args:
        initializer: A callable `(shape, dtype)`, 'zeros', 'ones', another
            initializer name, or a number to fill with.
        shape: Shape of the variable.
        dtype: Its dtype.
        name: Its name.
    """
    if callable(initializer):
        return Variable(initializer, shape=shape, dtype=dtype, trainable=False, name=name)
    fill = {"zeros": 0, "ones": 1}.get(initializer, initializer)
    if isinstance(fill, str):
        return Variable(get(fill), shape=shape, dtype=dtype, trainable=False, name=name)
    value = current_module().full(shape, fill, dtype=dtype)
    return Variable(value, dtype=dtype, trainable=False, name=name)


def serialize(initializer: Initializer) -> dict:
    """Returns the Keras 3 config dict of an initializer."""
    return serialize_keras_object(initializer)


def deserialize(config: dict | str, custom_objects: dict | None = None) -> Initializer:
    """Rebuilds an initializer from `serialize` output or a name."""
    return deserialize_keras_object(
        config,
        module_objects=ALL_OBJECTS_DICT,
        custom_objects=custom_objects,
        printable_module_name="initializer",
    )


def _from_value(value: Any):
    expected = tuple(value.shape)

    def initialize_fn(shape: tuple, dtype: Any = None) -> Any:
        if _shape(shape) != expected:
            raise ValueError(
                f"Expected `shape` to be {expected} for direct tensor as initializer. "
                f"Received: shape={tuple(shape)}"
            )
        data = value.data if isinstance(value, Tensor) else value
        return current_module().asarray(data).astype(standardize_dtype(dtype))

    return initialize_fn


def get(identifier: Any) -> Any:
    """Resolves an initializer identifier.

    Args:
        identifier: None, a name ('glorot_uniform', 'GlorotUniform', ...), a
            config dict, an initializer class or instance, a callable, or an
            array/Tensor used as the initial value.

    Returns:
        A callable `init(shape, dtype=None)`, or None for None.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return None
    if isinstance(identifier, (Tensor, np.ndarray, np.generic)) or type(
        identifier
    ).__module__.startswith("cupy"):
        return _from_value(identifier)
    return get_from_identifier(identifier, ALL_OBJECTS_DICT, "initializer")
