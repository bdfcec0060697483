"""OpenBLAS's idle spin, made short whatever the script imported first.

OpenBLAS's idle worker threads spin-wait 2**28 cycles (about 0.1 s) after every
threaded call before they sleep. distkeras runs its memory-bound loops
(convolution windows, pooling, the optimizer's flat update) in its own threads
right after BLAS calls, so on a machine with few cores those loops ran up to
twice as slow, competing with spinning BLAS workers (the CNN benchmark: 49 ms
a step, 30 ms with a short spin). 2**20 cycles (about 0.3 ms) still hands a
run of back-to-back GEMMs from one call to the next without a sleep.

OpenBLAS reads `OPENBLAS_THREAD_TIMEOUT` when it loads and copies it into its
thread server when that starts its workers. `import distkeras` therefore:

- sets the variable (unless already set) when NumPy is not imported yet, so
  OpenBLAS reads it when NumPy loads it;
- when NumPy is already loaded (a script that starts with `import numpy`, a
  notebook, a Ray worker), sets the variable, makes each loaded OpenBLAS with
  the pthreads server re-read its environment (`openblas_read_env`) and stops
  its workers (`blas_thread_shutdown_`, the call OpenBLAS itself makes before
  every `fork`); the next threaded call starts them again with the short
  spin. This takes about 15 ms, once, and must not race a BLAS call in
  another thread (it runs while distkeras is imported).

`distkeras-run` and the Ray driver also set the variable for every worker.
`DISTKERAS_BLAS_TUNE=0` leaves OpenBLAS alone (as does exporting the variable
yourself, whose value then wins).
"""

from __future__ import annotations

import os
import sys

BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "20"}
OPT_OUT = "DISTKERAS_BLAS_TUNE"

# What the last apply_blas_env() did: "env" (set before NumPy loaded), "rearmed"
# (OpenBLAS libraries re-armed, their paths in "libs"), "user" (already set),
# "off" (opted out), "unsupported" (no OpenBLAS with a pthreads server found).
STATE: dict = {"mode": None, "libs": []}


def apply_blas_env() -> bool:
    """Gives the loaded or future OpenBLAS the short idle spin of BLAS_ENV.

    Returns:
        True when the variables are in effect for NumPy's BLAS.
    """
    STATE["libs"] = []
    if os.environ.get(OPT_OUT, "").strip().lower() in ("0", "false", "no", "off"):
        STATE["mode"] = "off"
        return all(key in os.environ for key in BLAS_ENV)
    if all(key in os.environ for key in BLAS_ENV):
        STATE["mode"] = "user"
        return True
    for key, value in BLAS_ENV.items():
        os.environ.setdefault(key, value)
    if "numpy" not in sys.modules:
        STATE["mode"] = "env"
        return True
    STATE["libs"] = rearm_openblas()
    STATE["mode"] = "rearmed" if STATE["libs"] else "unsupported"
    return bool(STATE["libs"])


def rearm_openblas() -> list[str]:
    """Makes every loaded pthreads OpenBLAS re-read its environment and restart its workers.

    Returns:
        The paths of the libraries re-armed (empty when none could be).
    """
    try:
        import ctypes  # noqa: PLC0415

        from threadpoolctl import threadpool_info  # noqa: PLC0415

        infos = threadpool_info()
    except Exception:  # noqa: BLE001 - an optional speed-up, never an error
        return []
    done = []
    for info in infos:
        if info.get("internal_api") != "openblas" or info.get("threading_layer") != "pthreads":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        read_env, shutdown = (
            _symbol(lib, "openblas_read_env"),
            _symbol(lib, "blas_thread_shutdown_"),
        )
        if read_env is None or shutdown is None:  # another build: no such internal symbols
            continue
        read_env.restype = None
        shutdown.restype = ctypes.c_int
        read_env()
        shutdown()
        done.append(info["filepath"])
    return done


def _symbol(lib, name: str):
    """`name` in `lib`, as built plainly, with a 64-bit suffix or SciPy's prefix; else None."""
    for candidate in (name, name + "64_", "scipy_" + name):
        try:
            return getattr(lib, candidate)
        except AttributeError:
            continue
    return None
