"""Device placement: which GPU a rank pins, and `backend.device()`.

CuPy is replaced by a small fake module here, so the placement logic and its
wiring into `set_backend('cupy')` run on a CPU-only machine; tests/gpu/ checks
the real thing.
"""

from __future__ import annotations

import sys
import types

import pytest

from distkeras import backend
from distkeras.backend.device import choose_device_index, local_rank_from_env

PLACEMENT = [
    # (local_rank, visible devices, environment, expected index)
    (0, 4, {}, 0),
    (3, 4, {}, 3),
    (1, 1, {"CUDA_VISIBLE_DEVICES": "5"}, 0),  # the launcher gave this rank one GPU
    (2, 8, {"DISTKERAS_DEVICE": "cuda:5"}, 5),
    (2, 8, {"DISTKERAS_DEVICE": "6"}, 6),
]


@pytest.mark.parametrize("local_rank,count,env,expected", PLACEMENT)
def test_choose_device_index(local_rank, count, env, expected):
    assert choose_device_index(local_rank, count, env) == expected


def test_more_ranks_than_gpus_wraps_around_with_a_warning():
    with pytest.warns(UserWarning, match="share 2 visible GPU"):
        assert choose_device_index(3, 2, {}) == 1


@pytest.mark.parametrize(
    "count,env,match",
    [
        (0, {}, "no visible CUDA device"),
        (2, {"DISTKERAS_DEVICE": "cuda:2"}, "DISTKERAS_DEVICE='cuda:2'"),
        (2, {"DISTKERAS_DEVICE": "tpu"}, "DISTKERAS_DEVICE='tpu'"),
    ],
)
def test_bad_placement_is_refused(count, env, match):
    with pytest.raises((RuntimeError, ValueError), match=match):
        choose_device_index(0, count, env)


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, 0),
        ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "2"}, 2),
        ({"PMI_SIZE": "2", "PMI_RANK": "1", "MPI_LOCALRANKID": "1"}, 1),
        ({"LOCAL_RANK": "3"}, 3),
        ({"DISTKERAS_LOCAL_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4"}, 1),
    ],
)
def test_local_rank_from_env(env, expected):
    assert local_rank_from_env(env) == expected


def _fake_cupy(count: int) -> types.ModuleType:
    state = {"current": 0}

    class Device:
        def __init__(self, index: int):
            self.index = index

        def use(self) -> None:
            state["current"] = self.index

    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: count, getDevice=lambda: state["current"]
    )
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=runtime, Device=Device)
    return cupy


def test_selecting_cupy_pins_the_local_ranks_gpu(monkeypatch):
    previous = backend.backend()
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(4))
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "8")
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3")
    monkeypatch.delenv("DISTKERAS_DEVICE", raising=False)
    monkeypatch.delenv("DISTKERAS_LOCAL_RANK", raising=False)
    try:
        assert backend.device() == "cpu"
        backend.set_backend("cupy")
        assert backend.device() == "cuda:3"
    finally:
        backend.set_backend(previous)
    assert backend.device() == "cpu"
