"""Streams (torch DataLoader, tf.data, PyDataset, generators) shared between 2 Ray workers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("torch")

from distkeras.distributed.ray import run_script  # noqa: E402
from tests.models.data_fakes import check_shares  # noqa: E402

pytestmark = pytest.mark.timeout(180)
SCRIPT = Path(__file__).resolve().parents[2] / "models" / "scripts" / "data_shares.py"


def test_each_worker_reads_its_share_under_ray(ray_cluster, tmp_path):
    prefix = str(tmp_path / "shares")
    assert run_script(SCRIPT, [prefix, "default"], num_workers=2) == 0
    check_shares(prefix, "default")
