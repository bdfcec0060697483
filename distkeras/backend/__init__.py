"""The array module switch (NumPy or CuPy), float type, RNG streams and autodiff.

`xp` is a live proxy for the current array module, so code written against
`from distkeras.backend import xp` follows `set_backend` calls. CuPy is imported
only when it is selected.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

_VALID_BACKENDS = ("numpy", "cupy", "strict")
_state: dict[str, Any] = {"name": None, "module": None, "floatx": "float32", "epsilon": 1e-7}


def _load(name: str):
    if name == "numpy":
        return np
    if name == "cupy":
        try:
            import cupy  # noqa: PLC0415
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ImportError(
                "The 'cupy' backend needs CuPy: pip install 'distkeras[gpu]'. "
                f"Received: backend={name!r}"
            ) from e
        return cupy
    if name == "strict":
        from distkeras.backend.strict import strict  # noqa: PLC0415

        return strict
    raise ValueError(
        f"Unknown backend. Expected one of {_VALID_BACKENDS}. Received: backend={name!r}"
    )


def set_backend(name: str) -> None:
    """Selects the array module used by every computation.

    Args:
        name: 'numpy', 'cupy', or 'strict' (a NumPy-backed stand-in for CuPy
            whose arrays refuse to mix with NumPy arrays; for CI checks).
    """
    module = _load(name)
    if name != "cupy":  # host arrays: keep freed step memory in the process
        from distkeras.backend.allocator import tune_allocator  # noqa: PLC0415

        tune_allocator()
    _state["name"] = name
    _state["module"] = module
    if name == "cupy":  # pin this rank's GPU before anything is allocated
        from distkeras.backend.device import select_device  # noqa: PLC0415

        select_device()


def backend() -> str:
    """Returns the name of the current array backend ('numpy', 'cupy' or 'strict')."""
    if _state["name"] is None:
        set_backend(os.environ.get("DISTKERAS_BACKEND", "numpy"))
    return _state["name"]


def current_module():
    """Returns the current array module (numpy or cupy)."""
    mod = _state["module"]
    if mod is None:
        backend()
        mod = _state["module"]
    return mod


class _ArrayModuleProxy:
    """Forwards attribute access to the current array module."""

    def __getattr__(self, item: str) -> Any:
        return getattr(current_module(), item)

    def __repr__(self) -> str:
        return f"<distkeras.backend.xp -> {backend()}>"


xp = _ArrayModuleProxy()


def _is_device_array(x: Any) -> bool:
    return type(x).__module__.startswith(("cupy", "distkeras.backend.strict"))


def get_array_module(*arrays: Any):
    """Returns the module (numpy, cupy or the strict stand-in) owning the arrays.

    Tensors answer for the array they hold, as Chainer's `get_array_module` does.
    """
    for a in arrays:
        data = a.data if isinstance(a, Tensor) else a
        mod = type(data).__module__
        if mod.startswith("cupy"):
            return current_module() if backend() == "cupy" else _load("cupy")
        if mod.startswith("distkeras.backend.strict"):
            return _load("strict")
    return np


def floatx() -> str:
    """Returns the default float type name, 'float32' unless changed."""
    return _state["floatx"]


def set_floatx(value: str) -> None:
    """Sets the default float type ('float16', 'bfloat16', 'float32' or 'float64')."""
    if value not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(
            "Unknown floatx. Expected 'float16', 'bfloat16', 'float32' or 'float64'. "
            f"Received: value={value!r}"
        )
    _state["floatx"] = value


def epsilon() -> float:
    """Returns the fuzz factor used in numeric expressions (1e-7)."""
    return _state["epsilon"]


def set_epsilon(value: float) -> None:
    """Sets the fuzz factor used in numeric expressions."""
    _state["epsilon"] = float(value)


def to_numpy(x: Any) -> np.ndarray:
    """Returns `x` (Tensor, Variable, NumPy or device array, scalar) as a NumPy array.

    Device arrays (CuPy, strict) are copied to the host with `.get()`.
    """
    if isinstance(x, Tensor):
        x = x.data
    if isinstance(x, np.ndarray):
        return x
    if _is_device_array(x):
        return x.get()
    return np.asarray(x)


def standardize_dtype(dtype: Any) -> str:
    """Returns a dtype's canonical name ('float32', 'int64', ...)."""
    if dtype is None:
        return floatx()
    if dtype in ("string", "str", str):  # text inputs (Input(dtype="string"), as Keras)
        return "string"
    if hasattr(dtype, "name") and not isinstance(dtype, str):
        return dtype.name
    return np.dtype(dtype).name


def clear_session(free_memory: bool = True) -> None:
    """Resets the session state (automatic-name counters), as `keras.backend.clear_session`.

    Args:
        free_memory: Whether to run Python's garbage collector too.
    """
    from distkeras.utils import naming  # noqa: PLC0415 - a stdlib-only module

    naming.clear_session(free_memory)


def get_uid(prefix: str = "") -> int:
    """Advances and returns the counter of `prefix`, as `keras.backend.get_uid`."""
    from distkeras.utils import naming  # noqa: PLC0415 - a stdlib-only module

    return naming.get_uid(prefix)


from distkeras.backend.autodiff import (  # noqa: E402
    GradientTape,
    Tensor,
    Variable,
    convert_to_tensor,
    is_tensor,
    no_grad,
)

# `device` is the function (placement lives in the `device` submodule, imported here
# first so that a later `import distkeras.backend.device` does not rebind the name).
from distkeras.backend.device import device  # noqa: E402
from distkeras.backend.random import SeedGenerator, global_seed_generator  # noqa: E402

__all__ = [
    "GradientTape",
    "SeedGenerator",
    "Tensor",
    "Variable",
    "backend",
    "clear_session",
    "convert_to_tensor",
    "current_module",
    "device",
    "epsilon",
    "floatx",
    "get_array_module",
    "get_uid",
    "global_seed_generator",
    "is_tensor",
    "no_grad",
    "set_backend",
    "set_epsilon",
    "set_floatx",
    "standardize_dtype",
    "to_numpy",
    "xp",
]
