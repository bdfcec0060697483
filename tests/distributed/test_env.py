"""Launch detection and timeout parsing."""

from __future__ import annotations

import pytest

from distkeras.distributed.env import LaunchInfo, default_timeout, detect_launch, parse_timeout


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, None),
        ({"HOME": "/root"}, None),
        (
            {
                "OMPI_COMM_WORLD_SIZE": "4",
                "OMPI_COMM_WORLD_RANK": "2",
                "OMPI_COMM_WORLD_LOCAL_RANK": "0",
                "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
            },
            LaunchInfo("openmpi", 2, 4, 0, 2),
        ),
        (
            {"PMI_SIZE": "3", "PMI_RANK": "1", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "3"},
            LaunchInfo("mpich", 1, 3, 1, 3),
        ),
        ({"PMIX_RANK": "5"}, LaunchInfo("pmix", 5, None)),
        (
            {
                "SLURM_PROCID": "3",
                "SLURM_STEP_ID": "0",
                "SLURM_STEP_NUM_TASKS": "8",
                "SLURM_NTASKS": "8",
                "SLURM_LOCALID": "1",
                "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
            },
            LaunchInfo("slurm", 3, 8, 1, 4),
        ),  # fmt: skip
        # An sbatch script itself (no srun step) is not a launch of N ranks.
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "12"}, None),
    ],
)
def test_detect_launch(environ, expected):
    assert detect_launch(environ) == expected


@pytest.mark.parametrize(
    "info, distributed",
    [
        (LaunchInfo("openmpi", 0, 1), False),
        (LaunchInfo("openmpi", 0, 2), True),
        (LaunchInfo("pmix", 0, None), True),
    ],
)
def test_is_distributed(info, distributed):
    assert info.is_distributed is distributed


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), (0, None), ("0", None), ("none", None), (float("inf"), None), (2, 2.0),
     ("2.5", 2.5), (" 30 ", 30.0)],
)  # fmt: skip
def test_parse_timeout(value, expected):
    assert parse_timeout(value) == expected


@pytest.mark.parametrize("value", [-1, "soon", True, [1], float("nan")])
def test_parse_timeout_rejects(value):
    with pytest.raises(ValueError, match="Received: timeout="):
        parse_timeout(value)


def test_default_timeout_reads_the_environment():
    assert default_timeout({}) == 300.0
    assert default_timeout({"DISTKERAS_COLLECTIVE_TIMEOUT": "7"}) == 7.0
    assert default_timeout({"DISTKERAS_COLLECTIVE_TIMEOUT": "0"}) is None
