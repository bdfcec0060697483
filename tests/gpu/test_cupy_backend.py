"""The training paths on the CuPy backend match the NumPy backend (needs a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")

from tests.gpu.harness import gpu_count  # noqa: E402

if gpu_count() < 1:
    pytest.skip("needs a CUDA GPU", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "backend", "scripts", "strict_training.py")


def _run(name: str, out_dir: str) -> dict:
    env = dict(os.environ, DISTKERAS_BACKEND=name)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, SCRIPT, out_dir], env=env, capture_output=True, text=True,
        timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, f"{name} run failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    with open(os.path.join(out_dir, f"results_{name}.json")) as f:
        return json.load(f)["results"]


def test_cupy_training_paths_match_numpy_and_files_cross_load(tmp_path):
    ref = _run("numpy", str(tmp_path))
    got = _run("cupy", str(tmp_path))  # loads the numpy run's file on the GPU
    for key, values in ref.items():
        # cuBLAS/cuDNN sum in other orders: float32 agreement, not bitwise.
        np.testing.assert_allclose(got[key], values, rtol=2e-3, atol=2e-4, err_msg=key)
    np.testing.assert_allclose(got["cross_loaded_predict"], ref["loaded_predict"], rtol=1e-5)
    from distkeras.models import load_model  # noqa: PLC0415

    loaded = load_model(tmp_path / "mlp_cupy.dkm")  # a GPU-saved file on the host backend
    x = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(loaded.predict(x[:5], verbose=0)).ravel(), got["loaded_predict"], rtol=1e-5
    )


def test_device_reports_the_gpu():
    code = (
        "import distkeras.backend as b; b.set_backend('cupy'); print(b.device()); "
        "print(type(b.xp.zeros(1)).__module__)"
    )
    env = dict(os.environ, DISTKERAS_BACKEND="cupy", DISTKERAS_DEVICE="cuda:0")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["cuda:0", "cupy"]
