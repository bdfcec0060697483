"""The compiled loops (`_native/kernels.c`), reached through ctypes.

The LSTM primitive (`lstm.py`) runs its forward and backward loops here, and
Adam (`optimizers/adam.py`) its update, when the extension was built: `pip
install` builds it wherever a C compiler is found; without one the install
still succeeds and the NumPy code runs. An LSTM step is then one pass over its
gates plus one recurrent GEMM instead of a dozen NumPy calls: the GEMM is
NumPy's own BLAS, called through its `cblas_?gemm` entry point, so BLAS's
threads and settings stay NumPy's.

The loops are used only with NumPy arrays of float32 or float64; the LSTM's
only when NumPy's BLAS is an OpenBLAS whose integer width is known (the
wheels' `scipy_openblas`, or a system OpenBLAS that reports its build). Adam's
update gives the same bits as its NumPy calls. Set `DISTKERAS_NATIVE=0` (or
call `set_enabled(False)`) for the NumPy code everywhere.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Callable
from typing import Any

import numpy as np

OPT_OUT = "DISTKERAS_NATIVE"
_ISAS = ("base", "avx2", "avx512")
_STATE: dict[str, Any] = {"loaded": False, "lib": None, "gemm": {}, "why": None, "on": None}


def set_enabled(enabled: bool | None) -> None:
    """Turns the compiled loops on or off for this process (None: back to $DISTKERAS_NATIVE)."""
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True, False or None. Received: enabled={enabled!r}")
    _STATE["on"] = enabled


def enabled() -> bool:
    """True unless turned off by `set_enabled(False)` or `DISTKERAS_NATIVE=0`."""
    if _STATE["on"] is not None:
        return _STATE["on"]
    return os.environ.get(OPT_OUT, "").strip().lower() not in ("0", "false", "no", "off")


def status() -> dict[str, Any]:
    """What was found: the library's path, the instruction set, the GEMMs, or why not."""
    lib = _load()
    return {
        "enabled": enabled(),
        "library": getattr(lib, "_name", None),
        "isa": _ISAS[lib.distkeras_isa()] if lib is not None else None,
        "gemm": {k: v[2] for k, v in _STATE["gemm"].items()},
        "why_not": _STATE["why"],  # of the LSTM loops (Adam needs no BLAS)
    }


def _load() -> Any:
    """The extension as a ctypes library with NumPy's GEMMs found; None if either is missing."""
    if _STATE["loaded"]:
        return _STATE["lib"]
    _STATE["loaded"] = True
    spec = importlib.util.find_spec("distkeras.backend._native._kernels")
    if spec is None or not spec.origin:
        _STATE["why"] = "the extension distkeras.backend._native._kernels was not built"
        return None
    lib = ctypes.CDLL(spec.origin)
    lib.distkeras_isa.restype = ctypes.c_int64
    _STATE["gemm"] = _numpy_gemms()
    if not _STATE["gemm"]:
        _STATE["why"] = "NumPy's BLAS is not an OpenBLAS whose cblas_?gemm could be found"
    _STATE["lib"] = lib
    return lib


