"""Helpers shared by the bench scripts: thread pinning, timing, peer imports."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def pin_threads(n: int) -> None:
    """Caps BLAS/OpenMP threads (call before importing numpy or torch).

    Also applies what `import distkeras` sets before NumPy loads (OpenBLAS's
    short idle spin, see distkeras/_blas.py), as a script that imports
    distkeras first gets it. PyTorch uses MKL and OpenMP, which it does not touch.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    from distkeras._blas import apply_blas_env  # noqa: PLC0415

    apply_blas_env()


def best_rate(
    step: Callable[[], None],
    samples_per_step: int,
    steps: int = 30,
    repeats: int = 5,
    warmup: int = 5,
) -> float:
    """Median samples/s over `repeats` runs of `steps` calls after `warmup` calls."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(samples_per_step * steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def interleaved_rates(
    contenders: dict[str, tuple[Callable[[], None], int]],
    rounds: int = 7,
    warmup: int = 3,
    settle: float = 0.5,
    prepare: Callable[[], None] | None = None,
    lead_in: bool = False,
) -> dict[str, float]:
    """Best samples/s of each contender over `rounds`, running them round-robin.

    `contenders` maps a name to (call, samples per call). Interleaving spreads the
    noise of a shared machine evenly; the best round is the least disturbed one.
    Before each timed call the machine idles for `settle` seconds: the thread
    pools of the previous contender (OpenBLAS workers, PyTorch's OpenMP team)
    spin-wait for a while after their last job and would otherwise steal cores
    from the next contender, whichever framework it is. `prepare`, when given,
    runs (untimed) before each timed call: `os.sync` for the file benchmarks,
    so that no contender's fsync pays for another's unwritten pages.

    `lead_in=True` runs each call once more, untimed, between the pause and
    the timed call, so a training step is timed in its steady state. Right
    after an idle pause the kernel's scheduler has forgotten how busy the
    threads were and stacks them on one core for a few tens of milliseconds
    (distkeras's LSTM step took 38 and 25 ms in the first two steps after a
    0.5 s pause, 15 ms after; PyTorch's 12 and 11 ms, 10.7 ms after): a cost
    a training loop pays once, not every ten steps.
    """
    for call, _ in contenders.values():
        for _ in range(warmup):
            call()
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, (call, samples) in contenders.items():
            if prepare is not None:
                prepare()
            time.sleep(settle)
            if lead_in:
                call()
            t0 = time.perf_counter()
            call()
            best[name] = max(best[name], samples / (time.perf_counter() - t0))
    return best


def import_time(module: str, env: dict | None = None, runs: int = 5) -> float:
    """Median wall time of `python -c 'import module'` minus a bare interpreter start."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return time.perf_counter() - t0

    base = statistics.median(run("pass") for _ in range(runs))
    return statistics.median(run(f"import {module}") for _ in range(runs)) - base


def optional(name: str):
    """Imports a peer, or prints that it is missing and returns None."""
    try:
        return __import__(name)
    except ImportError as e:
        print(f"[peer missing] {name}: {e}")
        return None
