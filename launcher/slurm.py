"""The Slurm batch script that `distkeras-run --backend slurm` submits.

`cluster/slurm/train.sbatch` in the repository is this template rendered with
its defaults (`default_sbatch()`); a test keeps the two identical.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence

DEFAULT_COMMAND = ("python", "examples/mnist_mlp.py", "--epochs", "5")
DEFAULT_NTASKS = 2
DEFAULT_TIME_S = 1800.0

_HEADER = """\
#!/bin/bash
# distkeras data-parallel training job for Slurm.
#
#   sbatch cluster/slurm/train.sbatch          # submit this file as it is
#   sbatch --ntasks=8 cluster/slurm/train.sbatch
#   distkeras-run --backend slurm -np 8 python train.py --epochs 20
#                                              # fills this template and submits it
#
# Inside the allocation, distkeras-run starts one rank per Slurm task with
# `srun --mpi=pmix` (or mpirun when srun is missing). Set --cpus-per-task to the
# threads each rank should use; GPUs are handed out with --gpus-per-task.
"""


def format_time(seconds: float) -> str:
    """Formats a duration as Slurm's HH:MM:SS (rounded up to whole seconds)."""
    total = max(1, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def render_sbatch(
    ntasks: int,
    command: Sequence[str],
    *,
    gpus_per_task: int | None = None,
    time_limit: float | None = None,
    env: Mapping[str, str] | None = None,
    job_name: str = "distkeras",
    cpus_per_task: int = 1,
) -> str:
    """Renders the batch script.

    Args:
        ntasks: Number of ranks (`#SBATCH --ntasks`).
        command: The training command, e.g. `['python', 'train.py', '--epochs', '5']`.
        gpus_per_task: GPUs per rank, or None for a CPU job.
        time_limit: Wall-clock limit in seconds (`#SBATCH --time`), or None.
        env: Extra environment variables exported before the job starts.
        job_name: `#SBATCH --job-name`.
        cpus_per_task: `#SBATCH --cpus-per-task` (threads per rank).

    Returns:
        The script text.
    """
    lines = [_HEADER.rstrip("\n")]
    lines.append(f"#SBATCH --job-name={job_name}")
    lines.append(f"#SBATCH --ntasks={int(ntasks)}")
    lines.append(f"#SBATCH --cpus-per-task={int(cpus_per_task)}")
    if gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={int(gpus_per_task)}")
    if time_limit:
        lines.append(f"#SBATCH --time={format_time(time_limit)}")
    lines.append("#SBATCH --output=distkeras-%j.out")
    lines.append("")
    lines.append("set -euo pipefail")
    lines.append('export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"')
    for key, value in (env or {}).items():
        lines.append(f"export {key}={shlex.quote(value)}")
    run = ["distkeras-run", "--backend", "slurm", "-np", '"${SLURM_NTASKS}"']
    if gpus_per_task:
        run += ["--gpus-per-proc", str(int(gpus_per_task))]
    lines.append("exec " + " ".join(run) + " " + shlex.join(list(command)))
    return "\n".join(lines) + "\n"


def default_sbatch() -> str:
    """The script shipped as `cluster/slurm/train.sbatch`."""
    return render_sbatch(DEFAULT_NTASKS, DEFAULT_COMMAND, time_limit=DEFAULT_TIME_S)
