"""A strict stand-in for CuPy: NumPy-backed arrays that refuse to mix with NumPy.

`set_backend("strict")` (or `DISTKERAS_BACKEND=strict`) makes `xp` this module.
Its arrays (`StrictArray`) compute with NumPy underneath, so results are
bit-identical to the 'numpy' backend, but they behave like `cupy.ndarray` at the
boundary with host memory:

- an operation that mixes a strict array with a plain `numpy.ndarray` (other
  than a 0-d one), a list or a tuple raises `TypeError` naming the operation;
- implicit conversion to NumPy (`np.asarray(a)`, `np.array(a)`) raises
  `TypeError`; the explicit ways out are `a.get()` and
  `distkeras.backend.to_numpy(a)`;
- reductions and scalar indexing return 0-d arrays, not NumPy scalars;
- `a.data` is a memory pointer, not the array (as in CuPy);
- `module.asarray(host_array)` copies (a host-to-device transfer).

NumPy functions called on strict arrays (`np.exp(a)`, `np.sum(a)`) dispatch
through `__array_ufunc__` / `__array_function__` as they do for CuPy arrays.
Running the training paths on this backend makes any hidden plain-NumPy use in
a compute path fail on a CPU-only CI machine.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import numpy as np

# Functions that accept host (NumPy) arrays: they are the host-to-device transfers.
_TRANSFER = frozenset(
    {"array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray", "frombuffer"}
)

# cupy.ndarray methods forwarded to the NumPy array underneath (results wrapped).
_METHODS = frozenset(
    {
        "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "choose",
        "clip", "compress", "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal",
        "dot", "fill", "flatten", "item", "max", "mean", "min", "nonzero", "partition",
        "prod", "put", "ravel", "repeat", "reshape", "round", "sort", "squeeze", "std",
        "sum", "swapaxes", "take", "tobytes", "tolist", "trace", "transpose", "var", "view",
    }
)  # fmt: skip
# Methods whose array arguments are shapes or indices that CuPy copies from the host.
_HOST_ARG_METHODS = frozenset({"transpose", "reshape", "take", "put"})


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"numpy.ndarray(shape={x.shape}, dtype={x.dtype})"
    return type(x).__name__


def _caller() -> str:
    """The first frame outside this module and NumPy: where the offending call is."""
    f = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if fn != __file__ and f"{os.sep}numpy{os.sep}" not in fn:
            return f"{fn}:{f.f_lineno}"
        f = f.f_back
    return "?"


def _refuse(op: str, x: Any) -> TypeError:
    return TypeError(
        f"strict backend: {op} received a host {_describe(x)} (at {_caller()}), which a "
        "device array module (CuPy) refuses. Move host data with xp.asarray(...) first, "
        "or bring device data to the host explicitly with .get() / "
        "distkeras.backend.to_numpy(...)."
    )


def _unwrap(x: Any, op: str, host_ok: bool = False) -> Any:
    """Replaces strict arrays by their NumPy arrays (recursively in lists/tuples/dicts)."""
    t = type(x)
    if t is StrictArray:
        return x._a
    if t is np.ndarray or isinstance(x, np.ndarray):
        if x.ndim == 0 or host_ok:
            return x
        raise _refuse(op, x)
    if t is list or t is tuple:
        return t(_unwrap(v, op, host_ok) for v in x)
    if t is dict:
        return {k: _unwrap(v, op, host_ok) for k, v in x.items()}
    return x


def _unwrap_operand(x: Any, op: str) -> Any:
    """Unwraps one ufunc operand; refuses host arrays, lists and tuples as CuPy does."""
    t = type(x)
    if t is StrictArray:
        return x._a
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return x
        raise _refuse(op, x)
    if t is list or t is tuple:
        raise _refuse(op, x)
    return x


def _wrap(r: Any) -> Any:
    """Wraps NumPy arrays and NumPy scalars (as 0-d arrays, as CuPy returns)."""
    t = type(r)
    if t is np.ndarray:
        return StrictArray(r)
    if isinstance(r, np.generic):
        return StrictArray(np.asarray(r))
    if t is tuple or t is list:
        return t(_wrap(v) for v in r)
    if isinstance(r, tuple):  # named tuples (np.linalg.qr, svd, ...)
        return t(*(_wrap(v) for v in r))
    return r


class StrictMemoryPointer:
    """What `StrictArray.data` returns: an opaque pointer, like `cupy.cuda.MemoryPointer`."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr

    def __repr__(self) -> str:
        return f"<StrictMemoryPointer 0x{self.ptr:x}>"


