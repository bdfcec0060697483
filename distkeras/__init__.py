"""distkeras: Keras-compatible deep learning on NumPy/CuPy, data-parallel over MPI or Ray.

Submodules load on first use so that `import distkeras` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from distkeras._blas import apply_blas_env  # noqa: E402 - before anything imports numpy

apply_blas_env()  # OpenBLAS's short idle spin, whether NumPy is loaded yet or not

import os as _os  # noqa: E402

if _os.environ.get("DISTKERAS_LIFELINE"):  # started by distkeras-run: end when it ends
    importlib.import_module("distkeras.distributed.lifeline").watch_launcher()
if _os.environ.get("DISTKERAS_RUN_OUTPUT") == "rank0":  # distkeras-run shows rank 0's stdout
    importlib.import_module("distkeras.distributed.env").apply_output_mode()
del _os

from distkeras.backend.autodiff import GradientTape  # noqa: E402

_SUBMODULES = {
    "activations",
    "backend",
    "callbacks",
    "checkpoint",
    "config",
    "constraints",
    "datasets",
    "distributed",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "preprocessing",
    "random",
    "regularizers",
    "saving",
    "utils",
}
_FROM_MODELS = {"Sequential", "Model", "Input"}
_FROM_LAYERS = {"Layer", "Variable"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"distkeras.{name}")
    if name in _FROM_MODELS:
        return getattr(importlib.import_module("distkeras.models"), name)
    if name == "Layer":
        return importlib.import_module("distkeras.layers").Layer
    if name == "Variable":
        return importlib.import_module("distkeras.backend").Variable
    raise AttributeError(f"module 'distkeras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | _FROM_MODELS | _FROM_LAYERS)
