"""A script that imports NumPy first still gets OpenBLAS's short idle spin.

OpenBLAS copies OPENBLAS_THREAD_TIMEOUT into its thread server when that starts
its workers (distkeras/_blas.py). Each check runs a fresh interpreter, as a
user's script does, and reads the state the mechanism relies on: the variable
in the C environment OpenBLAS reads, what `import distkeras` did, and whether
OpenBLAS's worker threads were restarted (so that they run with it). Nothing
is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, json, os, threading
{first}
import numpy as np
a = np.ones((512, 512), dtype=np.float32)
def workers():  # threads other than this one: OpenBLAS's server (numpy starts no others)
    return {{int(t) for t in os.listdir("/proc/self/task")}} - {{threading.get_native_id()}}
a @ a
before = workers()
import distkeras
from distkeras import _blas
a @ a
libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p
value = libc.getenv(b"OPENBLAS_THREAD_TIMEOUT")
from threadpoolctl import threadpool_info
blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
print(json.dumps({{
    "value": value.decode() if value else None,
    "mode": _blas.STATE["mode"],
    "libs": _blas.STATE["libs"],
    "before": sorted(before),
    "after": sorted(workers()),
    "threads": blas[0]["num_threads"] if blas else 0,
    "openblas_pthreads": any(
        i["internal_api"] == "openblas" and i["threading_layer"] == "pthreads" for i in blas
    ),
}}))
"""


def _run(first: str, **env: str) -> dict:
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENBLAS_") and k != "DISTKERAS_BLAS_TUNE"
    }
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(first=first)],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _needs_threaded_openblas(result: dict) -> None:
    if not result["openblas_pthreads"] or result["threads"] < 2:
        pytest.skip("NumPy's BLAS is not a multi-threaded OpenBLAS with its pthreads server")


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, ctypes")


def test_numpy_first_gets_the_short_spin_and_fresh_workers():
    from distkeras._blas import BLAS_ENV

    got = _run("")
    _needs_threaded_openblas(got)
    assert got["value"] == BLAS_ENV["OPENBLAS_THREAD_TIMEOUT"]
    assert got["mode"] == "rearmed" and got["libs"]
    # The workers that ran with the default spin are gone; new ones run the next GEMM.
    assert got["before"] and got["after"]
    assert not set(got["before"]) & set(got["after"])


def test_distkeras_first_sets_the_variable_before_numpy_reads_it():
    from distkeras._blas import BLAS_ENV

    got = _run("import distkeras")
    assert got["value"] == BLAS_ENV["OPENBLAS_THREAD_TIMEOUT"]
    assert got["mode"] == "env" and got["libs"] == []


@pytest.mark.parametrize(
    "env, value, mode",
    [({"DISTKERAS_BLAS_TUNE": "0"}, None, "off"), ({"OPENBLAS_THREAD_TIMEOUT": "9"}, "9", "user")],
)
def test_opt_out_and_users_value_leave_openblas_alone(env, value, mode):
    got = _run("", **env)
    _needs_threaded_openblas(got)
    assert got["value"] == value and got["mode"] == mode and got["libs"] == []
    assert got["before"] and set(got["before"]) <= set(got["after"])  # the same workers
