"""Helpers that craft model, weight and checkpoint files the way an attacker would."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import msgpack

from distkeras.saving.file_format import MAGIC, read_container, write_container


def split_container(data: bytes) -> tuple[dict, bytes]:
    """(header, array section) of a container's bytes."""
    (hlen,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    header = msgpack.unpackb(data[start : start + hlen], raw=False)
    return header, data[start + hlen + 4 :]


def join_container(header: Any, body: bytes) -> bytes:
    """A container with `header` (any msgpack value) and a valid header checksum."""
    packed = msgpack.packb(header, use_bin_type=True)
    crc = struct.pack("<I", zlib.crc32(packed))
    return MAGIC + struct.pack("<Q", len(packed)) + packed + crc + body


def rewrite(path: Any, config: Any = None, metadata: Any = None) -> None:
    """Rewrites a valid file with a new config and/or metadata (arrays and checksums kept)."""
    header, arrays = read_container(path)
    write_container(
        path,
        list(arrays.items()),
        kind=header["kind"],
        metadata=header["metadata"] if metadata is None else metadata,
        config=header["config"] if config is None else config,
    )


def sequential_json(layer_configs: list[dict], n_in: int = 3) -> dict:
    """A Sequential config: an Input of `n_in` features, then `layer_configs`."""
    return {
        "class_name": "Sequential",
        "config": {
            "name": "crafted",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, n_in], "name": "in"}},
                *layer_configs,
            ],
        },
    }


def lambda_config(function: Any, arguments: dict | None = None, name: str = "evil") -> dict:
    """A Lambda layer config naming `function` (a function config or bytecode)."""
    return {
        "class_name": "Lambda",
        "config": {"name": name, "function": function, "arguments": arguments or {}},
    }


def module_function(module: str, name: str) -> dict:
    """The Keras 3 config of a function given by module and attribute."""
    return {"class_name": "function", "module": module, "config": name, "registered_name": name}


def deep_json(depth: int) -> str:
    """A JSON list nested `depth` deep."""
    return "[" * depth + "]" * depth


def to_json(config: dict) -> str:
    return json.dumps(config)
