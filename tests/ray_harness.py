"""One way to start and stop the local Ray cluster the Ray tests run on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def local_ray(num_cpus: int, object_store_mb: int) -> Iterator[Any]:
    """Starts a local Ray cluster whose workers import this checkout; stops it after.

    Args:
        num_cpus: CPUs the cluster offers.
        object_store_mb: Size of its object store in MiB.

    Yields:
        The `ray` module (the test is skipped when Ray or msgpack is missing).
    """
    ray = pytest.importorskip("ray")
    pytest.importorskip("msgpack")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        object_store_memory=object_store_mb * 1024 * 1024,
        log_to_driver=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
