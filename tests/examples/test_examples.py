"""Every example under examples/ runs and shows what its docstring says.

Single-process examples run their `main(argv)` in a fresh interpreter (one
parametrized table); the distributed ones run as users run them: the MPI one
through the launcher (`python -m launcher -np 2 python examples/...`), the Ray
one both as the Ray driver it is (it starts its own 2 workers) and through the
launcher's Ray backend; the resume example
crashes, resumes and is compared with an uninterrupted run. Examples tested
elsewhere in this folder are listed in ALREADY_TESTED, and a check fails when
a new example has no test.
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Callable

import numpy as np
import pytest

from launcher.plan import Context
from tests.examples.harness import EXAMPLES, main_result, output, printed, run_example

HERE = EXAMPLES.parent / "tests" / "examples"

# name -> (argv, minimum of what main returns, {printed label: check of the rest of the line})
SINGLE: dict[str, tuple[list[str], float, dict[str, Callable[[str], bool]]]] = {
    "mnist_mlp": (["--epochs", "3", "--verbose", "0"], 0.90, {}),
    "guide_dense_modules": (
        [],
        0.95,
        {
            "Layers:": lambda s: s == "['dense', 'dense_1', 'dense_2']",
            "First layer:": lambda s: s == "HeUniform None MaxNorm relu",
            "JSON config:": lambda s: s.endswith("rebuilt model agrees: True"),
            "Largest kernel column norm (MaxNorm bound 2.0):": lambda s: float(s) <= 2.0 + 1e-5,
        },
    ),
    "functional_multi_input": (
        [],
        0.93,
        {
            "Training logs:": lambda s: all(
                k in s for k in ("'digit_accuracy'", "'digit_loss'", "'ink_loss'", "'ink_mae'")
            ),
            "Prediction shapes:": lambda s: s == "{'digit': (360, 10), 'ink': (360, 1)}",
            "Test ink MAE:": lambda s: float(s) < 0.05,
        },
    ),
    "custom_layer": (
        [],
        0.93,
        {
            "Reloaded layers:": lambda s: s == "['Linear', 'Linear']",
            "Reloaded model predicts the same:": lambda s: s.startswith("True;"),
        },
    ),
    "custom_training_loop": (
        [],
        0.93,
        {
            "Epoch 15/15:": lambda s: "training accuracy" in s,
            "Optimizer steps:": lambda s: s == "675",  # 15 epochs of ceil(1437 / 32) steps
        },
    ),
}
DISTRIBUTED = ("distributed_mpi", "distributed_ray", "resume")
ALREADY_TESTED = {
    "cnn_digits": "test_cnn_digits.py",
    "lstm_sequence": "test_lstm_sequence.py",
    "text_classification": "test_preprocessing_examples.py",
    "image_folder": "test_preprocessing_examples.py",
    "custom_train_step": "test_custom_train_step.py",
    "horovod_keras_mnist": "../horovod/test_horovod_mpi.py",
    "ray_train_tune": "test_ray_train_tune.py",
}
FAST = ["--epochs", "5"]  # for the distributed comparisons

CTX = Context.from_system()
needs_mpi = pytest.mark.skipif(
    CTX.mpirun() is None or not CTX.has_module("mpi4py"), reason="needs mpirun and mpi4py"
)


def test_every_example_has_a_test():
    names = {p.stem for p in EXAMPLES.glob("*.py")}
    covered = set(SINGLE) | set(DISTRIBUTED) | set(ALREADY_TESTED)
    assert names == covered, f"untested: {names - covered}; gone: {covered - names}"
    for name, test_file in ALREADY_TESTED.items():
        assert name in (HERE / test_file).read_text(), (name, test_file)


@pytest.mark.parametrize("name", sorted(set(SINGLE) | set(DISTRIBUTED)))
def test_example_documents_itself(name):
    """A module docstring with the command and the expected result; main(argv=None)."""
    tree = ast.parse((EXAMPLES / f"{name}.py").read_text())
    doc = ast.get_docstring(tree) or ""
    assert f"examples/{name}.py" in doc and "%" in doc, doc
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    assert [a.arg for a in main.args.args] == ["argv"] and len(main.args.defaults) == 1


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_process_example(name):
    argv, minimum, checks = SINGLE[name]
    proc = run_example(name, *argv, call_main=True)
    assert main_result(proc) >= minimum, output(proc)
    for label, check in checks.items():
        assert check(printed(proc, label)), f"{label} failed\n" + output(proc)


@pytest.fixture(scope="module")
def one_process_reference() -> subprocess.CompletedProcess:
    """examples/distributed_mpi.py in one process, the result both distributed runs must equal."""
    proc = run_example("distributed_mpi", *FAST, call_main=True)
    assert main_result(proc) > 0.8, output(proc)
    assert "Rank 0 of 1 (local)" in proc.stdout, output(proc)
    return proc


@needs_mpi
def test_distributed_mpi_two_ranks_through_the_launcher(one_process_reference):
    proc = run_example("distributed_mpi", *FAST, np_=2, timeout=180)
    assert proc.returncode == 0, output(proc)
    # Only rank 0's stdout shows by default (`--output all` shows every rank's).
    assert "Rank 0 of 2 (mpi)" in proc.stdout, output(proc)
    assert "Rank 1 of 2" not in proc.stdout, output(proc)
    assert printed(proc, "Trained on") == "2 rank(s) for 5 epochs"
    # One coordinator line each, and the same numbers as one process (deterministic reduce).
    for label in ("Weight checksum:", "Test accuracy:", "Final training loss:"):
        assert printed(proc, label) == printed(one_process_reference, label), output(proc)


def test_distributed_ray_two_workers(one_process_reference):
    try:
        from distkeras.distributed.ray import run  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means: not available here
        pytest.skip(f"distkeras.distributed.ray.run is not importable: {e!r}")
    # A local Ray cluster of its own (RAY_ADDRESS cleared), started by the example.
    proc = run_example("distributed_ray", *FAST, "--num-workers", "2", timeout=240, RAY_ADDRESS="")
    assert proc.returncode == 0, output(proc)
    assert printed(proc, "Trained on") == "2 Ray worker(s) for 5 epochs"
    for label in ("Weight checksum:", "Test accuracy:", "Final training loss:"):
        assert printed(proc, label) == printed(one_process_reference, label), output(proc)


def test_distributed_ray_two_workers_through_the_launcher(one_process_reference):
    """`distkeras-run --backend ray -np 2`: the launcher starts the workers, the script
    trains in each (rank 0 reports), and the numbers equal the one-process run's."""
    try:
        from distkeras.distributed.ray import run  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means: not available here
        pytest.skip(f"distkeras.distributed.ray.run is not importable: {e!r}")
    proc = run_example("distributed_ray", *FAST, np_=2, backend="ray", timeout=240, RAY_ADDRESS="")
    assert proc.returncode == 0, output(proc)
    assert printed(proc, "Trained on") == "2 Ray worker(s) for 5 epochs", output(proc)
    for label in ("Weight checksum:", "Test accuracy:", "Final training loss:"):
        assert printed(proc, label) == printed(one_process_reference, label), output(proc)


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    backup = tmp_path / "backup"
    crashed = run_example("resume", "--backup-dir", str(backup), "--crash-at", "120")
    assert crashed.returncode == 1, output(crashed)
    assert "Simulated crash after step 120" in crashed.stderr, output(crashed)
    assert "Test accuracy" not in crashed.stdout, output(crashed)
    assert sorted(p.name for p in backup.glob("ckpt-*.dkc"))[-1] == "ckpt-000000000110.dkc"

    resumed = run_example(
        "resume", "--backup-dir", str(backup), "--weights-out", str(tmp_path / "resumed.npz")
    )
    assert resumed.returncode == 0, output(resumed)
    assert printed(resumed, "Resumed from a backup at step") == "110 (epoch 3, batch 20)"
    assert printed(resumed, "Finished after") == "450 steps"
    assert not backup.exists()  # the backups are deleted once training ends

    fresh = run_example(
        "resume",
        "--backup-dir",
        str(tmp_path / "other"),
        "--weights-out",
        str(tmp_path / "fresh.npz"),
        call_main=True,
    )
    assert "No backup found: training from scratch" in fresh.stdout, output(fresh)
    assert float(printed(resumed, "Test accuracy:")) == pytest.approx(main_result(fresh), abs=1e-4)
    assert printed(resumed, "Test accuracy:") == printed(fresh, "Test accuracy:")
    with np.load(tmp_path / "resumed.npz") as a, np.load(tmp_path / "fresh.npz") as b:
        assert len(a.files) == len(b.files) == 4
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
