"""`on_coordinator`: rank 0 runs the task, every rank returns together or raises its error."""

from __future__ import annotations

import pytest

from distkeras.distributed import LocalCommunicator
from distkeras.distributed.coordinator import CoordinatorError, on_coordinator


class FakeRank:
    """One rank of a two-rank job; `broadcast_object` returns what rank 0 would send."""

    def __init__(self, rank: int, from_root: dict | None = None):
        self.rank, self.size = rank, 2
        self.from_root = from_root
        self.sent: list = []

    def broadcast_object(self, obj, root=0):
        assert root == 0
        self.sent.append(obj)
        return obj if self.rank == 0 else self.from_root


def test_one_process_runs_the_task():
    ran = []
    assert on_coordinator(None, lambda: ran.append(1), "t") == {"what": "t"}
    assert on_coordinator(LocalCommunicator(), lambda: ran.append(2), "t") == {"what": "t"}
    assert ran == [1, 2]


def test_rank_0_runs_the_task_then_answers_the_others():
    ran = []
    comm = FakeRank(0)
    assert on_coordinator(comm, lambda: ran.append(1), "save('a')") == {"what": "save('a')"}
    assert ran == [1] and comm.sent == [{"what": "save('a')"}]


def test_rank_0_sends_its_error_and_raises_the_original():
    error = PermissionError(13, "Permission denied")

    def fail():
        raise error

    comm = FakeRank(0)
    with pytest.raises(PermissionError) as info:
        on_coordinator(comm, fail, "save('a')")
    assert info.value is error
    assert comm.sent == [
        {"what": "save('a')", "error": ["PermissionError", "[Errno 13] Permission denied"]}
    ]


def test_other_ranks_do_not_run_the_task_and_raise_rank_0s_error_type():
    outcome = {"what": "save('a')", "error": ["PermissionError", "[Errno 13] Permission denied"]}
    comm = FakeRank(1, outcome)
    with pytest.raises(PermissionError, match=r"rank 0\) failed save\('a'\): PermissionError"):
        on_coordinator(comm, lambda: pytest.fail("rank 1 ran the task"), "save('a')")
    assert on_coordinator(FakeRank(1, {"what": "x"}), pytest.fail, "x") == {"what": "x"}


def test_an_error_type_of_a_library_becomes_coordinator_error():
    outcome = {"what": "save('a')", "error": ["FileFormatError", "bad"]}
    with pytest.raises(CoordinatorError, match="FileFormatError: bad") as info:
        on_coordinator(FakeRank(1, outcome), pytest.fail, "save('a')")
    assert info.value.error_type == "FileFormatError"