def _numpy_gemms() -> dict[str, tuple[int, int, str]]:
    """{'float32': (address, 1 if 64-bit ints, symbol), 'float64': ...} of NumPy's OpenBLAS."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        infos = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    except Exception:  # noqa: BLE001 - no threadpoolctl answer: the NumPy loops run
        return {}
    here = os.path.dirname(os.path.dirname(np.__file__))
    own = [i for i in infos if os.path.realpath(i["filepath"]).startswith(os.path.realpath(here))]
    chosen = own or (infos if len(infos) == 1 else [])
    if len(chosen) != 1:
        return {}
    try:
        blas = ctypes.CDLL(chosen[0]["filepath"])
    except OSError:
        return {}
    out = {}
    for dtype, name in (("float32", "sgemm"), ("float64", "dgemm")):
        found = _gemm_symbol(blas, name)
        if found is not None:
            out[dtype] = found
    return out


def _gemm_symbol(blas: Any, name: str) -> tuple[int, int, str] | None:
    """`cblas_<name>` of `blas` as (address, 64-bit ints?, symbol), or None."""
    config = getattr(blas, "openblas_get_config64_", None) or getattr(
        blas, "openblas_get_config", None
    )
    ilp64 = None
    if config is not None:
        config.restype = ctypes.c_char_p
        ilp64 = b"USE64BITINT" in (config() or b"")
    for symbol, wide in (
        (f"scipy_cblas_{name}64_", 1),
        (f"cblas_{name}64_", 1),
        (f"scipy_cblas_{name}", 0),
        (f"cblas_{name}", None),
    ):
        fn = getattr(blas, symbol, None)
        if fn is None:
            continue
        if wide is None:  # a plain name: its width only from the build's own report
            if ilp64 is None:
                return None
            wide = int(ilp64)
        return ctypes.cast(fn, ctypes.c_void_p).value, wide, symbol
    return None


def _suffix(lib: Any, dtype: np.dtype) -> str:
    return "_f64" if dtype == np.float64 else "_f32_" + _ISAS[lib.distkeras_isa()]


def _ptr(a: Any) -> int | None:
    return None if a is None else a.__array_interface__["data"][0]


def lstm_loops(dtype: Any) -> tuple[Callable, Callable] | None:
    """The compiled LSTM forward and backward for NumPy arrays of `dtype`, or None.

    Both take C-contiguous arrays laid out as `lstm.py` keeps them and run
    steps `t0:t1` (see `_native/lstm_body.h`); they return nothing.
    """
    if not enabled():
        return None
    lib = _load()
    dtype = np.dtype(dtype)
    if lib is None or dtype.name not in _STATE["gemm"]:
        return None
    gemm, wide, _ = _STATE["gemm"][dtype.name]
    suffix = _suffix(lib, dtype)
    fwd, bwd = getattr(lib, "lstm_forward" + suffix), getattr(lib, "lstm_backward" + suffix)
    i64, p = ctypes.c_int64, ctypes.c_void_p
    fwd.argtypes = [i64, i64, i64, i64, p, p, p, p, p, p, p, p, i64]
    bwd.argtypes = [i64, i64, i64, i64, p, p, p, p, p, p, p, p, p, p, p, p, i64]
    fwd.restype = bwd.restype = None

    def check(arrays):
        for a in arrays:
            if a is not None and (a.dtype != dtype or not a.flags.c_contiguous):
                raise ValueError("the compiled LSTM loop needs C-contiguous arrays of one dtype")

    def forward(t0, t1, A, rk_t, H, C, TC, c0, keep):
        check((A, rk_t, H, C, TC, c0, keep))
        U, B = c0.shape
        args = (_ptr(a) for a in (A, rk_t, H, C, TC, c0, keep))
        fwd(t0, t1, U, B, *args, gemm, wide)

    def backward(t0, t1, A, C, TC, c0, keep, gH, rk, dZ, dh, dc, work):
        check((A, C, TC, c0, keep, gH, rk, dZ, dh, dc, work))
        U, B = c0.shape
        args = (_ptr(a) for a in (A, C, TC, c0, keep, gH, rk, dZ, dh, dc, work))
        bwd(t0, t1, U, B, *args, gemm, wide)

    return forward, backward


def _exact_scalar(x: Any, dtype: np.dtype) -> bool:
    """True when NumPy would round `x` to `dtype` before the ufunc (a Python number or
    a NumPy scalar of `dtype`); a wider NumPy scalar makes NumPy compute wider."""
    return type(x) in (float, int) or (isinstance(x, np.generic) and x.dtype == dtype)


def adam_update(param: Any) -> Callable[..., bool] | None:
    """The compiled Adam update for arrays like `param`, or None (not NumPy float32/64).

    The function takes `(param, grad, m, v, vhat, one_minus_beta_1,
    one_minus_beta_2, epsilon, alpha)`, updates the arrays in place and returns
    True, or returns False without touching anything when an array is not
    C-contiguous of `param`'s dtype and size or a scalar would make NumPy
    compute in another precision (then the caller's NumPy code runs).
    """
    if not enabled() or not isinstance(param, np.ndarray):
        return None
    dtype = param.dtype
    if dtype not in (np.float32, np.float64):
        return None
    lib = _load()
    if lib is None:
        return None
    fn = getattr(lib, "adam_update" + _suffix(lib, dtype))
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    p = ctypes.c_void_p
    fn.argtypes = [ctypes.c_int64, p, p, p, p, p, real, real, real, real]
    fn.restype = None

    def update(param, grad, m, v, vhat, b1c, b2c, eps, alpha) -> bool:
        n = param.size
        for a in (param, grad, m, v, vhat):
            if a is not None and (
                type(a) is not np.ndarray
                or a.dtype != dtype
                or a.size != n
                or not a.flags.c_contiguous
            ):
                return False
        if not all(_exact_scalar(x, dtype) for x in (b1c, b2c, eps, alpha)):
            return False
        fn(n, _ptr(param), _ptr(grad), _ptr(m), _ptr(v), _ptr(vhat), b1c, b2c, eps, alpha)
        return True

    return update
