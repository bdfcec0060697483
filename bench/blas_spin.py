"""CPU time OpenBLAS's worker threads burn per CNN training step, per start-up variant.

A figure that a busy machine disturbs less than samples/s: the workers' CPU
time is their GEMM share plus their idle spinning, and the spinning is what
issue 21 is about. Each variant (see `common.VARIANTS`) runs in its own
process, NumPy imported first; the workers are the threads that exist after a
GEMM and before the model is built (distkeras's pool starts later).

    python bench/blas_spin.py [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np  # before distkeras, as in a user's script

sys.path.insert(0, os.path.dirname(__file__))
from common import VARIANTS  # noqa: E402


def _cpu() -> dict[int, float]:
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(t)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def worker(steps: int) -> None:
    """Child: prints ms per step of the OpenBLAS workers, the other threads, and wall time."""
    a = np.ones((512, 512), np.float32)
    a @ a
    from cnn import BATCH, CLASSES, SIDE, distkeras_model  # noqa: PLC0415

    import distkeras  # noqa: PLC0415

    a @ a
    main = threading.get_native_id()
    blas = set(_cpu()) - {main}
    model = distkeras_model()
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, SIDE, SIDE, 1), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    for _ in range(3):
        model.train_on_batch(x, y)
    c0, t0 = _cpu(), time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    wall, c1 = time.perf_counter() - t0, _cpu()
    d = {t: c1[t] - c0.get(t, 0.0) for t in c1}
    ms = 1000 / steps
    print(
        json.dumps(
            {
                "mode": distkeras._blas.STATE["mode"],
                "blas": sum(v for t, v in d.items() if t in blas) * ms,
                "others": sum(v for t, v in d.items() if t not in blas) * ms,
                "wall": wall * ms,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.steps)
        return
    base = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT",)}
    base.pop("DISTKERAS_BLAS_TUNE", None)
    variants = {"after": {}, **{k: VARIANTS[k] for k in ("before", "exported")}}
    got: dict[str, list[dict]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # interleaved
        for name, extra in variants.items():
            out = subprocess.run(
                [sys.executable, __file__, "--worker", "--steps", str(args.steps)],
                env={**base, **extra},
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            got[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"CNN train_on_batch, ms per step (median of {args.repeats} processes, min-max)")
    print(f"{'':12s}{'mode':>10s}{'BLAS workers CPU':>22s}{'other threads CPU':>22s}{'wall':>18s}")
    for name, runs in got.items():
        cells = []
        for key in ("blas", "others", "wall"):
            vals = [r[key] for r in runs]
            cells.append(f"{statistics.median(vals):7.1f} ({min(vals):.1f}-{max(vals):.1f})")
        print(f"{name:12s}{runs[0]['mode']:>10s}" + "".join(f"{c:>22s}" for c in cells))


if __name__ == "__main__":
    main()
