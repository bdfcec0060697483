"""Gives each rank its own GPUs, then becomes the rank's program.

    python -m launcher.rankenv --gpus-per-proc K program [args ...]

Sets CUDA_VISIBLE_DEVICES to this rank's K devices, chosen by its local rank
(`OMPI_COMM_WORLD_LOCAL_RANK`, `SLURM_LOCALID`, `MPI_LOCALRANKID` or
`LOCAL_RANK`) out of the devices already visible, then execs the program, so
the rank keeps the same process id and receives signals directly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

LOCAL_RANK_VARS = ("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK")


def local_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank on its node, from the launcher's environment (0 if none says)."""
    env = os.environ if environ is None else environ
    for name in LOCAL_RANK_VARS:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def devices_for(rank: int, gpus_per_proc: int, visible: str | None = None) -> str:
    """The CUDA_VISIBLE_DEVICES value for a local rank.

    Args:
        rank: The local rank.
        gpus_per_proc: GPUs per rank.
        visible: The CUDA_VISIBLE_DEVICES already set, or None for all devices.
            A list no longer than `gpus_per_proc` is taken as already bound to
            this rank (as `srun --gpus-per-task` does) and kept.

    Returns:
        A comma-separated device list.

    Raises:
        ValueError: when the visible devices are too few for this rank.
    """
    if gpus_per_proc < 1:
        raise ValueError(f"gpus_per_proc must be >= 1. Received: gpus_per_proc={gpus_per_proc}")
    if visible is None or visible.strip() == "":
        devices = None
    else:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
        if len(devices) <= gpus_per_proc:
            return ",".join(devices)
    start = rank * gpus_per_proc
    if devices is None:
        return ",".join(str(i) for i in range(start, start + gpus_per_proc))
    if start + gpus_per_proc > len(devices):
        raise ValueError(
            f"Local rank {rank} needs GPUs {start}..{start + gpus_per_proc - 1} of the "
            f"visible devices, but only {len(devices)} are visible. "
            f"Received: CUDA_VISIBLE_DEVICES={visible!r}, gpus_per_proc={gpus_per_proc}"
        )
    return ",".join(devices[start : start + gpus_per_proc])


def main(argv: list[str] | None = None) -> int:
    """Sets CUDA_VISIBLE_DEVICES and execs the program; returns only on error."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m launcher.rankenv --gpus-per-proc K program [args ...]"
    if len(args) < 3 or args[0] != "--gpus-per-proc" or not args[1].isdigit():
        print(usage, file=sys.stderr)
        return 2
    k, program = int(args[1]), args[2:]
    if program[:1] == ["--"]:
        program = program[1:]
    try:
        value = devices_for(local_rank(), k, os.environ.get("CUDA_VISIBLE_DEVICES"))
    except ValueError as e:
        print(f"distkeras-run: error: {e}", file=sys.stderr)
        return 2
    os.environ["CUDA_VISIBLE_DEVICES"] = value
    try:
        os.execvp(program[0], program)
    except OSError as e:
        print(f"distkeras-run: error: cannot run {program[0]!r}: {e}", file=sys.stderr)
        return 127
    return 0  # unreachable: exec replaced the process


if __name__ == "__main__":
    sys.exit(main())
