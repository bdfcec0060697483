"""`scale_learning_rate`: the linear and square-root rules, the default world size, errors."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import distkeras.distributed as dist
from distkeras.distributed.scaling import scale_learning_rate


@pytest.mark.parametrize(
    "lr, size, rule, expected",
    [
        (0.1, 1, "linear", 0.1),
        (0.1, 4, "linear", 0.4),
        (1e-3, 8, "linear", 8e-3),
        (0.1, 4, "sqrt", 0.2),
        (1e-3, 2, "sqrt", 1e-3 * math.sqrt(2)),
        (0.0, 16, "linear", 0.0),
        (np.float32(0.5), np.int64(3), "linear", float(np.float32(0.5)) * 3),
        (2, 9, "sqrt", 6.0),
    ],
)
def test_rules(lr, size, rule, expected):
    out = scale_learning_rate(lr, size, rule=rule)
    assert type(out) is float
    assert out == pytest.approx(expected, rel=1e-12)


class _FakeComm:
    def __init__(self, size):
        self.size = size


def test_world_size_defaults_to_the_communicator(monkeypatch):
    monkeypatch.setattr(dist, "get_communicator", lambda: _FakeComm(4))
    assert scale_learning_rate(0.1) == pytest.approx(0.4)
    assert scale_learning_rate(0.1, rule="sqrt") == pytest.approx(0.2)
    assert scale_learning_rate(0.1, world_size=2) == pytest.approx(0.2)


def test_single_process_default_is_identity(monkeypatch):
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    dist.shutdown()
    try:
        assert scale_learning_rate(0.25) == 0.25
    finally:
        dist.shutdown()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -0.1, "world_size": 2}, "Received: lr=-0.1"),
        ({"lr": float("nan"), "world_size": 2}, "Received: lr=nan"),
        ({"lr": "0.1", "world_size": 2}, "Received: lr='0.1'"),
        ({"lr": True, "world_size": 2}, "Received: lr=True"),
        ({"lr": 0.1, "world_size": 0}, "Received: world_size=0"),
        ({"lr": 0.1, "world_size": 2.0}, "Received: world_size=2.0"),
        ({"lr": 0.1, "world_size": True}, "Received: world_size=True"),
        ({"lr": 0.1, "world_size": 2, "rule": "cubic"}, "Received: rule='cubic'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        scale_learning_rate(**kwargs)
