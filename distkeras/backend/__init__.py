"""The array module switch (NumPy or CuPy), float type, RNG streams and autodiff.

`xp` is a live proxy for the current array module, so code written against
`from distkeras.backend import xp` follows `set_backend` calls. CuPy is imported
only when it is selected.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

_VALID_BACKENDS = ("numpy", "cupy")
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
    raise ValueError(
        f"Unknown backend. Expected one of {_VALID_BACKENDS}. Received: backend={name!r}"
    )


def set_backend(name: str) -> None:
    """Selects the array module used by every computation.

    Args:
        name: 'numpy' or 'cupy'.
    """
    module = _load(name)
    _state["name"] = name
    _state["module"] = module


def backend() -> str:
    """Returns the name of the current array backend ('numpy' or 'cupy')."""
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


def get_array_module(*arrays: Any):
    """Returns numpy or cupy, whichever owns the given arrays (Chainer-style)."""
    for a in arrays:
        data = getattr(a, "data", a)
        mod = type(data).__module__
        if mod.startswith("cupy"):
            return current_module() if backend() == "cupy" else _load("cupy")
    return np if backend() == "numpy" else current_module()


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
    """Returns `x` (Tensor, Variable, NumPy or CuPy array, scalar) as a NumPy array."""
    x = getattr(x, "data", x) if not isinstance(x, np.ndarray) else x
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def standardize_dtype(dtype: Any) -> str:
    """Returns a dtype's canonical name ('float32', 'int64', ...)."""
    if dtype is None:
        return floatx()
    if hasattr(dtype, "name") and not isinstance(dtype, str):
        return dtype.name
    return np.dtype(dtype).name


from distkeras.backend.autodiff import (  # noqa: E402
    GradientTape,
    Tensor,
    Variable,
    convert_to_tensor,
    is_tensor,
    no_grad,
)
from distkeras.backend.random import SeedGenerator, global_seed_generator  # noqa: E402

__all__ = [
    "GradientTape",
    "SeedGenerator",
    "Tensor",
    "Variable",
    "backend",
    "convert_to_tensor",
    "current_module",
    "epsilon",
    "floatx",
    "get_array_module",
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
