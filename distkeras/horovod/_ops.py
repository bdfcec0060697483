"""Horovod's process model and collectives, on distkeras's communicator.

`init()` creates (or reuses) the process-wide communicator of
`distkeras.distributed` (MPI under `mpirun`/`distkeras-run`, Ray under
`distkeras-run --backend ray`, local otherwise) and switches models to
Horovod's model: every rank is an independent Keras process that trains on
its own data, and ranks meet only where the script says so, through a
`DistributedOptimizer`, the callbacks, or the collectives below.

Join. Every all-reduce here is preceded by a small control all-reduce
that says how many ranks still have data and what is being reduced, so that
a rank that called `join()` can take part with identity values (zeros for
a sum) until every rank has joined, as Horovod's `hvd.join()` does for
all-reduces. An average divides by the number of ranks that contributed.
Other collectives (broadcast, allgather, the objects) cannot be shadowed by
a joined rank: call `join()` after the last of those.
"""

from __future__ import annotations

import socket
import warnings
from typing import Any

import numpy as np

from distkeras import distributed

# Horovod's reduction ops, as the names its scripts use.
Average = "average"
Sum = "sum"
Adasum = "adasum"
Min = "min"
Max = "max"
_OPS = {Average: "mean", Sum: "sum", Min: "min", Max: "max"}
_OP_CODES = ("sum", "mean", "max", "min")
_DTYPES = ("float32", "float64", "float16", "int32", "int64", "int8", "int16", "uint8", "bool")

_state: dict[str, Any] = {"comm": None, "joined": False, "cross": None}


class NoneCompressor:
    """No compression: gradients travel in their own dtype (`hvd.Compression.none`)."""

    wire: str | None = None

    @staticmethod
    def compress(tensor: Any) -> tuple[Any, Any]:
        """Returns (tensor, context) unchanged."""
        return tensor, None

    @staticmethod
    def decompress(tensor: Any, ctx: Any) -> Any:
        """Returns the tensor unchanged."""
        return tensor


class FP16Compressor(NoneCompressor):
    """Floating tensors travel as float16 and are summed in float32 (`hvd.Compression.fp16`)."""

    wire = "float16"

    @staticmethod
    def compress(tensor: Any) -> tuple[Any, Any]:
        """Casts a floating tensor to float16; returns (tensor, original dtype)."""
        a = np.asarray(tensor)
        if a.dtype.kind == "f":
            return a.astype(np.float16), a.dtype
        return a, None

    @staticmethod
    def decompress(tensor: Any, ctx: Any) -> Any:
        """Casts back to the original dtype."""
        return tensor if ctx is None else np.asarray(tensor).astype(ctx)


class Compression:
    """Gradient compression algorithms, as `horovod.keras.Compression`."""

    none = NoneCompressor
    fp16 = FP16Compressor


# ----------------------------------------------------------------------------- topology


def init(comm: Any = None, process_sets: Any = None) -> None:
    """Initializes the job (Horovod's `hvd.init()`); idempotent.

    Creates the process-wide communicator of `distkeras.distributed` from the
    launch environment and makes models train per process (see the module
    docstring and `distributed.set_per_process_models`).

    Args:
        comm: Only None (the whole job); sub-communicators are not offered.
        process_sets: Only None; Horovod's process sets are not offered.
    """
    if comm is not None:
        raise NotImplementedError(
            "distkeras.horovod.init() runs on the whole job; an MPI sub-communicator is not "
            f"offered. Received: comm={comm!r}"
        )
    if process_sets is not None:
        raise NotImplementedError(
            f"Horovod process sets are not offered. Received: process_sets={process_sets!r}"
        )
    if _state["comm"] is not None and not _state["comm"].closed:
        return
    _state["comm"] = distributed.get_communicator()
    _state["joined"] = False
    _state["cross"] = None
    distributed.set_per_process_models(True)


def shutdown() -> None:
    """Ends Horovod mode: models go back to data-parallel training on the job's communicator."""
    _state["comm"] = None
    _state["cross"] = None
    distributed.set_per_process_models(False)


def is_initialized() -> bool:
    """True between `init()` and `shutdown()`."""
    return _state["comm"] is not None and not _state["comm"].closed


def _comm() -> Any:
    comm = _state["comm"]
    if comm is None or comm.closed:
        raise ValueError("Horovod has not been initialized; use hvd.init().")
    return comm


def size() -> int:
    """The number of processes."""
    return _comm().size


def rank() -> int:
    """This process's rank, in [0, size())."""
    return _comm().rank


def local_rank() -> int:
    """This process's rank on its node."""
    return _comm().local_rank


