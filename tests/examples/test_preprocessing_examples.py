"""The preprocessing examples run end to end on the data they generate, and learn."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name,argv",
    [
        ("text_classification", ["--epochs", "5", "--verbose", "0"]),
        ("image_folder", ["--epochs", "4", "--verbose", "0"]),
    ],
)
def test_example_learns(name, argv, capsys):
    accuracy = _load(name).main(argv)
    assert accuracy >= 0.9
    assert "Validation accuracy" in capsys.readouterr().out
