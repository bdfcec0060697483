"""Reverse-mode automatic differentiation over array-valued nodes.

A `Tensor` wraps one array (`.data`). Operations are recorded only while a
`GradientTape` is active and outside `no_grad()`, and only when an input needs
a gradient, so inference records nothing. Each primitive (see `primitives.py`)
returns its output together with a vector-Jacobian product closure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from distkeras import backend as _backend

_STATE = {"tapes": 0, "no_grad": 0}
# dtype -> its name: NumPy computes `dtype.name` in Python on every access (~4 us),
# and `Tensor.dtype` is read on every layer call.
_DTYPE_NAMES: dict = {}


def dtype_name(dtype: Any) -> str:
    """`dtype.name`, cached per dtype object."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def is_recording() -> bool:
    """True inside an active GradientTape and outside `no_grad()`."""
    return _STATE["tapes"] > 0 and _STATE["no_grad"] == 0


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager under which no operation is recorded."""
    _STATE["no_grad"] += 1
    try:
        yield
    finally:
        _STATE["no_grad"] -= 1


class Tensor:
    """An array plus, when recorded, the parents and VJP that produced it."""

    __slots__ = ("data", "requires_grad", "_parents", "_vjp", "_keras_mask", "__weakref__")
    __array_priority__ = 100

    def __init__(self, data: Any, requires_grad: bool = False, parents=None, vjp=None):
        self.data = data
        self.requires_grad = requires_grad
        self._parents = parents
        self._vjp = vjp
        self._keras_mask = None

    # -- array-like surface ---------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> str:
        return dtype_name(self.data.dtype)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    def numpy(self) -> np.ndarray:
        """Returns the value as a NumPy array (a host copy on GPU)."""
        return _backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        arr = _backend.to_numpy(self.data)
        return arr if dtype is None else arr.astype(dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<Tensor shape={self.shape} dtype={self.dtype}\n{self.numpy()!r}>"

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- operators --------------------------------------------------------
    def __add__(self, o):
        return P.add(self, o)

    def __radd__(self, o):
        return P.add(o, self)

    def __sub__(self, o):
        return P.subtract(self, o)

    def __rsub__(self, o):
        return P.subtract(o, self)

    def __mul__(self, o):
        return P.multiply(self, o)

    def __rmul__(self, o):
        return P.multiply(o, self)

    def __truediv__(self, o):
        return P.divide(self, o)

    def __rtruediv__(self, o):
        return P.divide(o, self)

    def __pow__(self, o):
        return P.power(self, o)

    def __rpow__(self, o):
        return P.power(o, self)

    def __matmul__(self, o):
        return P.matmul(self, o)

    def __rmatmul__(self, o):
        return P.matmul(o, self)

    def __neg__(self):
        return P.negative(self)

    def __abs__(self):
        return P.absolute(self)

    def __getitem__(self, key):
        return P.getitem(self, key)

    def __lt__(self, o):
        return Tensor(self.data < _data(o))

    def __le__(self, o):
        return Tensor(self.data <= _data(o))

    def __gt__(self, o):
        return Tensor(self.data > _data(o))

    def __ge__(self, o):
        return Tensor(self.data >= _data(o))

    def __eq__(self, o):  # type: ignore[override]
        return Tensor(self.data == _data(o))

    def __ne__(self, o):  # type: ignore[override]
        return Tensor(self.data != _data(o))

    @property
    def T(self):
        return P.transpose(self)

    def astype(self, dtype) -> Tensor:
        return P.cast(self, dtype)

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return P.reshape(self, shape)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


class Variable(Tensor):
    """A mutable, named tensor holding a layer's or optimizer's state.

    Args:
        initializer: An array-like initial value, or a callable
            `initializer(shape, dtype)`.
        shape: Shape, needed when `initializer` is a callable.
        dtype: Dtype name; the default float type when omitted.
        trainable: Whether gradients are computed for it by default.
        name: A name, used in weight files and summaries.
    """

    __slots__ = ("name", "_trainable", "constraint", "path")

    def __init__(
        self,
        initializer: Any,
        shape=None,
        dtype=None,
        trainable: bool = True,
        name: str | None = None,
        constraint: Callable | None = None,
    ):
        dtype = _backend.standardize_dtype(dtype) if dtype is not None else None
        xpm = _backend.current_module()
        if callable(initializer):
            if shape is None:
                raise ValueError(
                    "Variable: a callable initializer needs a shape. "
                    f"Received: initializer={initializer!r}, shape=None"
                )
            value = initializer(tuple(shape), dtype=dtype or _backend.floatx())
        else:
            value = initializer
        value = _data(value)
        if dtype is None:
            if (
                isinstance(value, (float, int))
                or (hasattr(value, "dtype") and np.dtype(value.dtype).kind == "f")
                or isinstance(value, (list, tuple))
            ):
                dtype = _backend.floatx() if not hasattr(value, "dtype") else value.dtype.name
        arr = xpm.array(value, dtype=dtype, copy=True)
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise ValueError(
                f"Variable {name!r}: initial value has shape {arr.shape}, expected {tuple(shape)}"
            )
        super().__init__(arr, requires_grad=bool(trainable))
        self.name = name or "variable"
        self.path = self.name
        self._trainable = bool(trainable)
        self.constraint = constraint

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.requires_grad = bool(value)

    @property
    def value(self) -> Tensor:
        """The current value as a Tensor (this variable itself, so gradients flow)."""
        return self

    def assign(self, value: Any) -> Variable:
        """Writes `value` into the variable in place (views stay valid)."""
        value = _data(value)
        if tuple(getattr(value, "shape", ())) != self.shape and np.shape(value) != self.shape:
            raise ValueError(
                f"Cannot assign a value of shape {np.shape(value)} to variable {self.path!r} "
                f"of shape {self.shape}."
            )
        if type(self.data) is np.ndarray:
            if _backend._is_device_array(value):
                value = value.get()  # a device value into a host variable
        elif isinstance(value, np.ndarray):
            value = _backend.current_module().asarray(value)
        self.data[...] = value
        return self

    def assign_add(self, value: Any) -> Variable:
        """Adds `value` in place."""
        self.data += _data(value)
        return self

    def assign_sub(self, value: Any) -> Variable:
        """Subtracts `value` in place."""
        self.data -= _data(value)
        return self

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"


def is_tensor(x: Any) -> bool:
    """True for distkeras Tensors and Variables."""
    return isinstance(x, Tensor)


def _holds_tensor(x: list | tuple) -> bool:
    return any(isinstance(v, Tensor) or (type(v) in (list, tuple) and _holds_tensor(v)) for v in x)


def convert_to_tensor(x: Any, dtype=None) -> Tensor:
    """Returns `x` as a Tensor on the current array module, cast to `dtype` if given.

    A (nested) list or tuple that holds Tensors is stacked, as in Keras, so
    gradients reach its elements.
    """
    if isinstance(x, Tensor):
        if dtype is not None and x.data.dtype != np.dtype(_backend.standardize_dtype(dtype)):
            return P.cast(x, dtype)
        return x
    if type(x) in (list, tuple) and _holds_tensor(x):
        return convert_to_tensor(P.stack([convert_to_tensor(v) for v in x]), dtype)
    xpm = _backend.current_module()
    if dtype is None:
        # Python data takes Keras's dtypes: floats floatx, ints int32 (NumPy's
        # defaults are float64 and int64).
        kind = np.asarray(x).dtype.kind if isinstance(x, (list, tuple)) else None
        if isinstance(x, float) or kind == "f":
            dtype = _backend.floatx()
        elif isinstance(x, bool):
            dtype = "bool"
        elif isinstance(x, int) or kind == "i":
            dtype = "int32"
            if kind == "i":
                _check_int32(x)
    else:
        dtype = _backend.standardize_dtype(dtype)
    if xpm is not np and isinstance(x, np.ndarray) or xpm is np and not isinstance(x, np.ndarray):
        x = _backend.to_numpy(x) if xpm is np else x
    arr = xpm.asarray(x, dtype=dtype)
    return Tensor(arr)


def _check_int32(x: Any) -> None:
    """Refuses Python ints beyond int32 (Keras's dtype for them) instead of wrapping."""
    arr = np.asarray(x)
    if arr.size and (arr.max() > 2**31 - 1 or arr.min() < -(2**31)):
        raise OverflowError(
            "Python integers are converted to int32, as in Keras, and these do not fit; "
            "pass dtype='int64' or a NumPy int64 array. Received: values from "
            f"{arr.min()} to {arr.max()}"
        )


def _to_device(x: np.ndarray) -> Any:
    """Moves a host array to the current array module (a no-op on NumPy)."""
    xpm = _backend.current_module()
    return x if xpm is np else xpm.asarray(x)


def apply(fn: Callable, *inputs: Any, **kwargs: Any) -> Tensor:
    """Runs primitive `fn` on the inputs' arrays and records it when needed.

    `fn(*arrays, **kwargs)` returns `(output_array, vjp)` where
    `vjp(g, needs)` returns one gradient (or None) per input.
    """
    arrays = []
    rec = False
    converted = None
    for i, x in enumerate(inputs):
        if type(x) in (list, tuple) and (i == 0 or getattr(fn, "tensor_inputs", False)):
            # Python data where the op takes a tensor, converted as Keras does (floats
            # to floatx, Tensors inside stacked): `ops.add([1.0], [2.0])` is [3.0],
            # never a list concatenation or a float64 result.
            x = convert_to_tensor(x)
            if converted is None:
                converted = list(inputs)
            converted[i] = x
        if isinstance(x, Tensor):
            arrays.append(x.data)
            if x.requires_grad:
                rec = True
        elif type(x) is np.ndarray and x.ndim:
            arrays.append(_to_device(x))  # host data given to an op (as Keras allows)
        else:
            arrays.append(x)
    if converted is not None:
        inputs = tuple(converted)
    out, vjp = fn(*arrays, **kwargs)
    if rec and _STATE["tapes"] and not _STATE["no_grad"]:
        return Tensor(out, True, inputs, vjp)
    return Tensor(out)


def backward(
    root: Tensor,
    output_gradient: Any = None,
    hook: Callable[[Tensor, Any], None] | None = None,
    sinks: dict[int, Any] | None = None,
) -> dict[int, Any]:
    """Propagates gradients from `root` to every leaf that requires them.

    Args:
        root: The tensor to differentiate.
        output_gradient: Upstream gradient; ones when omitted.
        hook: Called as `hook(leaf, grad)` the moment a leaf's gradient is final
            (used to start all-reduces during backward).
        sinks: Optional `id(leaf) -> array` destinations (views of a fused
            gradient buffer). A primitive whose VJP accepts `outs` writes the
            gradient of a leaf it alone consumes straight into its sink.

    Returns:
        A dict from `id(leaf)` to its gradient array.
    """
    if output_gradient is None:
        output_gradient = _backend.current_module().ones_like(root.data)
    else:
        output_gradient = _data(output_gradient)
    # Pass 1: how many recorded consumers each reachable tensor has.
    pending: dict[int, int] = {}
    stack: list[Tensor] = [root]
    while stack:
        parents = stack.pop()._parents
        if not parents:
            continue
        for p in parents:
            if isinstance(p, Tensor) and p.requires_grad:
                k = id(p)
                if k in pending:
                    pending[k] += 1
                else:
                    pending[k] = 1
                    stack.append(p)
    consumers = dict(pending) if sinks else pending
    # Pass 2: a tensor runs its VJP once every consumer has passed its gradient on
    # (a reverse topological order); a leaf's gradient is final at that moment.
    grads: dict[int, Any] = {id(root): output_gradient}
    leaves: dict[int, Any] = {}
    ready: list[Tensor] = [root]
    while ready:
        node = ready.pop()
        g = grads.pop(id(node), None)
        parents = node._parents
        if not parents:
            if g is not None:
                leaves[id(node)] = g
                if hook is not None:
                    hook(node, g)
            continue
        needs = tuple([isinstance(p, Tensor) and p.requires_grad for p in parents])
        if g is None:  # nothing reached this node: pass the turn on
            pgrads: Any = (None,) * len(parents)
        elif sinks and getattr(node._vjp, "accepts_out", False):
            outs = tuple(
                [
                    sinks.get(id(p)) if need and consumers.get(id(p)) == 1 else None
                    for p, need in zip(parents, needs)
                ]
            )
            pgrads = node._vjp(g, needs, outs)
        else:
            pgrads = node._vjp(g, needs)
        for p, need, pg in zip(parents, needs, pgrads):
            if not need:
                continue
            k = id(p)
            if pg is not None:
                prev = grads.get(k)
                grads[k] = pg if prev is None else prev + pg
            left = pending[k] - 1
            pending[k] = left
            if not left:
                ready.append(p)
    return leaves


class GradientTape:
    """Records operations for differentiation, as `tf.GradientTape`.

    Args:
        persistent: Allow more than one `gradient` call.
        watch_accessed_variables: Trainable variables are watched automatically.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._watched: list[Tensor] = []
        self._used = False
        self._active = False
        self._saved_trainable: list[tuple[Variable, bool]] = []

    def __enter__(self) -> GradientTape:
        _STATE["tapes"] += 1
        self._active = True
        if not self.watch_accessed_variables:
            raise NotImplementedError(
                "GradientTape(watch_accessed_variables=False) is not supported. "
                "Received: watch_accessed_variables=False"
            )
        return self

    def __exit__(self, *exc) -> None:
        _STATE["tapes"] -= 1
        self._active = False
        for t in self._watched:
            if not isinstance(t, Variable):
                continue
            t.requires_grad = t.trainable

    def watch(self, tensor: Any) -> None:
        """Marks tensors (or a list of them) as needing gradients."""
        for t in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            if not isinstance(t, Tensor):
                raise TypeError(
                    "GradientTape.watch expects Tensors or Variables "
                    "(use distkeras.ops.convert_to_tensor on arrays first). "
                    f"Received: tensor of type {type(t).__name__}"
                )
            t.requires_grad = True
            self._watched.append(t)

    def gradient(self, target: Any, sources: Any, output_gradients: Any = None):
        """Returns d(target)/d(sources), with the structure of `sources`.

        Sources not connected to the target get None, as in TensorFlow.
        """
        if self._used and not self.persistent:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of "
                "gradients. Use GradientTape(persistent=True) for more."
            )
        self._used = True
        targets = target if isinstance(target, (list, tuple)) else [target]
        outs = output_gradients
        if outs is not None and not isinstance(outs, (list, tuple)):
            outs = [outs]
        total: dict[int, Any] = {}
        # Watched variables count as differentiable for this tape even after it closed.
        restore = [t for t in self._watched if not t.requires_grad]
        for t in restore:
            t.requires_grad = True
        try:
            self._accumulate(targets, outs, total)
        finally:
            for t in restore:
                t.requires_grad = False
        return _map_structure(lambda s: _wrap(total.get(id(s))), sources)

    @staticmethod
    def _accumulate(targets: list, outs: Any, total: dict[int, Any]) -> None:
        for i, t in enumerate(targets):
            if not isinstance(t, Tensor) or not t.requires_grad:
                continue
            og = None if outs is None else outs[i]
            for k, g in backward(t, og).items():
                total[k] = g if k not in total else total[k] + g


def _wrap(g: Any) -> Tensor | None:
    return None if g is None else Tensor(g)


def _map_structure(fn: Callable, s: Any) -> Any:
    if isinstance(s, dict):
        return {k: _map_structure(fn, v) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return type(s)(_map_structure(fn, v) for v in s)
    return fn(s)


from distkeras.backend import primitives as P  # noqa: E402