def local_size() -> int:
    """The number of processes on this node."""
    return _comm().local_size


def _cross() -> tuple[int, int, bool]:
    if _state["cross"] is None:
        comm = _comm()
        mine = [comm.local_rank, socket.gethostname()]
        everyone = comm.allgather_object(mine) if comm.size > 1 else [mine]
        peers = [r for r, (lr, _) in enumerate(everyone) if lr == comm.local_rank]
        per_host: dict[str, int] = {}
        for _, host in everyone:
            per_host[host] = per_host.get(host, 0) + 1
        homogeneous = len(set(per_host.values())) == 1
        _state["cross"] = (peers.index(comm.rank), len(peers), homogeneous)
    return _state["cross"]


def cross_rank() -> int:
    """The rank of this process's node among the nodes (its index among the ranks with
    the same local rank). Collective on its first call."""
    return _cross()[0]


def cross_size() -> int:
    """The number of nodes holding a process with this local rank. Collective on first call."""
    return _cross()[1]


def is_homogeneous() -> bool:
    """True when every node runs the same number of processes. Collective on first call."""
    return _cross()[2]


def mpi_threads_supported() -> bool:
    """False: distkeras calls MPI from one thread."""
    return False


# ----------------------------------------------------------------------------- collectives


def _as_array(tensor: Any, name: str = "tensor") -> np.ndarray:
    data = getattr(tensor, "data", tensor)
    if hasattr(data, "numpy") and not isinstance(data, np.ndarray):
        data = data.numpy()
    a = np.array(data, copy=True)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be numeric. Received: {name} of dtype {a.dtype}")
    return a


def _check_op(op: Any) -> str:
    if op == Adasum:
        raise NotImplementedError(
            "hvd.Adasum is not offered by distkeras.horovod; use hvd.Average or hvd.Sum. "
            f"Received: op={op!r}"
        )
    if op not in _OPS:
        raise ValueError(
            "Unknown reduction. Expected hvd.Average, hvd.Sum, hvd.Min or hvd.Max. "
            f"Received: op={op!r}"
        )
    return _OPS[op]


def _wire(compression: Any) -> str | None:
    if compression is None:
        return None
    wire = getattr(compression, "wire", "custom")
    if wire == "custom":
        raise NotImplementedError(
            "Only hvd.Compression.none and hvd.Compression.fp16 are offered. "
            f"Received: compression={compression!r}"
        )
    return wire


def _identity(op: str, dtype: np.dtype) -> Any:
    if op in ("sum", "mean"):
        return 0
    if dtype.kind == "f":
        return -np.inf if op == "max" else np.inf
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if info is None:  # bool
        return op == "min"
    return info.min if op == "max" else info.max


def reduce_flat(flat: np.ndarray, op: str, wire: str | None = None) -> None:
    """Reduces a 1-D array across ranks in place (`op` in sum/mean/max/min), join-aware.

    A control all-reduce first counts the ranks that still have data, so a
    rank inside `join()` can shadow this reduction with identity values.
    """
    comm = _comm()
    if comm.size == 1:
        if wire and flat.dtype.kind == "f":
            _into(flat, comm.allreduce([flat], op="sum", compression=wire))
        return
    if _state["joined"]:
        raise RuntimeError("This rank has called hvd.join(); it cannot start new collectives.")
    code = _DTYPES.index(flat.dtype.name) if flat.dtype.name in _DTYPES else -1
    if code < 0:
        raise TypeError(f"Unsupported dtype for allreduce. Received: dtype={flat.dtype}")
    # [1, fields, fields**2]: the sums say how many ranks are active and, since the
    # fields' variance over the active ranks is zero only if they agree, whether they do.
    fields = np.array([flat.size, code, _OP_CODES.index(op), 1 if wire else 0], dtype=np.int64)
    mine = np.concatenate([[1], fields, fields**2]).astype(np.int64)
    ctrl = mine.copy()
    comm.allreduce([ctrl], op="sum")
    active = int(ctrl[0])
    if not np.array_equal(ctrl[1:], mine[1:] * active):
        raise distributed.CollectiveMismatchError(
            "hvd.allreduce: the ranks reduce tensors of different sizes, dtypes, ops or "
            f"compressions. Received on rank {comm.rank}: size={flat.size}, "
            f"dtype={flat.dtype}, op={op}"
        )
    _data_reduce(comm, flat, op, wire, active)


def _data_reduce(comm: Any, flat: np.ndarray, op: str, wire: str | None, active: int) -> None:
    comp = wire if flat.dtype.kind == "f" else None
    if op == "mean":
        _into(flat, comm.allreduce([flat], op="sum", compression=comp))
        if flat.dtype.kind == "f":
            np.divide(flat, active, out=flat)
        else:
            flat[...] = np.trunc(flat / active).astype(flat.dtype)
    else:
        _into(flat, comm.allreduce([flat], op=op, compression=comp))


