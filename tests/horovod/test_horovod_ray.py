"""A Horovod-style script on Ray workers: `distkeras-run --backend ray -np 2` runs
examples/horovod_keras_mnist.py unchanged, and it trains the weights of one process."""

from __future__ import annotations

import numpy as np
import pytest

from tests.examples.harness import output, run_example

pytest.importorskip("ray")

COMMON = ["--epochs", "2", "--warmup-epochs", "0", "--no-shuffle"]


def _weights(folder, rank: int) -> list[np.ndarray]:
    with np.load(folder / f"weights_rank{rank}.npz") as f:
        return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]


def test_horovod_script_on_ray_workers_equals_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    ref = run_example(
        "horovod_keras_mnist", *COMMON, "--batch-size", "32", "--lr", "0.02", "--dump", str(one)
    )
    assert ref.returncode == 0, output(ref)
    proc = run_example(
        "horovod_keras_mnist",
        *COMMON,
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--dump",
        str(two),
        np_=2,
        backend="ray",
        timeout=240,
        RAY_ADDRESS="",
    )
    assert proc.returncode == 0, output(proc)
    for a, b, c in zip(_weights(two, 0), _weights(two, 1), _weights(one, 0)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)
