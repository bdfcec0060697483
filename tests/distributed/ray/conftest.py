"""The one Ray cluster of the test session (4 CPUs, 200 MB object store)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="package")
def ray_cluster():
    """Starts a local Ray cluster for this test package (stopped before other tests run)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("msgpack")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
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
