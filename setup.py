"""Builds the optional C extension; everything else is in pyproject.toml.

The extension (`distkeras/backend/_native/kernels.c`) holds the fused LSTM
loops and Adam update. It is optional: where no C compiler is found the
install goes on and distkeras runs the same code in NumPy (see
distkeras/backend/native.py).
"""

import sys

from setuptools import Extension, setup

_FLAGS = (
    []
    if sys.platform == "win32"
    else ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fopenmp-simd"]
)

setup(
    ext_modules=[
        Extension(
            "distkeras.backend._native._kernels",
            sources=["distkeras/backend/_native/kernels.c"],
            depends=[
                "distkeras/backend/_native/lstm_body.h",
                "distkeras/backend/_native/adam_body.h",
            ],
            extra_compile_args=_FLAGS,
            optional=True,
        )
    ]
)
