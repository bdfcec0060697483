"""Failure scenarios for the fail-fast tests; run under `mpirun -n N`.

Usage: failures.py exception|kill|timeout|mismatch

- exception: rank 1 raises while the others wait in an allreduce.
- kill: rank 1 kills itself with SIGKILL while the others wait in an allreduce.
- timeout: (timeout 1 s) rank 1 sleeps outside any collective, the last rank
  waits in a barrier, the others in an allreduce.
- mismatch: the last rank all-reduces a different shape; nobody catches the error.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import distkeras.distributed as dist


def main(scenario: str) -> None:
    comm = dist.initialize(timeout=1.0 if scenario == "timeout" else None)
    r, n = comm.rank, comm.size
    comm.barrier()
    x = np.ones(1000, np.float32)
    if scenario == "exception":
        if r == 1:
            time.sleep(0.5)
            raise ValueError("boom from rank 1")
        comm.allreduce(x)
    elif scenario == "kill":
        if r == 1:
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)
        comm.allreduce(x)
    elif scenario == "timeout":
        if r == 1:
            time.sleep(30)
        elif r == n - 1:
            comm.barrier()
        else:
            comm.allreduce(x)
    elif scenario == "mismatch":
        comm.allreduce(np.ones(10 + (r == n - 1)))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    print(f"rank {r} finished without error", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
