"""Failure scenarios for the fail-fast tests; run under `mpirun -n N`.

Usage: failures.py exception|kill|timeout|mismatch|stall|slow

- exception: rank 1 raises while the others wait in an allreduce.
- kill: rank 1 kills itself with SIGKILL while the others wait in an allreduce.
- timeout: (timeout 1 s) rank 1 sleeps outside any collective, the last rank
  waits in a barrier, the others in an allreduce.
- mismatch: the last rank all-reduces a different shape; nobody catches the error.
- stall: (stall warning 2 s, timeout 8 s) rank 1 sleeps in user code for a
  minute while the others wait in an allreduce.
- slow: (stall warning 1 s, timeout 60 s) rank 1 is 3 s late to an allreduce,
  then all ranks run more collectives and finish.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

import distkeras.distributed as dist


def main(scenario: str) -> None:
    settings = {"timeout": (1.0, None), "stall": (8.0, 2.0), "slow": (60.0, 1.0)}
    timeout, stall_warning = settings.get(scenario, (None, None))
    comm = dist.initialize(timeout=timeout, stall_warning=stall_warning)
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
    elif scenario == "stall":
        if r == 1:
            time.sleep(60)
        comm.allreduce(x)
    elif scenario == "slow":
        if r == 1:
            time.sleep(3)
        for _ in range(3):
            comm.allreduce(x)
            comm.barrier()
        # The 3 s wait lies between two collectives of every rank: the adaptive
        # timeout has seen it.
        assert comm.slowest_interval >= 3.0, comm.slowest_interval
    elif scenario == "mismatch":
        comm.allreduce(np.ones(10 + (r == n - 1)))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    print(f"rank {r} finished without error", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
