"""Runs an example in a fresh interpreter: its `main(argv)`, its script, or under the launcher.

Every run gets one BLAS/OpenMP thread (on a shared 2-core machine multi-threaded
OpenBLAS on these small GEMMs mostly waits for its second thread), the repo on
PYTHONPATH, no inherited MPI/Slurm variables, and a timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Loads examples/NAME.py, calls main(argv) and prints what it returned.
_CALL_MAIN = """
import importlib.util, sys
path, argv = sys.argv[1], sys.argv[2:]
spec = importlib.util.spec_from_file_location("example_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("MAIN RETURNED", module.main(argv))
"""


def example_env(**extra: str) -> dict[str, str]:
    """The environment of an example run."""
    drop = ("OMPI_", "PMIX_", "SLURM_", "CUDA_VISIBLE_DEVICES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DISTKERAS_COLLECTIVE_TIMEOUT="60")
    env.update(extra)
    return env


def run_example(
    name: str,
    *args: str,
    np_: int | None = None,
    backend: str | None = None,
    call_main: bool = False,
    timeout: float = 120,
    **env: str,
) -> subprocess.CompletedProcess:
    """Runs examples/`name`.py with `args`, from the repo root.

    Args:
        name: The example's file name without `.py`.
        *args: Its command-line arguments.
        np_: Run it through the launcher (`python -m launcher -np N python examples/...`).
        backend: The launcher's `--backend` (with `np_`).
        call_main: Call its `main(argv)` and print the result (see `main_result`)
            instead of running it as a script.
        timeout: Seconds before the run is killed (the test then fails).
        **env: Extra environment variables.
    """
    script = f"examples/{name}.py"
    if call_main:
        cmd = [sys.executable, "-c", _CALL_MAIN, script, *args]
    elif np_ is not None:
        where = ["--backend", backend] if backend else []
        cmd = [sys.executable, "-m", "launcher", *where, "-np", str(np_), "python", script, *args]
    else:
        cmd = [sys.executable, script, *args]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=example_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def output(proc: subprocess.CompletedProcess) -> str:
    """stdout and stderr, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def main_result(proc: subprocess.CompletedProcess) -> float:
    """What `main` returned in a `call_main=True` run."""
    assert proc.returncode == 0, output(proc)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("MAIN RETURNED ")]
    assert len(lines) == 1, output(proc)
    return float(lines[0].split()[-1])


# Ray forwards each worker's output to the driver as "(_Worker pid=N) line" (colored).
_RAY_PREFIX = re.compile(r"^(\x1b\[[0-9;]*m)?\(\w+ pid=\d+(, ip=[^)]*)?\)(\x1b\[0m)? ")


def printed(proc: subprocess.CompletedProcess, label: str) -> str:
    """The text after `label` on the one stdout line starting with it (only rank 0 prints).

    Ray's per-worker prefix is ignored.
    """
    lines = [_RAY_PREFIX.sub("", line) for line in proc.stdout.splitlines()]
    lines = [line for line in lines if line.startswith(label)]
    assert len(lines) == 1, f"expected one line starting with {label!r}\n" + output(proc)
    return lines[0][len(label) :].strip()
