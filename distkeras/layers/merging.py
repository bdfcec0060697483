"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot."""

from __future__ import annotations

from typing import Any

from distkeras import ops
from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.layer import Layer


class Merge(Layer):
    """Base of the elementwise merge layers: inputs broadcast against each other."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _check_inputs(self, input_shape: Any) -> None:
        if (
            not isinstance(input_shape, (list, tuple))
            or not input_shape
            or not isinstance(input_shape[0], (list, tuple))
        ):
            raise ValueError(
                f"A merge layer should be called on a list of inputs. "
                f"Received: input_shape={input_shape}"
            )
        if len(input_shape) < self._min_inputs:
            raise ValueError(
                f"A `{type(self).__name__}` layer should be called on a list of at least "
                f"{self._min_inputs} inputs. Received: {len(input_shape)} inputs "
                f"(input_shape={input_shape})"
            )

    _min_inputs = 1

    def build(self, input_shape: Any) -> None:
        self._check_inputs(input_shape)
        self.built = True

    def _merge(self, xs: list) -> Tensor:
        raise NotImplementedError

    def call(self, inputs: list, mask: Any = None) -> Tensor:
        return self._merge(list(inputs))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self._check_inputs(input_shape)
        out: list = []
        for shape in input_shape:
            shape = list(shape)
            if len(shape) > len(out):
                out = [1] * (len(shape) - len(out)) + out
            for i in range(1, len(shape) + 1):
                a, b = out[-i], shape[-i]
                if a is None or b is None:
                    known = [d for d in (a, b) if d not in (None, 1)]
                    out[-i] = known[0] if known else None
                elif a == 1:
                    out[-i] = b
                elif b != 1 and a != b:
                    raise ValueError(
                        f"Inputs of {type(self).__name__} have incompatible shapes. "
                        f"Received: input_shape={input_shape}"
                    )
        return tuple(out)

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if previous_mask is None or not isinstance(previous_mask, (list, tuple)):
            return previous_mask
        masks = [m for m in previous_mask if m is not None]
        if not masks:
            return None
        xp = current_module()
        out = masks[0]
        for m in masks[1:]:
            out = xp.logical_and(out, m)
        return out


class Add(Merge):
    """Elementwise sum of the inputs."""

    def _merge(self, xs: list) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.add(out, x)
        return out


class Subtract(Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""

    _min_inputs = 2

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                "A `Subtract` layer should be called on exactly 2 inputs. "
                f"Received: {len(input_shape)} inputs"
            )

    def _merge(self, xs: list) -> Tensor:
        return ops.subtract(xs[0], xs[1])


class Multiply(Merge):
    """Elementwise product of the inputs."""

    def _merge(self, xs: list) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.multiply(out, x)
        return out


class Average(Merge):
    """Elementwise mean of the inputs."""

    def _merge(self, xs: list) -> Tensor:
        return ops.divide(Add._merge(self, xs), float(len(xs)))


class Maximum(Merge):
    """Elementwise maximum of the inputs."""

    def _merge(self, xs: list) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.maximum(out, x)
        return out


class Minimum(Merge):
    """Elementwise minimum of the inputs."""

    def _merge(self, xs: list) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = ops.minimum(out, x)
        return out


class Concatenate(Merge):
    """Joins the inputs along `axis`.

    Args:
        axis: The concatenation axis (default -1).
    """

    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def build(self, input_shape: Any) -> None:
        self._check_inputs(input_shape)
        self._check_shapes(input_shape)
        self.built = True

    def _check_shapes(self, input_shape: Any) -> None:
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            raise ValueError(
                "A `Concatenate` layer requires inputs with matching shapes except for the "
                f"concatenation axis. Received: input_shape={input_shape}"
            )
        rank = ranks.pop()
        axis = self.axis % rank
        for i in range(rank):
            if i == axis:
                continue
            sizes = {s[i] for s in input_shape if s[i] is not None}
            if len(sizes) > 1:
                raise ValueError(
                    "A `Concatenate` layer requires inputs with matching shapes except for the "
                    f"concatenation axis. Received: input_shape={input_shape}"
                )

    def _merge(self, xs: list) -> Tensor:
        return ops.concatenate(xs, axis=self.axis)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        self._check_inputs(input_shape)
        self._check_shapes(input_shape)
        rank = len(input_shape[0])
        axis = self.axis % rank
        out = list(input_shape[0])
        sizes = [s[axis] for s in input_shape]
        out[axis] = None if any(s is None for s in sizes) else sum(sizes)
        for i in range(rank):
            if i != axis and out[i] is None:
                out[i] = next((s[i] for s in input_shape if s[i] is not None), None)
        return tuple(out)

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if previous_mask is None or all(m is None for m in previous_mask):
            return None
        xp = current_module()
        if self.axis % len(inputs[0].shape) != len(inputs[0].shape) - 1:
            masks = [
                xp.ones(x.shape[:-1], dtype=bool) if m is None else m
                for x, m in zip(inputs, previous_mask)
            ]
            return xp.concatenate(masks, axis=self.axis)
        out = None
        for m in previous_mask:
            if m is not None:
                out = m if out is None else xp.logical_and(out, m)
        return out

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


class Dot(Merge):
    """Dot product between two tensors along `axes` (per sample).

    Args:
        axes: An int or a pair of ints (the axes of each input to contract).
        normalize: L2-normalize each input along its axis first (cosine proximity).
    """

    _min_inputs = 2

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(axes, int) and not (
            isinstance(axes, (list, tuple))
            and len(axes) == 2
            and all(isinstance(a, int) for a in axes)
        ):
            raise ValueError(
                f"Invalid format for argument `axes`: expected an int or a pair of ints. "
                f"Received: axes={axes!r}"
            )
        self.axes = axes if isinstance(axes, int) else list(axes)
        self.normalize = bool(normalize)
        self.supports_masking = False

    def _axes(self, input_shape: Any) -> tuple[int, int]:
        r1, r2 = len(input_shape[0]), len(input_shape[1])
        a = self.axes if isinstance(self.axes, list) else [self.axes, self.axes]
        return a[0] % r1, a[1] % r2

    def build(self, input_shape: Any) -> None:
        self._check_inputs(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                f"A `Dot` layer should be called on exactly 2 inputs. "
                f"Received: {len(input_shape)} inputs"
            )
        a1, a2 = self._axes(input_shape)
        s1, s2 = input_shape[0][a1], input_shape[1][a2]
        if s1 is not None and s2 is not None and s1 != s2:
            raise ValueError(
                f"Incompatible input shapes for Dot: axis values {s1} (at axis {a1}) != "
                f"{s2} (at axis {a2}). Received: input_shape={input_shape}"
            )
        self.built = True

    def _merge(self, xs: list) -> Tensor:
        x1, x2 = xs
        a1, a2 = self._axes([x1.shape, x2.shape])
        if self.normalize:
            x1 = ops.divide(x1, ops.maximum(ops.norm(x1, axis=a1, keepdims=True), 1e-12))
            x2 = ops.divide(x2, ops.maximum(ops.norm(x2, axis=a2, keepdims=True), 1e-12))
        # Batched contraction: move the contracted axes last/first and use matmul.
        x1 = ops.moveaxis(x1, a1, -1)
        x2 = ops.moveaxis(x2, a2, 1)
        b = x1.shape[0]
        left = ops.reshape(x1, (b, -1, x1.shape[-1]))
        right = ops.reshape(x2, (b, x2.shape[1], -1))
        out = ops.matmul(left, right)
        shape = (b, *x1.shape[1:-1], *x2.shape[2:])
        out = ops.reshape(out, shape)
        if len(shape) == 1:
            out = ops.expand_dims(out, -1)
        return out

    def compute_output_shape(self, input_shape: Any) -> tuple:
        a1, a2 = self._axes(input_shape)
        s1 = [d for i, d in enumerate(input_shape[0]) if i != a1]
        s2 = [d for i, d in enumerate(input_shape[1]) if i != a2][1:]
        out = tuple(s1 + s2)
        return out if len(out) > 1 else (*out, 1)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update({"axes": self.axes, "normalize": self.normalize})
        return cfg


def add(inputs: list, **kwargs: Any) -> Any:
    """Functional form of `Add`."""
    return Add(**kwargs)(inputs)


def subtract(inputs: list, **kwargs: Any) -> Any:
    """Functional form of `Subtract`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: list, **kwargs: Any) -> Any:
    """Functional form of `Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs: list, **kwargs: Any) -> Any:
    """Functional form of `Average`."""
    return Average(**kwargs)(inputs)


def maximum(inputs: list, **kwargs: Any) -> Any:
    """Functional form of `Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: list, **kwargs: Any) -> Any:
    """Functional form of `Minimum`."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: list, axis: int = -1, **kwargs: Any) -> Any:
    """Functional form of `Concatenate`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: list, axes: Any = -1, normalize: bool = False, **kwargs: Any) -> Any:
    """Functional form of `Dot`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