class StrictArray:
    """A device-array stand-in holding a NumPy array; see the module docstring."""

    __slots__ = ("_a",)
    __array_priority__ = 200
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, a: np.ndarray):
        self._a = a

    # -- the explicit ways to the host ------------------------------------
    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        """Returns a host (NumPy) copy, like `cupy.ndarray.get`."""
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        """Copies a host array into this array, like `cupy.ndarray.set`."""
        if not isinstance(arr, np.ndarray) or arr.shape != self._a.shape:
            raise ValueError(f"set() needs a numpy array of shape {self._a.shape}")
        self._a[...] = arr

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "strict backend: implicit conversion to a NumPy array is not allowed "
            f"(as with CuPy) (at {_caller()}). Use .get() or "
            "distkeras.backend.to_numpy(...) explicitly."
        )

    # -- NumPy protocols (np.exp(a), np.sum(a) dispatch here) ---------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        op = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if method == "at":
            args = [_unwrap_operand(inputs[0], op), _unwrap(inputs[1], op, host_ok=True)]
            args += [_unwrap_operand(v, op) for v in inputs[2:]]
            ufunc.at(*args)
            return None
        args = [_unwrap_operand(v, op) for v in inputs]
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap_operand(o, op) for o in out)
        if "where" in kwargs:
            kwargs["where"] = _unwrap_operand(kwargs["where"], op)
        res = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(res)

    def __array_function__(self, func, types_, args, kwargs):
        op = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, op), **_unwrap(kwargs, op)))

    # -- attributes -------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._a.shape

    @shape.setter
    def shape(self, value) -> None:
        self._a.shape = value

    @property
    def dtype(self) -> np.dtype:
        return self._a.dtype

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def size(self) -> int:
        return self._a.size

    @property
    def itemsize(self) -> int:
        return self._a.itemsize

    @property
    def nbytes(self) -> int:
        return self._a.nbytes

    @property
    def strides(self) -> tuple:
        return self._a.strides

    @property
    def flags(self):
        return self._a.flags

    @property
    def base(self):
        return None if self._a.base is None else StrictArray(np.asarray(self._a.base))

    @property
    def data(self) -> StrictMemoryPointer:
        return StrictMemoryPointer(self._a.__array_interface__["data"][0])

    @property
    def T(self) -> StrictArray:
        return StrictArray(self._a.T)

    @property
    def real(self) -> StrictArray:
        return StrictArray(self._a.real)

    @property
    def imag(self) -> StrictArray:
        return StrictArray(self._a.imag)

    @property
    def device(self) -> str:
        return "strict:0"

    def __getattr__(self, name: str) -> Any:
        if name in _METHODS:
            meth = getattr(self._a, name)
            op = f"ndarray.{name}"
            host_ok = name in _HOST_ARG_METHODS

            def method(*args, **kwargs):
                return _wrap(meth(*_unwrap(args, op, host_ok), **_unwrap(kwargs, op, host_ok)))

            return method
        raise AttributeError(f"strict backend: cupy.ndarray has no attribute {name!r}")

    # -- Python protocols -------------------------------------------------
    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield StrictArray(np.asarray(self._a[i]))

    def __getitem__(self, key):
        r = self._a[_unwrap(key, "indexing", host_ok=True)]
        return StrictArray(np.asarray(r)) if isinstance(r, np.generic) else StrictArray(r)

    def __setitem__(self, key, value) -> None:
        self._a[_unwrap(key, "indexing", host_ok=True)] = _unwrap(value, "setitem", host_ok=True)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __complex__(self) -> complex:
        return complex(self._a)

    def __format__(self, spec: str) -> str:
        return format(self._a[()] if self._a.ndim == 0 else self._a, spec)

    def __repr__(self) -> str:
        return repr(self._a).replace("array(", "strict_array(", 1)

    def __str__(self) -> str:
        return str(self._a)

    def __copy__(self) -> StrictArray:
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo) -> StrictArray:
        return StrictArray(self._a.copy())

    def __reduce__(self):
        return (_from_host, (self.get(),))


def _from_host(a: np.ndarray) -> StrictArray:
    return StrictArray(a)


def _binary(ufunc: np.ufunc, reflected: bool = False):
    def op(self, other):
        if not isinstance(other, (StrictArray, np.ndarray, np.generic, int, float, complex, bool)):
            return NotImplemented
        return ufunc(other, self) if reflected else ufunc(self, other)

    return op