def _into(flat: np.ndarray, result: list) -> None:
    if result[0] is not flat:
        flat[...] = result[0]


def join(device: int = -1) -> int:
    """Marks this rank as out of data; shadows the others' all-reduces until all have joined.

    Returns:
        The rank of the last process that joined (the highest such rank when
        several joined in the same round).
    """
    comm = _comm()
    if comm.size == 1:
        return 0
    _state["joined"] = True
    first = True
    try:
        while True:
            ctrl = np.zeros(9, dtype=np.int64)
            comm.allreduce([ctrl], op="sum")
            active = int(ctrl[0])
            if active == 0:
                break
            first = False
            n, code, opcode, wired = (int(v) // active for v in ctrl[1:5])
            dtype = np.dtype(_DTYPES[code])
            op = _OP_CODES[opcode]
            wire = "float16" if wired else None
            flat = np.full(n, _identity(op, dtype), dtype=dtype)
            _data_reduce(comm, flat, op, wire, active)
        last = comm.allgather_object(comm.rank if first else -1)
    finally:
        _state["joined"] = False
    return max(last)


def allreduce(
    tensor: Any,
    average: bool | None = None,
    device_dense: str = "",
    device_sparse: str = "",
    compression: Any = Compression.none,
    op: Any = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    name: str | None = None,
) -> np.ndarray:
    """Reduces `tensor` across ranks; returns a new array (Average by default).

    Args:
        tensor: An array, number, or variable.
        average: Deprecated in Horovod: True is `op=Average`, False `op=Sum`.
        compression: `Compression.none` or `Compression.fp16`.
        op: `Average`, `Sum`, `Min` or `Max` (`Adasum` is refused).
        prescale_factor: Multiplies the tensor before the reduction.
        postscale_factor: Multiplies the result.
        name: Accepted for compatibility (collectives are matched by order).
    """
    if average is not None:
        if op is not None:
            raise ValueError(
                "The op parameter supersedes average; pass only one. "
                f"Received: average={average!r}, op={op!r}"
            )
        warnings.warn("Parameter `average` has been replaced with `op`.", DeprecationWarning)
        op = Average if average else Sum
    red = _check_op(Average if op is None else op)
    a = _as_array(tensor)
    shape = a.shape
    flat = a.reshape(-1)
    if prescale_factor != 1.0:
        flat = (flat * prescale_factor).astype(a.dtype)
    reduce_flat(flat, red, _wire(compression))
    if postscale_factor != 1.0:
        flat = (flat * postscale_factor).astype(a.dtype)
    return flat.reshape(shape)


def grouped_allreduce(tensors: list, average: bool | None = None, **kwargs: Any) -> list:
    """`allreduce` of each tensor of a list; returns the list of results."""
    return [allreduce(t, average=average, **kwargs) for t in tensors]


def broadcast(tensor: Any, root_rank: int, name: str | None = None) -> np.ndarray:
    """Returns root's `tensor` on every rank (same shape and dtype on every rank)."""
    a = _as_array(tensor)
    return _comm().broadcast_arrays([a], root=root_rank)[0]


def broadcast_variables(variables: list, root_rank: int) -> None:
    """Overwrites `variables` (distkeras Variables) on every rank with root's, in place."""
    arrays = [v.data for v in variables]
    if arrays:
        _comm().broadcast_arrays(arrays, root=root_rank)


def allgather(tensor: Any, name: str | None = None) -> np.ndarray:
    """Concatenates every rank's `tensor` along the first axis, in rank order.

    The first dimensions may differ between ranks; the others must agree.
    """
    a = _as_array(tensor)
    if a.ndim == 0:
        raise ValueError(
            f"allgather needs at least one dimension. Received: tensor.shape={a.shape}"
        )
    return np.concatenate(_comm().allgather(a), axis=0)


def broadcast_object(obj: Any, root_rank: int = 0, name: str | None = None) -> Any:
    """Returns root's `obj` on every rank.

    Objects travel as msgpack, never pickle: plain data (numbers, strings,
    lists, dicts, NumPy arrays); tuples arrive as lists.
    """
    return _comm().broadcast_object(obj, root=root_rank)


def allgather_object(obj: Any, name: str | None = None) -> list:
    """Returns the list of every rank's `obj` (plain data, as `broadcast_object`)."""
    return _comm().allgather_object(obj)


def barrier() -> None:
    """Waits until every rank has arrived."""
    _comm().barrier()
