"""The stall warning and the adaptive collective timeout (settings and arithmetic).

The behaviour under a real hang is tested with mpirun in test_mpi.py.
"""

from __future__ import annotations

import logging

import pytest

from distkeras.distributed import LocalCommunicator
from distkeras.distributed.deadlines import (
    adaptive_timeout,
    default_stall_warning,
    describe_absence,
    warn_stall,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("DISTKERAS_COLLECTIVE_TIMEOUT", raising=False)
    monkeypatch.delenv("DISTKERAS_STALL_WARNING_S", raising=False)


@pytest.mark.parametrize(
    "slowest,expected",
    [(0.0, 120.0), (0.5, 120.0), (6.0, 120.0), (6.5, 130.0), (30.0, 600.0)],
)
def test_adaptive_timeout_is_the_larger_of_120_s_and_20x_the_slowest(slowest, expected):
    assert adaptive_timeout(slowest) == pytest.approx(expected)


def test_adaptive_timeout_floor_and_factor_are_arguments():
    assert adaptive_timeout(2.0, floor_s=10.0, factor=3.0) == 10.0
    assert adaptive_timeout(5.0, floor_s=10.0, factor=3.0) == 15.0


def test_the_default_timeout_follows_the_slowest_interval_seen():
    comm = LocalCommunicator()
    assert comm.timeout_is_adaptive and comm.timeout == 120.0
    comm.observe_interval(10.0)
    assert comm.slowest_interval == 10.0 and comm.timeout == 200.0
    comm.observe_interval(2.0)  # a faster step does not lower it
    assert comm.timeout == 200.0


def test_an_explicit_timeout_wins_over_the_adaptive_one(monkeypatch):
    comm = LocalCommunicator(timeout=30)
    comm.observe_interval(100.0)
    assert comm.timeout == 30.0 and not comm.timeout_is_adaptive
    assert LocalCommunicator(timeout=0).timeout is None
    comm = LocalCommunicator()
    comm.timeout = 7
    comm.observe_interval(100.0)
    assert comm.timeout == 7.0 and not comm.timeout_is_adaptive
    monkeypatch.setenv("DISTKERAS_COLLECTIVE_TIMEOUT", "45")
    comm = LocalCommunicator()
    comm.observe_interval(100.0)
    assert comm.timeout == 45.0 and not comm.timeout_is_adaptive


def test_stall_warning_setting(monkeypatch):
    assert LocalCommunicator().stall_warning == 30.0
    assert LocalCommunicator(stall_warning=2).stall_warning == 2.0
    assert LocalCommunicator(stall_warning=0).stall_warning is None
    monkeypatch.setenv("DISTKERAS_STALL_WARNING_S", "2.5")
    assert default_stall_warning() == 2.5 and LocalCommunicator().stall_warning == 2.5
    assert LocalCommunicator(stall_warning=9).stall_warning == 9.0  # the argument wins
    monkeypatch.setenv("DISTKERAS_STALL_WARNING_S", "none")
    assert LocalCommunicator().stall_warning is None
    monkeypatch.setenv("DISTKERAS_STALL_WARNING_S", "soon")
    with pytest.raises(ValueError, match="Received: DISTKERAS_STALL_WARNING_S='soon'"):
        LocalCommunicator()
    with pytest.raises(ValueError, match="Received: stall_warning=-1"):
        LocalCommunicator(stall_warning=-1)


def test_no_stall_warning_at_or_after_the_timeout():
    comm = LocalCommunicator(timeout=10, stall_warning=3)
    assert comm.stall_deadline(comm.timeout) == 3.0
    assert comm.stall_deadline(3.0) is None  # the timeout error comes first
    assert comm.stall_deadline(None) == 3.0  # no timeout: the warning still comes
    assert LocalCommunicator(stall_warning=0).stall_deadline(10.0) is None


def test_stall_message_names_the_ranks_and_the_collective(caplog):
    absence = describe_absence([1, 3], {2: "#4 barrier"}, [0], final=False)
    assert absence == (
        "rank(s) [1, 3] have not arrived (busy outside any collective, hung or dead); "
        "rank 2 is waiting in collective #4 barrier; rank(s) [0] arrived"
    )
    with caplog.at_level(logging.WARNING, logger="distkeras.distributed"):
        warn_stall(4, "#5 allreduce(op='sum')", 30.2, absence, 120.0, True)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert text.startswith("[distkeras] stall: rank 4 has waited 30.2 s in collective #5 allreduce")
    assert "rank(s) [1, 3] have not arrived" in text and "times out after 120.0 s" in text
    assert describe_absence([1], {}, []).startswith("rank(s) [1] never arrived")
