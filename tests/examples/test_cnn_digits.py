"""examples/cnn_digits.py reaches >= 97% test accuracy on the bundled digits."""

from __future__ import annotations

from tests.examples.harness import main_result, output, run_example


def test_cnn_digits_reaches_97_percent():
    proc = run_example(
        "cnn_digits", "--epochs", "10", "--verbose", "0", call_main=True, timeout=300
    )
    assert main_result(proc) >= 0.97, output(proc)
