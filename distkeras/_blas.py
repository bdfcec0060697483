"""Environment for the BLAS library, set before NumPy loads it.

OpenBLAS's idle worker threads spin-wait 2**28 cycles (about 0.1 s) after every
threaded call before they sleep. distkeras runs its memory-bound loops
(convolution windows, pooling, the optimizer's flat update) in its own threads
right after BLAS calls, so on a machine with few cores those loops ran up to
twice as slow, competing with spinning BLAS workers (the CNN benchmark: 49 ms
a step, 30 ms with a short spin). 2**20 cycles (about 0.3 ms) still hands a
run of back-to-back GEMMs from one call to the next without a sleep.

OpenBLAS reads the variable once, when it loads, so `import distkeras` sets it
(unless already set) only when NumPy is not imported yet; `distkeras-run` and
the Ray driver set it for every worker. Import distkeras before NumPy in a
script, or export the variable, to get it.
"""

from __future__ import annotations

import os
import sys

BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "20"}


def apply_blas_env() -> bool:
    """Sets BLAS_ENV's defaults if NumPy has not loaded its BLAS yet.

    Returns:
        True when the variables are in effect (set now or already set).
    """
    if "numpy" not in sys.modules:
        for key, value in BLAS_ENV.items():
            os.environ.setdefault(key, value)
    return all(key in os.environ for key in BLAS_ENV)
