"""Process-wide settings distkeras applies for speed: the BLAS spin and the allocator.

Each check runs in a fresh interpreter, since both take effect once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

FAULTS = """
import json, resource, sys
{imports}
import numpy as np
from distkeras.backend import backend
backend()
from distkeras.backend import allocator
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # a step's activations: several 20 MB arrays alive at once, then freed
    arrays = [np.ones(5_000_000, dtype=np.float32) for _ in range(4)]
    del arrays
step()
before = faults()
for _ in range(10):
    step()
print(json.dumps({{"faults": faults() - before, "applied": allocator._STATE["applied"]}}))
"""


def _run(code: str, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "OPENBLAS_"))}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_step_memory_is_reused_without_page_faults():
    tuned = _run(FAULTS.format(imports="import distkeras"))
    untuned = _run(FAULTS.format(imports="import distkeras"), DISTKERAS_MALLOC_TUNE="0")
    assert tuned["applied"] and not untuned["applied"]
    pages = 10 * 4 * 20_000_000 // 4096
    assert untuned["faults"] > pages // 20  # glibc hands the freed heap top back
    assert tuned["faults"] < pages // 200  # the process keeps it


BLAS = """
import json, os
{first}
import distkeras
print(json.dumps({{"value": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}}))
"""


def test_blas_spin_is_set_before_numpy_loads():
    from distkeras._blas import BLAS_ENV

    expected = BLAS_ENV["OPENBLAS_THREAD_TIMEOUT"]
    assert _run(BLAS.format(first=""))["value"] == expected
    # NumPy first: set too, and OpenBLAS re-armed (tests/backend/test_blas_startup.py).
    assert _run(BLAS.format(first="import numpy"))["value"] == expected
    # A user's own value wins.
    assert _run(BLAS.format(first=""), OPENBLAS_THREAD_TIMEOUT="9")["value"] == "9"
