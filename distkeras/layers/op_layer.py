"""Calls of `distkeras.ops` functions recorded in a Functional graph.

`x + inputs` or `ops.mean(x, axis=1)` on symbolic tensors creates one
`OpLayer` per call (Keras 3 creates one `Operation`). It holds only the op's
public name, so a saved graph stays plain data: loading looks the name up among
the public ops and never imports anything a file names. Keras 3's
`Model.layers` leaves such ops out; their nodes are still in the config.

The output shape and dtype come from running the op on stand-in arrays
(ones for floats, zeros for integers and booleans, so logs and indices stay
valid) twice, with every unknown size set to 8 and then to 13: an axis whose
length differs between the two runs is unknown (None) in the result.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.layers.keras_tensor import KerasTensor, Node
from distkeras.layers.layer import Layer, auto_name
from distkeras.ops.symbolic import any_symbolic, get_op

_TRIAL_SIZES = (8, 13)


class OpLayer(Layer):
    """One call of a public `distkeras.ops` function in a Functional graph.

    Created by calling an op on `KerasTensor`s; rarely built by hand.

    Args:
        function: Public name of the op in `distkeras.ops` (e.g. `"add"`).
        name: Layer name (the op's name, numbered, when omitted).
    """

    def __init__(self, function: str, name: str | None = None, **kwargs: Any):
        fn = get_op(function)
        super().__init__(name=name or auto_name(function), **kwargs)
        self.function = function
        self._fn = fn
        self.autocast = False
        self.built = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("training", None)
        if any_symbolic(args, kwargs):
            return self._symbolic_op_call(args, kwargs)
        return self._fn(*args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def _symbolic_op_call(self, args: tuple, kwargs: dict) -> Any:
        try:
            bound = inspect.signature(self._fn).bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"Invalid arguments for ops.{self.function}: {e}") from None
        if not args:  # the graph replays `op(first, *rest, **kwargs)`
            args, kwargs = tuple(bound.args), dict(bound.kwargs)
        if not args:
            raise ValueError(
                f"ops.{self.function} needs a positional argument to be recorded in a graph. "
                f"Received: kwargs={sorted(kwargs)}"
            )
        specs = infer_output_spec(self._fn, args, kwargs, self.function)
        node = Node(self, args[0], args[1:], kwargs)
        self._inbound_nodes.append(node)
        index = len(self._inbound_nodes) - 1
        if isinstance(specs, list):
            outs = [KerasTensor(s, d, history=(self, index, i)) for i, (s, d) in enumerate(specs)]
            node.outputs = outs
            return outs
        shape, dtype = specs
        out = KerasTensor(shape, dtype, history=(self, index, 0))
        node.outputs = [out]
        return out

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        """(shape, dtype) of the op's result on these (symbolic) arguments."""
        return infer_output_spec(self._fn, args, kwargs, self.function)

    @property
    def op_class_name(self) -> str:
        """The op's name as Keras 3 names its op classes ('add' -> 'Add'), for summaries."""
        return "".join(part.capitalize() for part in self.function.split("_"))

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["function"] = self.function
        return cfg


def _stand_in(x: Any, size: int) -> Any:
    """`x` with every KerasTensor replaced by an array of its shape (None -> size)."""
    if isinstance(x, KerasTensor):
        shape = tuple(size if d is None else d for d in x.shape)
        xp = current_module()
        fill = xp.ones if np.dtype(x.dtype).kind in "fc" else xp.zeros
        return Tensor(fill(shape, dtype=x.dtype))
    if isinstance(x, dict):
        return {k: _stand_in(v, size) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_stand_in(v, size) for v in x)
    return x


def _run(fn: Any, args: tuple, kwargs: dict, size: int) -> Any:
    with no_grad(), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*_stand_in(args, size), **_stand_in(kwargs, size))


def _specs(out: Any, name: str) -> Any:
    if isinstance(out, (list, tuple)):
        return [_specs(o, name) for o in out]
    if not isinstance(out, Tensor):
        raise TypeError(
            f"ops.{name} returned a {type(out).__name__}, not a tensor, so it cannot be "
            f"recorded in a graph. Received: {out!r}"
        )
    return tuple(out.shape), out.dtype


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, list):
        return [_merge(x, y) for x, y in zip(a, b)]
    (sa, dtype), (sb, _) = a, b
    if len(sa) != len(sb):
        return tuple(None for _ in sa), dtype
    return tuple(x if x == y else None for x, y in zip(sa, sb)), dtype


def _first_symbolic(x: Any) -> KerasTensor | None:
    if isinstance(x, KerasTensor):
        return x
    items = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else ()
    for v in items:
        found = _first_symbolic(v)
        if found is not None:
            return found
    return None


def infer_output_spec(fn: Any, args: tuple, kwargs: dict, name: str = "op") -> Any:
    """Shape(s) and dtype(s) of `fn(*args, **kwargs)` for symbolic arguments, without data.

    An op whose output sizes depend on the values (`unique`, `nonzero`) says so
    with a `_data_dependent_shape` attribute (True, or a function of `args` and
    `kwargs`): every size of its outputs is then unknown, as in Keras, since
    the stand-in data would fix them.

    Returns:
        `(shape, dtype)`, or a list of them when the op returns several tensors.

    Raises:
        ValueError: when the op rejects arguments of these shapes.
    """
    spec = _infer(fn, args, kwargs, name)
    depends = getattr(fn, "_data_dependent_shape", None)
    if depends is True or (callable(depends) and depends(args, kwargs)):
        return _unknown_sizes(spec)
    return spec


def _unknown_sizes(spec: Any) -> Any:
    if isinstance(spec, list):
        return [_unknown_sizes(s) for s in spec]
    shape, dtype = spec
    return tuple(None for _ in shape), dtype


def _infer(fn: Any, args: tuple, kwargs: dict, name: str) -> Any:
    try:
        first = _specs(_run(fn, args, kwargs, _TRIAL_SIZES[0]), name)
        second = _specs(_run(fn, args, kwargs, _TRIAL_SIZES[1]), name)
        return _merge(first, second)
    except TypeError:
        raise
    except Exception:  # noqa: BLE001 - retried with size 1 below
        # Unknown sizes facing known ones in broadcasting, say: retry with size 1,
        # which broadcasts against anything; only the batch axis stays unknown.
        try:
            only = _specs(_run(fn, args, kwargs, 1), name)
        except Exception as e:  # noqa: BLE001
            shapes = [t.shape for t in _flat_symbolic((args, kwargs))]
            raise ValueError(
                f"ops.{name} cannot be applied to symbolic tensors of shapes {shapes}: {e}"
            ) from e
        batch_unknown = _first_symbolic((args, kwargs)).shape[:1] == (None,)

        def unknown_batch(spec: Any) -> Any:
            if isinstance(spec, list):
                return [unknown_batch(s) for s in spec]
            shape, dtype = spec
            return ((None, *shape[1:]) if batch_unknown and shape else shape), dtype

        return unknown_batch(only)


def _flat_symbolic(x: Any) -> list:
    if isinstance(x, KerasTensor):
        return [x]
    items = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else ()
    return [t for v in items for t in _flat_symbolic(v)]
