"""The msgpack container of weight, model and checkpoint files.

Layout::

    MAGIC (8 bytes) | header length (u64 LE) | header (msgpack) | header crc32 (u32 LE)
    | array bytes, each 64-byte aligned

The header holds the format version, the kind of file, free metadata, an
optional config and, per array, its path, dtype, shape, offset, size and
crc32. Arrays are raw little-endian bytes; nothing is ever pickled. Files are
written to a temporary file in the same folder, fsynced and renamed, so a crash
never leaves a half-written file under the real name.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import numpy as np

MAGIC = b"DKERAS\x00\x01"
FORMAT_VERSION = 1
_ALIGN = 64
_ALLOWED_DTYPES = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
}


class FileFormatError(ValueError):
    """A weight, model or checkpoint file that cannot be read (names the file and the problem)."""


def _pad(n: int) -> int:
    return (-n) % _ALIGN


_THREADED_CRC_BYTES = 4 << 20  # below this a thread costs more than it hides


def _write_blobs(f: Any, blobs: list) -> None:
    for blob in blobs:
        f.write(blob)
        f.write(b"\x00" * _pad(blob.nbytes))


def write_container(
    path: str | os.PathLike,
    arrays: Iterable[tuple[str, Any]],
    kind: str,
    metadata: dict | None = None,
    config: Any = None,
) -> None:
    """Writes named arrays (and a config) atomically.

    Args:
        path: Destination file.
        arrays: (path, array) pairs; arrays are stored C-contiguous, little-endian.
        kind: What the file holds ('weights', 'model', 'checkpoint').
        metadata: Plain data (msgpack-able) stored in the header.
        config: Plain data (e.g. a model config) stored in the header.
    """
    path = os.fspath(path)
    entries = []
    blobs = []
    offset = 0
    for name, arr in arrays:
        a = np.asarray(arr, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype.name not in _ALLOWED_DTYPES:
            raise TypeError(f"Cannot store array {name!r} of dtype {a.dtype}. Received: {a.dtype}")
        buf = memoryview(a).cast("B") if a.size else memoryview(b"")
        entries.append(
            {
                "path": name,
                "dtype": a.dtype.name,
                "shape": list(a.shape),
                "offset": offset,
                "nbytes": a.nbytes,
                "crc32": b"\x00\x00\x00\x00",  # fixed-size placeholder, filled in below
            }
        )
        blobs.append(buf)
        offset += a.nbytes + _pad(a.nbytes)
    content = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "metadata": metadata or {},
        "config": config,
        "arrays": entries,
    }
    header = msgpack.packb(content, use_bin_type=True)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            start = len(MAGIC) + 8
            f.write(MAGIC + struct.pack("<Q", len(header)) + header + b"\x00" * 4)
            # Checksums are computed on a second thread while the arrays are written
            # (zlib and file writes both release the GIL); the header, whose size
            # does not depend on them, is rewritten in place afterwards.
            if offset >= _THREADED_CRC_BYTES:
                with ThreadPoolExecutor(max_workers=1) as pool:
                    crcs = [pool.submit(zlib.crc32, blob) for blob in blobs]
                    _write_blobs(f, blobs)
                    values = [c.result() for c in crcs]
            else:
                _write_blobs(f, blobs)
                values = [zlib.crc32(blob) for blob in blobs]
            for entry, value in zip(entries, values):
                entry["crc32"] = struct.pack(">I", value)
            final = msgpack.packb(content, use_bin_type=True)
            if len(final) != len(header):  # pragma: no cover - guarded by the fixed size
                raise RuntimeError("header size changed while writing")
            f.seek(start)
            f.write(final + struct.pack("<I", zlib.crc32(final)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass


def read_container(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Reads and verifies a container; returns (header, {path: array}).

    Raises:
        FileFormatError: for a missing magic, truncation, a checksum mismatch,
            a newer format version or a malformed header, naming the file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise FileFormatError(f"Cannot read {path!r}: {e}") from e

    def fail(problem: str) -> FileFormatError:
        return FileFormatError(f"{path!r} is not a valid distkeras file: {problem}")

    if len(data) < len(MAGIC) + 12 or data[: len(MAGIC)] != MAGIC:
        raise fail("wrong magic bytes (not a distkeras weights/model file, or truncated)")
    (hlen,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    if hlen > len(data) - start - 4:
        raise fail("truncated header")
    header_bytes = data[start : start + hlen]
    (hcrc,) = struct.unpack_from("<I", data, start + hlen)
    if zlib.crc32(header_bytes) != hcrc:
        raise fail("header checksum mismatch (the file is corrupted)")
    try:
        header = msgpack.unpackb(header_bytes, raw=False, strict_map_key=True)
    except Exception as e:  # noqa: BLE001 - any decoding problem is a format error
        raise fail(f"unreadable header ({type(e).__name__})") from e
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise fail("malformed header")
    version = header.get("format_version")
    if not _is_int(version) or version < 1:
        raise fail(f"invalid format version {str(version)[:40]}")
    if version > FORMAT_VERSION:
        raise fail(
            f"format version {version!r} is newer than this distkeras reads ({FORMAT_VERSION}); "
            "upgrade distkeras"
        )
    for key, types in (("kind", str), ("metadata", (dict, type(None)))):
        if not isinstance(header.get(key), types):
            raise fail(f"malformed header field {key!r}")
    base = start + hlen + 4
    arrays: dict[str, np.ndarray] = {}
    for entry in header["arrays"]:
        name, dtype, shape, offset, nbytes, crc = _check_entry(entry, fail)
        if base + offset + nbytes > len(data):
            raise fail(f"array {name!r} lies outside the file (truncated?)")
        buf = memoryview(data)[base + offset : base + offset + nbytes]
        if zlib.crc32(buf) != crc:
            raise fail(f"checksum mismatch in array {name!r}")
        if name in arrays:
            raise fail(f"duplicate array path {name!r}")
        arrays[name] = np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    return header, arrays


_MAX_NDIM = 64  # NumPy's limit
_U64 = 2**64


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_entry(entry: Any, fail: Any) -> tuple[str, str, tuple, int, int, int]:
    """The checked (path, dtype, shape, offset, nbytes, crc32) of one array entry.

    Shapes are multiplied as Python integers, so a shape whose product would
    overflow 64 bits is refused rather than wrapped to a small size.
    """
    keys = ("path", "dtype", "shape", "offset", "nbytes", "crc32")
    if not isinstance(entry, dict) or any(k not in entry for k in keys):
        raise fail(f"malformed array entry (needs {', '.join(keys)}): {str(entry)[:120]}")
    name, dtype, shape = entry["path"], entry["dtype"], entry["shape"]
    offset, nbytes, crc = entry["offset"], entry["nbytes"], entry["crc32"]
    if not isinstance(name, str):
        raise fail(f"array path is not a string: {str(name)[:80]}")
    if not isinstance(dtype, str) or dtype not in _ALLOWED_DTYPES:
        raise fail(f"array {name!r} has an invalid dtype {str(dtype)[:40]!r}")
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_NDIM
        or not all(_is_int(d) and 0 <= d < _U64 for d in shape)
    ):
        raise fail(f"array {name!r} has an invalid shape {str(shape)[:120]}")
    if not _is_int(offset) or not _is_int(nbytes) or not 0 <= offset < _U64 or nbytes < 0:
        raise fail(f"array {name!r} has an invalid offset or size ({offset!r}, {nbytes!r})"[:200])
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if expected != nbytes:
        raise fail(
            f"array {name!r}: size does not match its shape and dtype ({nbytes} bytes "
            f"for shape {str(shape)[:80]} of {dtype}, which needs {expected})"
        )
    if isinstance(crc, bytes) and len(crc) == 4:
        crc = struct.unpack(">I", crc)[0]
    elif not _is_int(crc) or not 0 <= crc < 2**32:
        raise fail(f"array {name!r} has an invalid checksum field")
    return name, dtype, tuple(shape), offset, nbytes, crc
