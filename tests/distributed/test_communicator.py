"""The Communicator interface through LocalCommunicator, the module-level API,
object serialization and the fail-fast hooks (single process; see test_mpi.py
for N ranks)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import distkeras.distributed as dist
from distkeras.distributed import LocalCommunicator, pack_object, unpack_object

REPO = Path(__file__).resolve().parents[2]
LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID")


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    dist.shutdown()
    yield
    dist.shutdown()


def run_python(code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- local collectives


def test_local_topology():
    comm = LocalCommunicator()
    assert (comm.rank, comm.size, comm.local_rank, comm.local_size) == (0, 1, 0, 1)
    assert comm.is_coordinator and comm.backend == "local" and not comm.deterministic


@pytest.mark.parametrize(
    "op, dtype",
    [
        (op, dt)
        for op in dist.REDUCE_OPS
        for dt in ("float32", "float64", "int32")
        if not (op == "mean" and dt == "int32")  # rejected, see below
    ],
)
def test_local_allreduce_is_identity_in_place(op, dtype):
    comm = LocalCommunicator()
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    before = x.copy()
    assert comm.allreduce(x, op) is x
    np.testing.assert_array_equal(x, before)
    items = [x, np.ones(3, dtype)]
    out = comm.allreduce(items, op)
    assert isinstance(out, list) and all(o is i for o, i in zip(out, items))
    assert comm.allreduce_async(x, op).wait() is x


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"arrays": np.ones(2), "op": "prod"}, ValueError, "Received: op='prod'"),
        ({"arrays": np.ones(2, np.int64), "op": "mean"}, ValueError, "dtype=int64"),
        ({"arrays": np.ones(2, bool), "op": "sum"}, ValueError, "dtype=bool"),
        ({"arrays": np.ones(2), "compression": "int8"}, ValueError, "compression='int8'"),
        ({"arrays": "abc"}, TypeError, "arrays"),
    ],
)
def test_allreduce_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        LocalCommunicator().allreduce(**kwargs)


def test_local_compression_rounds_through_float16():
    x = np.array([1 / 3, 1e-8, 1000.3], np.float32)
    want = x.astype(np.float16).astype(np.float32)
    out = LocalCommunicator(compression="float16").allreduce(x, "mean")
    assert out.tobytes() == want.tobytes()
    ints = np.array([1, 2])
    assert (LocalCommunicator().allreduce(ints, compression="float16") == [1, 2]).all()


def test_local_broadcast_allgather_barrier():
    comm = LocalCommunicator()
    a = np.ones(3)
    assert comm.broadcast(a) is a
    assert comm.broadcast([a, a])[1] is a
    obj = {"stop": True, "lr": 0.1}
    assert comm.broadcast(obj) is obj
    assert comm.broadcast_object(None) is None
    with pytest.raises(ValueError, match="Received: root=1"):
        comm.broadcast(obj, root=1)
    with pytest.raises(TypeError, match="type set"):
        comm.broadcast({1, 2})
    gathered = comm.allgather(np.zeros((0, 3)))
    assert len(gathered) == 1 and gathered[0].shape == (0, 3)
    assert comm.allgather_object({"r": 0}) == [{"r": 0}]
    assert comm.barrier() is None


def test_local_shards_are_the_whole_buffer():
    comm = LocalCommunicator()
    assert comm.shard_range(7) == (0, 7) and not comm.native_shards
    x = np.arange(7, dtype=np.float32)
    shard = comm.reduce_scatter(x, "sum")
    assert (shard == np.arange(7)).all()
    assert comm.allgather_shards(x) is x and (x == np.arange(7)).all()


class _FourRanks(LocalCommunicator):
    """Only the topology of a 4-rank job, to check the shard arithmetic."""

    size = 4  # type: ignore[assignment]


@pytest.mark.parametrize("n", [0, 3, 4, 10, 1001])
def test_shard_ranges_tile_the_buffer_evenly(n):
    comm = _FourRanks()
    bounds = [comm.shard_range(n, r) for r in range(4)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_local_abort_ends_process_with_reason():
    proc = run_python(
        """
        from distkeras.distributed import LocalCommunicator
        LocalCommunicator().abort("stop now", exit_code=3)
        print("not reached")
        """
    )
    assert proc.returncode == 3
    assert "rank 0 aborting the job: stop now" in proc.stderr
    assert "not reached" not in proc.stdout


# ----------------------------------------------------------------------------- objects


@pytest.mark.parametrize(
    "obj, expected",
    [
        ({"a": 1, "b": [1.5, None, True], "c": "x"}, {"a": 1, "b": [1.5, None, True], "c": "x"}),
        ((1, (2, 3)), [1, [2, 3]]),
        ({3: "int key"}, {3: "int key"}),
        (b"\x00raw", b"\x00raw"),
        (np.float32(0.5), 0.5),
        ({"n": np.int64(7), "flag": np.bool_(True)}, {"n": 7, "flag": True}),
    ],
)
def test_object_roundtrip(obj, expected):
    assert unpack_object(pack_object(obj)) == expected


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "bool", "complex64"])
def test_arrays_inside_objects_keep_dtype_and_shape(dtype):
    a = (np.arange(6) % 2).astype(dtype).reshape(2, 3)
    b = unpack_object(pack_object({"w": a}))["w"]
    assert b.dtype == a.dtype and b.shape == a.shape and (b == a).all() and b.flags.writeable


@pytest.mark.parametrize(
    "obj, match",
    [
        (object(), "type object"),
        ({"f": len}, "builtin_function_or_method"),
        (np.array([None, 1], dtype=object), "dtype=object"),
    ],
)
def test_non_plain_objects_are_refused(obj, match):
    with pytest.raises(TypeError, match=match):
        pack_object(obj)


def test_unknown_extension_types_are_refused():
    import msgpack

    data = msgpack.packb(msgpack.ExtType(42, b"payload"))
    with pytest.raises(ValueError, match="code=42"):
        unpack_object(data)


# ----------------------------------------------------------------------------- module API


def test_initialize_and_accessors_in_one_process():
    assert not dist.is_initialized()
    comm = dist.get_communicator()  # auto-initializes: no launcher in the environment
    assert isinstance(comm, LocalCommunicator) and dist.is_initialized()
    assert (dist.rank(), dist.size(), dist.local_rank(), dist.local_size()) == (0, 1, 0, 1)
    assert dist.is_coordinator() and not dist.is_deterministic()
    assert dist.initialize("local") is comm  # idempotent
    dist.shutdown()
    comm2 = dist.initialize("auto", deterministic=True, timeout=5)
    assert comm2 is not comm and dist.is_deterministic() and comm2.timeout == 5.0


@pytest.mark.parametrize(
    "backend, error, match",
    [
        ("ray", (RuntimeError, ImportError), "needs"),  # outside a Ray worker
        ("nccl", ValueError, "Received: backend='nccl'"),
    ],
)
def test_initialize_rejects_backends(backend, error, match):
    with pytest.raises(error, match=match):
        dist.initialize(backend)


def test_initialize_with_another_backend_needs_shutdown(monkeypatch):
    dist.initialize("local")
    with pytest.raises(RuntimeError, match="shutdown"):
        dist.initialize("mpi")


def test_timeout_argument_and_environment(monkeypatch):
    monkeypatch.setenv("DISTKERAS_COLLECTIVE_TIMEOUT", "12.5")
    assert LocalCommunicator().timeout == 12.5
    assert LocalCommunicator(timeout=0).timeout is None
    monkeypatch.delenv("DISTKERAS_COLLECTIVE_TIMEOUT")
    assert LocalCommunicator().timeout == 120.0  # adaptive: see test_deadlines.py
    with pytest.raises(ValueError, match="Received: timeout=-1"):
        LocalCommunicator(timeout=-1)


def test_importing_does_not_import_mpi4py():
    proc = run_python(
        """
        import sys
        import distkeras.distributed as dist
        dist.get_communicator().allreduce([1.0, 2.0])
        assert "mpi4py" not in sys.modules, "mpi4py was imported"
        print("clean")
        """
    )
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr


def test_fail_fast_in_one_process_keeps_the_normal_traceback():
    proc = run_python(
        """
        import distkeras.distributed as dist
        dist.install_excepthook()
        with dist.fail_fast():
            raise KeyError("plain failure")
        """
    )
    assert proc.returncode == 1
    assert "KeyError: 'plain failure'" in proc.stderr
    assert "[distkeras]" not in proc.stderr  # no abort machinery for one process


def test_excepthook_of_a_multi_rank_job_prints_rank_and_aborts():
    # A stand-in communicator of size 2 whose abort exits: the hook must print
    # the rank and traceback first, then abort with exit code 1.
    proc = run_python(
        """
        import os, sys
        from distkeras.distributed import LocalCommunicator
        from distkeras.distributed.communicator import install_excepthook

        class TwoRanks(LocalCommunicator):
            rank = 1
            size = 2
            def abort(self, reason="", exit_code=1):
                sys.stderr.write(f"ABORT {exit_code} {reason}\\n"); sys.stderr.flush()
                os._exit(exit_code)

        install_excepthook(TwoRanks())
        def inner():
            raise ZeroDivisionError("bad step")
        inner()
        """
    )
    assert proc.returncode == 1
    err = proc.stderr
    assert err.index("[distkeras] rank 1 failed:") < err.index("ZeroDivisionError: bad step")
    assert "in inner" in err and "ABORT 1 uncaught ZeroDivisionError on rank 1" in err
