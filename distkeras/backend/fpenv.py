"""Flush-to-zero for the optimizer's update, as TensorFlow and XLA run their CPU ops.

An Adam momentum whose gradient stays zero (a dead ReLU unit, an embedding
row no batch uses, a classifier that fits its batch) shrinks by `beta_1`
every step and reaches the subnormal range (below 1.2e-38 in float32) after
some 700 steps. x86 CPUs compute on subnormal floats up to a hundred times
slower, so from then on every update pass over such a buffer crawls: the MLP
benchmark's step went from 6 ms to 11 ms between step 700 and step 800.
TensorFlow (`ScopedFlushDenormal` around every op) and XLA set the SSE
flush-to-zero and denormals-are-zero bits; NumPy leaves them off.

`flush_denormals()` sets both bits (MXCSR bits 15 and 6) on the calling
thread for the duration of a block and restores the thread's floating-point
environment afterwards, so only the code inside the block (the optimizer's
update, and its pool threads, which enter the block themselves) flushes,
never the user's own NumPy code. Values below the float32 (float64) normal
range become zero there, as they would under TensorFlow.

Only on x86-64 Linux with glibc (`fegetenv`/`fesetenv` and the `fenv_t`
layout whose last word is MXCSR); a no-op elsewhere and on CuPy.
`DISTKERAS_FLUSH_DENORMALS=0` turns it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform
from collections.abc import Iterator
from typing import Any

import numpy as np

from distkeras.backend import current_module

_FTZ_DAZ = 0x8000 | 0x0040  # MXCSR: flush-to-zero | denormals-are-zero
_ENV_BYTES = 32  # sizeof(fenv_t) on x86-64 glibc: the x87 environment, then MXCSR
_MXCSR_AT = 28
_STATE: dict[str, Any] = {"libm": None}


def _libm() -> Any:
    """libm with fegetenv/fesetenv, or False where this module cannot work."""
    lib = _STATE["libm"]
    if lib is None:
        lib = False
        if platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
                lib.fegetenv.argtypes = lib.fesetenv.argtypes = [ctypes.c_void_p]
            except (OSError, AttributeError):
                lib = False
        _STATE["libm"] = lib
    return lib


def enabled() -> bool:
    """Whether `flush_denormals()` acts here (x86-64 Linux, NumPy, not opted out)."""
    if os.environ.get("DISTKERAS_FLUSH_DENORMALS", "").strip().lower() in ("0", "false", "off"):
        return False
    return current_module() is np and bool(_libm())


def _env() -> tuple | None:
    """This thread's `(fenv_t buffer, MXCSR word)`, or None where this module does not work."""
    lib = _libm()
    if not lib:
        return None
    env = ctypes.create_string_buffer(_ENV_BYTES)
    if lib.fegetenv(env) != 0:
        return None
    return env, int.from_bytes(env.raw[_MXCSR_AT : _MXCSR_AT + 4], "little")


def mxcsr() -> int | None:
    """The calling thread's MXCSR register (None where this module does not work)."""
    got = _env()
    return None if got is None else got[1]


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Runs the block with subnormal floats flushed to zero on this thread (restored after)."""
    got = _env() if enabled() else None
    if got is None or got[1] & _FTZ_DAZ == _FTZ_DAZ:  # off, or already flushing
        yield
        return
    saved, word = got
    env = ctypes.create_string_buffer(saved.raw, _ENV_BYTES)
    env[_MXCSR_AT : _MXCSR_AT + 4] = (word | _FTZ_DAZ).to_bytes(4, "little")
    lib = _libm()
    lib.fesetenv(env)
    try:
        yield
    finally:
        lib.fesetenv(saved)
