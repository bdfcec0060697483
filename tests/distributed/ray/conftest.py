"""The one Ray cluster of the test session (4 CPUs, 200 MB object store)."""

from __future__ import annotations

import pytest

from tests.ray_harness import local_ray


@pytest.fixture(scope="package")
def ray_cluster():
    """Starts a local Ray cluster for this test package (stopped before other tests run)."""
    with local_ray(num_cpus=4, object_store_mb=200) as ray:
        yield ray
