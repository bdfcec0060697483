"""The clean-machine check: a new virtual environment, the README's first command.

The first line of README.md's first ```bash block installs distkeras and runs
the main job; this test runs it verbatim in a fresh venv (no system site
packages), in a copy of the repository, and expects the job to print its test
accuracy. It downloads wheels from PyPI and takes minutes, so it runs only
with DISTKERAS_CLEAN_INSTALL_TEST=1:

    DISTKERAS_CLEAN_INSTALL_TEST=1 python -m pytest -q tests/launcher/test_clean_install.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    os.environ.get("DISTKERAS_CLEAN_INSTALL_TEST") != "1",
    reason="set DISTKERAS_CLEAN_INSTALL_TEST=1 to run the clean-install check (needs PyPI)",
)
IGNORE = shutil.ignore_patterns(
    ".git", "*.egg-info", "__pycache__", "build", "dist", ".pytest_cache", ".ruff_cache", "*.dkw"
)


def readme_main_command() -> str:
    """The first line of the README's first bash block (install + main job)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash block"
    return block.group(1).strip().splitlines()[0]


def test_readme_command_in_a_fresh_venv(tmp_path):
    # DISTKERAS_CLEAN_INSTALL_COMMAND tries a proposed README line before it lands.
    command = os.environ.get("DISTKERAS_CLEAN_INSTALL_COMMAND") or readme_main_command()
    assert "pip install" in command, command
    repo = tmp_path / "distkeras"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "OMPI_", "PMIX_", "CONDA", "PIP_USER"))
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command!r} failed:\n{output[-8000:]}"
    assert re.search(r"Test accuracy: 0\.\d+", proc.stdout), output[-8000:]
    # The job ran the venv's copy, not this checkout's.
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import distkeras; print(distkeras.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0 and str(ROOT) not in where.stdout, where.stdout + where.stderr
