"""The CPU-checkable parts of the GPU communicator: fusion plan and transport choice.

The collectives themselves need CuPy and GPUs: see tests/gpu/test_nccl.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras.backend.strict import strict
from distkeras.distributed import LocalCommunicator
from distkeras.distributed.nccl import (
    choose_transport,
    cuda_aware_mpi,
    is_cupy_array,
    maybe_gpu_communicator,
    plan_buckets,
)


def _arrays(spec):
    return [np.zeros(n, dtype) for n, dtype in spec]


PLANS = [
    # (array sizes and dtypes, bucket bytes, expected buckets of indices)
    ([(4, "float32")] * 3, 1024, [[0, 1, 2]]),
    ([(100, "float32")] * 3, 800, [[0, 1], [2]]),  # 400 B each: two fit in 800 B
    ([(10, "float32"), (10, "int64"), (10, "float32")], 1024, [[0, 2], [1]]),
    ([(1000, "float64"), (2, "float64")], 64, [[0], [1]]),  # larger than a bucket: alone
    ([], 64, []),
]


@pytest.mark.parametrize("spec,bucket_bytes,expected", PLANS)
def test_plan_buckets_fuses_by_dtype_and_size(spec, bucket_bytes, expected):
    plan = plan_buckets(_arrays(spec), bucket_bytes)
    assert plan == expected
    assert sorted(i for b in plan for i in b) == list(range(len(spec)))


class _Host:
    def __init__(self, backend):
        self.backend = backend


@pytest.mark.parametrize(
    "host,nccl,env,expected",
    [
        ("mpi", True, {}, "nccl"),
        ("mpi", False, {"DISTKERAS_CUDA_AWARE_MPI": "1"}, "cuda_aware_mpi"),
        ("mpi", False, {"DISTKERAS_CUDA_AWARE_MPI": "0"}, "staged"),
        ("ray", False, {"DISTKERAS_CUDA_AWARE_MPI": "1"}, "staged"),
        ("mpi", True, {"DISTKERAS_GPU_COLLECTIVES": "staged"}, "staged"),
    ],
)
def test_choose_transport(host, nccl, env, expected):
    assert choose_transport(_Host(host), nccl, env) == expected


def test_unknown_transport_is_refused():
    with pytest.raises(ValueError, match="DISTKERAS_GPU_COLLECTIVES='gloo'"):
        choose_transport(_Host("mpi"), True, {"DISTKERAS_GPU_COLLECTIVES": "gloo"})


def test_cuda_aware_mpi_env_override():
    assert cuda_aware_mpi({"DISTKERAS_CUDA_AWARE_MPI": "yes"}) is True
    assert cuda_aware_mpi({"DISTKERAS_CUDA_AWARE_MPI": "off"}) is False


def test_host_arrays_and_numpy_backend_keep_the_host_communicator():
    assert not is_cupy_array(np.zeros(2)) and not is_cupy_array(strict.zeros(2))
    host = LocalCommunicator()
    assert maybe_gpu_communicator(host) is host