def _inplace(ufunc: np.ufunc):
    def op(self, other):
        if not isinstance(other, (StrictArray, np.ndarray, np.generic, int, float, complex, bool)):
            return NotImplemented
        ufunc(self, other, out=(self,))
        return self

    return op


for _name, _uf in {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "matmul": np.matmul,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
    "lshift": np.left_shift, "rshift": np.right_shift,
}.items():  # fmt: skip
    setattr(StrictArray, f"__{_name}__", _binary(_uf))
    setattr(StrictArray, f"__r{_name}__", _binary(_uf, reflected=True))
    setattr(StrictArray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in {
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}.items():  # fmt: skip
    setattr(StrictArray, f"__{_name}__", _binary(_uf))
StrictArray.__neg__ = lambda self: np.negative(self)  # type: ignore[attr-defined]
StrictArray.__pos__ = lambda self: np.positive(self)  # type: ignore[attr-defined]
StrictArray.__abs__ = lambda self: np.absolute(self)  # type: ignore[attr-defined]
StrictArray.__invert__ = lambda self: np.invert(self)  # type: ignore[attr-defined]


# -- the module ---------------------------------------------------------------
class _StrictUfunc:
    """`module.exp` and friends: refuse host arrays, return strict arrays."""

    def __init__(self, uf: np.ufunc):
        self._uf = uf
        self.__name__ = uf.__name__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uf, name)

    def _run(self, method: str, args, kwargs):
        op = f"xp.{self.__name__}" + ("" if method == "__call__" else f".{method}")
        for a in args:
            _unwrap_operand(a, op)  # host arrays and lists are refused here
        if not any(type(a) is StrictArray for a in args):
            args = (StrictArray(np.asarray(args[0])),) + tuple(args[1:])
        return getattr(self._uf, method)(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self._run("__call__", args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run("reduce", args, kwargs)

    def accumulate(self, *args, **kwargs):
        return self._run("accumulate", args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run("outer", args, kwargs)

    def at(self, a, indices, b=None):
        op = f"xp.{self.__name__}.at"
        if type(a) is not StrictArray:
            raise _refuse(op, a)
        args = (a, indices) if b is None else (a, indices, b)
        return self._uf.at(*args)

    def __repr__(self) -> str:
        return f"<strict ufunc {self.__name__}>"


def _strict_function(name: str, fn: Any):
    host_ok = name in _TRANSFER
    op = f"xp.{name}"

    def wrapper(*args, **kwargs):
        if host_ok and args and isinstance(args[0], np.ndarray) and kwargs.get("copy") is not False:
            args = (np.array(args[0], copy=True),) + args[1:]  # a transfer never aliases
        return _wrap(fn(*_unwrap(args, op, host_ok), **_unwrap(kwargs, op, host_ok)))

    wrapper.__name__ = name
    wrapper.__doc__ = getattr(fn, "__doc__", None)
    return wrapper


class StrictModule(types.ModuleType):
    """A module-like object mirroring NumPy's namespace with strict semantics."""

    def __init__(self, base: types.ModuleType, name: str = "distkeras_strict"):
        super().__init__(name)
        self._base = base
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        cache = self.__dict__["_cache"]
        if name in cache:
            return cache[name]
        base = self.__dict__["_base"]
        try:
            obj = getattr(base, name)
        except AttributeError:
            raise AttributeError(f"strict backend: module has no attribute {name!r}") from None
        if name == "ndarray":
            value: Any = StrictArray
        elif isinstance(obj, np.ufunc):
            value = _StrictUfunc(obj)
        elif isinstance(obj, types.ModuleType):
            value = StrictModule(obj, f"{self.__name__}.{name}")
        elif isinstance(obj, type) or not callable(obj):
            value = obj  # dtypes, finfo, constants
        else:
            value = _strict_function(name, obj)
        cache[name] = value
        return value

    def asnumpy(self, a: Any) -> np.ndarray:
        """Returns a host copy, like `cupy.asnumpy`."""
        return a.get() if type(a) is StrictArray else np.asarray(a)

    def get_array_module(self, *arrays: Any):
        """Returns this module for strict arrays, else NumPy (like `cupy.get_array_module`)."""
        return self if any(type(a) is StrictArray for a in arrays) else np

    def __repr__(self) -> str:
        return f"<strict stand-in array module {self.__name__!r}>"


strict = StrictModule(np)

__all__ = ["StrictArray", "StrictModule", "StrictMemoryPointer", "strict"]
