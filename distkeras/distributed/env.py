"""Detects how this process was launched (mpirun, mpiexec, srun or plainly).

Reads only environment variables, so it costs nothing and imports no MPI.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

DEFAULT_COLLECTIVE_TIMEOUT = 300.0
TIMEOUT_ENV = "DISTKERAS_COLLECTIVE_TIMEOUT"


@dataclasses.dataclass(frozen=True)
class LaunchInfo:
    """What the launcher told this process.

    Attributes:
        launcher: 'openmpi', 'mpich' (Hydra/PMI), 'pmix' or 'slurm'.
        rank: This process's rank, or None if the launcher did not say.
        size: The number of processes, or None if the launcher did not say.
        local_rank: Rank among the processes on this node, or None.
        local_size: Number of processes on this node, or None.
    """

    launcher: str
    rank: int | None
    size: int | None
    local_rank: int | None = None
    local_size: int | None = None

    @property
    def is_distributed(self) -> bool:
        """True when more than one process runs, or the size is unknown."""
        return self.size is None or self.size > 1


def _int(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        value = env.get(name)
        if value is None or value == "":
            continue
        try:
            return int(value.split("(")[0].split(",")[0])
        except ValueError:
            continue
    return None


def detect_launch(environ: Mapping[str, str] | None = None) -> LaunchInfo | None:
    """Returns the launch the environment describes, or None for a plain process.

    Recognizes Open MPI's mpirun (`OMPI_COMM_WORLD_*`), MPICH/Hydra and Intel MPI
    (`PMI_SIZE`, `PMI_RANK`), any PMIx launcher (`PMIX_RANK`) and Slurm's srun
    (`SLURM_STEP_ID` with `SLURM_PROCID`; a batch script alone is not a launch).

    Args:
        environ: The environment to read; defaults to `os.environ`.
    """
    env = os.environ if environ is None else environ
    if "OMPI_COMM_WORLD_SIZE" in env:
        return LaunchInfo(
            "openmpi",
            _int(env, "OMPI_COMM_WORLD_RANK"),
            _int(env, "OMPI_COMM_WORLD_SIZE"),
            _int(env, "OMPI_COMM_WORLD_LOCAL_RANK"),
            _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE"),
        )
    if "PMI_SIZE" in env or "PMI_RANK" in env:
        return LaunchInfo(
            "mpich",
            _int(env, "PMI_RANK"),
            _int(env, "PMI_SIZE"),
            _int(env, "MPI_LOCALRANKID", "PALS_LOCAL_RANKID"),
            _int(env, "MPI_LOCALNRANKS"),
        )
    if "PMIX_RANK" in env:
        return LaunchInfo("pmix", _int(env, "PMIX_RANK"), _int(env, "PMIX_SIZE"))
    if "SLURM_PROCID" in env and ("SLURM_STEP_ID" in env or "SLURM_STEPID" in env):
        return LaunchInfo(
            "slurm",
            _int(env, "SLURM_PROCID"),
            _int(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"),
            _int(env, "SLURM_LOCALID"),
            _int(env, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"),
        )
    return None


def parse_timeout(value: object, name: str = "timeout") -> float | None:
    """Normalizes a timeout: seconds > 0, or None (never time out) for 0/None/'none'/inf.

    Args:
        value: A number, a numeric string, or None.
        name: The argument name used in error messages.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "off", "inf", "infinity", "0"):
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"`{name}` must be a number of seconds or 'none'. Received: {name}={value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a number of seconds or None. Received: {name}={value!r}"
        )
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"`{name}` must be >= 0 (0 disables it). Received: {name}={value!r}")
    if value == 0 or math.isinf(value):
        return None
    return value


def default_timeout(environ: Mapping[str, str] | None = None) -> float | None:
    """The collective timeout: `DISTKERAS_COLLECTIVE_TIMEOUT` if set, else 300 s."""
    env = os.environ if environ is None else environ
    if TIMEOUT_ENV in env:
        return parse_timeout(env[TIMEOUT_ENV], TIMEOUT_ENV)
    return DEFAULT_COLLECTIVE_TIMEOUT


OUTPUT_ENV = "DISTKERAS_RUN_OUTPUT"
TTY_ENV = "DISTKERAS_STDOUT_TTY"


def apply_output_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Silences this rank's stdout when `distkeras-run` shows rank 0's only.

    `distkeras-run` sets `DISTKERAS_RUN_OUTPUT=rank0` (its default `--output`);
    a rank other than 0 then sends its stdout (file descriptor 1) to the null
    device, as torchrun and horovodrun show rank 0's output only. Its stderr
    (warnings, tracebacks) still shows.

    Args:
        environ: The environment to read; defaults to `os.environ`.

    Returns:
        True when this rank's stdout was silenced.
    """
    env = os.environ if environ is None else environ
    if env.get(OUTPUT_ENV) != "rank0":
        return False
    info = detect_launch(env)
    if info is None or info.rank in (None, 0):
        return False
    import sys  # noqa: PLC0415

    with open(os.devnull, "wb") as null:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os.dup2(null.fileno(), 1)
    return True


def stdout_is_terminal(stream=None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether output on `stream` (default stdout) reaches a terminal.

    Under `distkeras-run` the answer comes from `DISTKERAS_STDOUT_TTY` (the
    launcher's own stdout), since Open MPI hands its ranks a pseudo-terminal
    even when the launcher's output goes to a file.
    """
    env = os.environ if environ is None else environ
    told = env.get(TTY_ENV, "").strip()
    if told in ("0", "1"):
        return told == "1"
    import sys  # noqa: PLC0415

    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
