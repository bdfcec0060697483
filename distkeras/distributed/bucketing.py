"""Packing many arrays into a few contiguous buffers for collective calls.

A collective call costs a fixed latency plus a per-byte cost, so reducing a
model's hundred small gradients one by one is slow. `GradientBucketer` plans
one call per *bucket*:

- arrays that already lie back to back in one flat buffer (the views a
  `FlatBuffer` hands out) form one zero-copy region, reduced in place;
- other small arrays are copied into a staging buffer of at most
  `bucket_bytes` per bucket, reduced, and copied back.

The default bucket size was chosen by measurement (see `bench/allreduce.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BUCKET_BYTES = 4 * 1024 * 1024
DEFAULT_INPLACE_BYTES = 64 * 1024


def _root(a: np.ndarray) -> Any:
    base = a
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _is_host_contiguous(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable


class Bucket:
    """One buffer handed to one collective call.

    Attributes:
        buffer: A 1-D contiguous NumPy array: a view of the arrays' own memory
            (`packed` is False) or a staging buffer (`packed` is True).
        members: `(index, offset, size)` of each array inside `buffer`.
        packed: Whether the arrays must be copied in before and out after the call.
    """

    __slots__ = ("buffer", "members", "packed")

    def __init__(self, buffer: np.ndarray, members: list[tuple[int, int, int]], packed: bool):
        self.buffer = buffer
        self.members = members
        self.packed = packed

    @property
    def nbytes(self) -> int:
        """Bytes moved by this bucket's call."""
        return int(self.buffer.nbytes)

    def pack(self, arrays: Sequence[Any]) -> None:
        """Copies the member arrays into a packed bucket's staging buffer."""
        if not self.packed:
            return
        buf = self.buffer
        members = [arrays[i] for i, _, _ in self.members]
        if all(isinstance(a, np.ndarray) for a in members):
            np.concatenate([a.reshape(-1) for a in members], out=buf)  # one C loop
            return
        for i, off, n in self.members:
            a = arrays[i]
            dst = buf[off : off + n]
            if isinstance(a, np.ndarray):
                np.copyto(dst.reshape(a.shape), a)
            else:
                from distkeras.backend import to_numpy  # noqa: PLC0415

                dst[...] = to_numpy(a).reshape(-1)

    def unpack(self, arrays: Sequence[Any], results: list[Any]) -> None:
        """Writes the bucket's result into `results` (in place where the array allows)."""
        buf = self.buffer
        for i, off, n in self.members:
            a = arrays[i]
            if not self.packed:
                results[i] = a
                continue
            src = buf[off : off + n]
            if isinstance(a, np.ndarray):
                if a.flags.writeable:
                    np.copyto(a, src.reshape(a.shape))
                    results[i] = a
                else:
                    results[i] = src.reshape(a.shape).copy()
            else:
                from distkeras.backend import get_array_module  # noqa: PLC0415

                a[...] = get_array_module(a).asarray(src.reshape(a.shape))
                results[i] = a


