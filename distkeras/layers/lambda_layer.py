"""`Lambda`: a function of `distkeras.ops` as a layer, and what a file may name for one.

A Lambda read from a file names its function. In safe mode (the default) the
name is resolved only through tables: the registry, `custom_objects`, and
distkeras's own activations and size-bounded ops; the module the file names is
never imported and Python bytecode is refused. See SECURITY.md.
"""

from __future__ import annotations

import base64
import inspect
import marshal
import types
from collections.abc import Callable
from typing import Any

from distkeras import activations, ops
from distkeras.layers.layer import Layer


class Lambda(Layer):
    """Wraps a function of `distkeras.ops` as a layer; gradients flow through it.

    Args:
        function: Callable taking the input tensor (and `arguments`).
        output_shape: Optional output shape (traced on zeros when omitted).
        arguments: Extra keyword arguments passed to `function`.
    """

    def __init__(
        self,
        function: Callable,
        output_shape: Any = None,
        mask: Any = None,
        arguments: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(
                f"Lambda's `function` must be callable. Received: function={function!r}"
            )
        self.function = function
        self.arguments = arguments or {}
        self._output_shape = output_shape
        self.mask = mask

    def call(self, inputs: Any, training: bool = False) -> Any:
        kwargs = dict(self.arguments)
        if "training" in inspect.signature(self.function).parameters:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        return (
            input_shape[0] if not isinstance(input_shape, list) else None,
            *tuple(self._output_shape),
        )

    def get_config(self) -> dict:
        cfg = super().get_config()
        fn = self.function
        if getattr(fn, "__name__", "") == "<lambda>" or not _is_importable(fn):
            code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
            cfg["function"] = {"class_name": "__lambda__", "config": {"code": code}}
        else:
            from distkeras.saving import serialize_keras_object  # noqa: PLC0415

            cfg["function"] = serialize_keras_object(fn)
            cfg["function"]["module"] = fn.__module__  # the defining module, as Keras writes
        cfg["arguments"] = self.arguments
        if self._output_shape is not None and not callable(self._output_shape):
            cfg["output_shape"] = list(self._output_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict, safe_mode: bool | None = None) -> Lambda:
        """Rebuilds the layer; in safe mode only registered or distkeras functions load.

        A function given by name is looked up in `custom_objects`, the
        `register_keras_serializable` registry and distkeras's public functions
        (ops, activations); the module a file names is imported only with
        `safe_mode=False`. Python bytecode (`lambda`s) also needs `safe_mode=False`.
        """
        from distkeras.saving import serialization_lib  # noqa: PLC0415

        if safe_mode is None:
            safe_mode = serialization_lib.in_safe_mode()
        config = dict(config)
        fn_cfg = config.pop("function", None)
        if isinstance(fn_cfg, dict) and fn_cfg.get("class_name") == "__lambda__":
            if safe_mode:
                raise ValueError(
                    "Requested the deserialization of a Lambda layer whose function is Python "
                    "bytecode. This can run arbitrary code, so it is disallowed by default. "
                    "Pass `safe_mode=False` to the loading function (or call "
                    "`distkeras.config.enable_unsafe_deserialization()`) if you trust the source. "
                    "Received: safe_mode=True"
                )
            code = marshal.loads(base64.b64decode(fn_cfg["config"]["code"]))
            fn = types.FunctionType(code, globals())
        elif isinstance(fn_cfg, (dict, str)):
            with serialization_lib.SafeModeScope(safe_mode):
                fn = serialization_lib.deserialize_function(
                    fn_cfg, _public_functions(), "Lambda function"
                )
        elif callable(fn_cfg):  # a config built in Python, not read from a file
            fn = fn_cfg
        else:
            raise ValueError(f"Lambda's `function` config is not valid. Received: {fn_cfg!r:.120}")
        if safe_mode and any(fn is f for f in _public_functions().values()):
            _check_plain_arguments(config.get("arguments"))
        mask = config.get("mask")
        if mask is not None and not callable(mask):
            raise ValueError(
                f"Lambda's `mask` must be callable or None. Received: mask={mask!r:.80}"
            )
        return cls(fn, **config)


# Ops a file may name for a Lambda in safe mode: elementwise, reductions and reshapes,
# whose output stays within a small multiple of their input given the plain arguments
# `_check_plain_arguments` lets through (tile, pad, one_hot, zeros... are left out).
_SAFE_OPS = frozenset(
    """abs absolute ceil cos exp expm1 floor log log10 log1p log2 negative reciprocal round
    sign sin sqrt square tanh isfinite isnan logical_not stop_gradient cast clip
    add subtract multiply divide true_divide power pow maximum minimum equal not_equal greater
    greater_equal less less_equal logical_and logical_or logical_xor where
    all any amax amin max min mean sum prod std var argmax argmin argsort logsumexp norm cumsum
    count_nonzero reshape transpose squeeze expand_dims flatten ravel moveaxis swapaxes
    concatenate stack split""".split()
)


def _public_functions() -> dict[str, Callable]:
    """distkeras's functions that a file may name for a Lambda: activations and safe ops."""
    table = {name: getattr(ops, name) for name in _SAFE_OPS if hasattr(ops, name)}
    table.update(activations.ALL_OBJECTS_DICT)
    return table


def _check_plain_arguments(arguments: Any) -> None:
    """A file's arguments for a distkeras function: scalars, strings or short int lists.

    This keeps a loaded Lambda's output within a small multiple of its input.
    """
    if arguments is None:
        return
    if not isinstance(arguments, dict):
        raise ValueError(f"Lambda's `arguments` must be a dict. Received: {arguments!r:.80}")
    for key, value in arguments.items():
        scalar = value is None or isinstance(value, (bool, int, float, str))
        axes = (
            isinstance(value, (list, tuple))
            and len(value) <= 8
            and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value)
        )
        if not (scalar or axes):
            raise ValueError(
                "In safe mode, a Lambda that names a distkeras function takes only scalars, "
                "strings or lists of at most 8 integers as `arguments` (register a function "
                f"for anything else). Received: arguments[{key!r}]={value!r:.80}"
            )


def _is_importable(fn: Callable) -> bool:
    mod = getattr(fn, "__module__", None)
    if not mod or mod == "__main__" or "<locals>" in getattr(fn, "__qualname__", ""):
        return False
    import sys  # noqa: PLC0415

    return getattr(sys.modules.get(mod), getattr(fn, "__name__", ""), None) is fn
