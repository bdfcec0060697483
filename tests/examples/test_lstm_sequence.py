"""examples/lstm_sequence.py reaches the test accuracy its docstring states."""

from __future__ import annotations

import importlib.util
import os

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "lstm_sequence.py")


def _load_example():
    spec = importlib.util.spec_from_file_location("lstm_sequence_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lstm_reads_digits_row_by_row_to_97_percent():
    example = _load_example()
    assert "97.8% test accuracy" in example.__doc__
    accuracy = example.main(["--verbose", "0"])
    assert accuracy >= 0.97