class GradientBucketer:
    """Plans the buckets for a list of arrays.

    Args:
        bucket_bytes: Upper size of a staging bucket in bytes. Zero-copy regions
            are never split.
        inplace_bytes: Back-to-back regions at least this large are reduced in
            place; smaller ones are packed with their neighbours into a bucket.
    """

    def __init__(
        self, bucket_bytes: int = DEFAULT_BUCKET_BYTES, inplace_bytes: int = DEFAULT_INPLACE_BYTES
    ):
        if not isinstance(bucket_bytes, int) or isinstance(bucket_bytes, bool) or bucket_bytes < 1:
            raise ValueError(
                "`bucket_bytes` must be a positive integer. "
                f"Received: bucket_bytes={bucket_bytes!r}"
            )
        if not isinstance(inplace_bytes, int) or inplace_bytes < 0:
            raise ValueError(
                "`inplace_bytes` must be a non-negative integer. "
                f"Received: inplace_bytes={inplace_bytes!r}"
            )
        self.bucket_bytes = bucket_bytes
        self.inplace_bytes = inplace_bytes
        self._staging: dict[tuple[str, int], np.ndarray] = {}
        self._views_cache: dict[tuple[int, ...], tuple[list[Any], list[Bucket]]] = {}

    def _staging_buffer(self, dtype: np.dtype, slot: int, size: int, reuse: bool) -> np.ndarray:
        if not reuse:
            return np.empty(size, dtype=dtype)
        key = (dtype.str, slot)
        buf = self._staging.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self._staging[key] = buf
        return buf[:size]

    def plan(self, arrays: Sequence[Any], reuse_staging: bool = True) -> list[Bucket]:
        """Groups `arrays` into buckets, one collective call each.

        Args:
            arrays: NumPy (or CuPy) arrays; any shapes, dtypes and layouts.
            reuse_staging: Reuse staging buffers across calls. Pass False when
                several plans' buffers must be alive at once (non-blocking calls).

        Returns:
            The buckets, each holding arrays of one dtype.
        """
        if len(arrays) == 1 and _is_host_contiguous(arrays[0]):
            a = arrays[0]
            return [Bucket(a.reshape(-1), [(0, 0, int(a.size))], packed=False)]
        key = tuple(map(id, arrays))
        cached = self._views_cache.get(key)
        if cached is not None and all(x is y for x, y in zip(cached[0], arrays)):
            return cached[1]
        plan = self._plan(arrays, reuse_staging)
        if len(plan) == 1 and not plan[0].packed:
            # Views of one flat buffer (a FlatBuffer's gradients): the same list comes
            # back every step, so keep its plan. Holding the views keeps their ids unique.
            self._views_cache.clear()
            self._views_cache[key] = (list(arrays), plan)
        return plan

    def _plan(self, arrays: Sequence[Any], reuse_staging: bool) -> list[Bucket]:
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, a in enumerate(arrays):
            by_dtype.setdefault(np.dtype(a.dtype), []).append(i)
        buckets: list[Bucket] = []
        slot = 0
        for dtype, indices in by_dtype.items():
            pending: list[int] = []
            pending_bytes = 0
            for run in self._runs(arrays, indices):
                run_bytes = sum(int(arrays[i].size) for i in run) * dtype.itemsize
                if run_bytes >= self.inplace_bytes and _is_host_contiguous(arrays[run[0]]):
                    buckets.append(self._region(arrays, run))
                    continue
                for i in run:
                    nbytes = int(arrays[i].size) * dtype.itemsize
                    if pending and pending_bytes + nbytes > self.bucket_bytes:
                        buckets.append(self._packed(arrays, pending, dtype, slot, reuse_staging))
                        slot += 1
                        pending, pending_bytes = [], 0
                    pending.append(i)
                    pending_bytes += nbytes
            if pending:
                buckets.append(self._packed(arrays, pending, dtype, slot, reuse_staging))
                slot += 1
        return buckets

    @staticmethod
    def _runs(arrays: Sequence[Any], indices: list[int]) -> list[list[int]]:
        """Splits indices into runs of arrays lying back to back in one allocation."""
        runs: list[list[int]] = []
        end = root = None
        for i in indices:
            a = arrays[i]
            if not _is_host_contiguous(a):
                runs.append([i])
                end = None
                continue
            start = _address(a)
            r = _root(a)
            if end is not None and start == end and r is root:
                runs[-1].append(i)
            else:
                runs.append([i])
            end, root = start + a.nbytes, r
        return runs

    @staticmethod
    def _region(arrays: Sequence[Any], run: list[int]) -> Bucket:
        first = arrays[run[0]]
        members, off = [], 0
        for i in run:
            n = int(arrays[i].size)
            members.append((i, off, n))
            off += n
        if len(run) == 1:
            return Bucket(first.reshape(-1), members, packed=False)
        root = _root(first)
        if (
            isinstance(root, np.ndarray)
            and root.dtype == first.dtype
            and root.flags.c_contiguous
            and root.flags.writeable
        ):
            start = (_address(first) - _address(root)) // first.itemsize
            flat = root.reshape(-1)[start : start + off]
        else:  # memory owned by a non-array object: view it directly
            flat = np.lib.stride_tricks.as_strided(
                first.reshape(-1), shape=(off,), strides=(first.itemsize,)
            )
        return Bucket(flat, members, packed=False)

    def _packed(
        self, arrays: Sequence[Any], indices: list[int], dtype: np.dtype, slot: int, reuse: bool
    ) -> Bucket:
        members, off = [], 0
        for i in indices:
            n = int(arrays[i].size)
            members.append((i, off, n))
            off += n
        return Bucket(self._staging_buffer(dtype, slot, off, reuse), members, packed=True)


def fused_allreduce(
    comm: Any, arrays: Sequence[Any], op: str = "mean", bucket_bytes: int | None = None
) -> list[Any]:
    """All-reduces many arrays with few calls (packing small ones into buckets).

    Args:
        comm: A `Communicator`.
        arrays: The arrays; reduced in place where contiguous and writable.
        op: 'sum', 'mean', 'max' or 'min'.
        bucket_bytes: Staging bucket size; defaults to the communicator's.

    Returns:
        The reduced arrays, in the order given.
    """
    return comm.allreduce(list(arrays), op=op, bucket_bytes=bucket_bytes)
