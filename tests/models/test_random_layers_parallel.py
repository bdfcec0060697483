"""Random layers under real `mpirun`: deterministic mode is bitwise across world sizes,
and a bad input on one rank ends the job with that rank's error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.models.test_data_parallel import MPIRUN, _env

pytest.importorskip("mpi4py")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
SCRIPT = Path(__file__).parent / "scripts" / "random_layers.py"


def launch(tmp_path: Path, n: int, mode: str) -> tuple[subprocess.CompletedProcess, str]:
    prefix = str(tmp_path / f"n{n}_{mode}")
    cmd = [sys.executable, str(SCRIPT), prefix, mode]
    if n > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=_env())
    return proc, prefix


def weights(tmp_path: Path, n: int, mode: str) -> list[list[np.ndarray]]:
    proc, prefix = launch(tmp_path, n, mode)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = []
    for r in range(n):
        with np.load(f"{prefix}.rank{r}.npz") as f:
            out.append([f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))])
    return out


def test_dropout_model_is_bitwise_equal_on_1_2_and_3_ranks_in_deterministic_mode(tmp_path):
    (ref,) = weights(tmp_path, 1, "det")
    for n in (2, 3):
        for rank_weights in weights(tmp_path, n, "det"):
            for a, b in zip(rank_weights, ref):
                np.testing.assert_array_equal(a, b)


def test_dropout_run_killed_on_2_ranks_resumes_bitwise_on_1_in_deterministic_mode(tmp_path):
    """The masks follow the global step and sample index, which a backup restores."""
    from tests.models.test_resume import run as run_resume

    ref = run_resume(tmp_path, "ref", 1, tmp_path / "b_ref", mode="dropout", DET="1")[0]
    run_resume(tmp_path, "a", 2, tmp_path / "b21", mode="dropout", kill_at=9, DET="1")
    resumed = run_resume(tmp_path, "a", 1, tmp_path / "b21", mode="dropout", DET="1")[0]
    for u, v in zip(resumed["weights"], ref["weights"]):
        np.testing.assert_array_equal(u, v)
    assert resumed["epochs"] == ref["epochs"]


def test_nan_on_one_rank_ends_every_rank_with_that_ranks_error(tmp_path):
    proc, prefix = launch(tmp_path, 2, "nan_on_rank1")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "[distkeras] rank 1 failed:" in out, out
    assert "`x` contains NaN or inf" in out and "x[17, 5]=nan" in out, out
    assert not list(tmp_path.glob("*.npz"))  # no rank trained on
