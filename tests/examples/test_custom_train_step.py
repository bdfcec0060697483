"""examples/custom_train_step.py: a user's train_step trains the same on 1 and 2 ranks."""

from __future__ import annotations

import pytest

from tests.examples.harness import main_result, output, printed, run_example
from tests.examples.test_examples import FAST, needs_mpi


@pytest.fixture(scope="module")
def one_process():
    proc = run_example("custom_train_step", *FAST, call_main=True)
    assert main_result(proc) > 0.85, output(proc)
    logged = printed(proc, "Logged:")
    assert logged == "['accuracy', 'grad_norm', 'loss']", output(proc)  # the attribute metric too
    return proc


@needs_mpi
def test_two_ranks_through_the_launcher_equal_one_process(one_process):
    proc = run_example("custom_train_step", *FAST, np_=2, timeout=180)
    assert proc.returncode == 0, output(proc)
    assert printed(proc, "Trained on") == "2 rank(s) for 5 epochs"
    # Deterministic mode: bitwise the same weights, so the same printed numbers.
    for label in ("Weight checksum:", "Test accuracy:", "Final training loss:"):
        assert printed(proc, label) == printed(one_process, label), output(proc)
