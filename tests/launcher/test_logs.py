"""The logs of real `distkeras-run` jobs on 2 MPI ranks, stdout captured (not a terminal):
rank 0's stdout by default, `--output all`, `--output-dir`, progress bars without
redraws, one traceback and no Open MPI banner on failure, the start line, `--version`.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys

import pytest

from tests.launcher.test_run import (
    CTX,
    ROOT,
    SCRIPTS,
    _assert_gone,
    _start_sleepers,
    launch,
    launcher_env,
)

needs_mpi = pytest.mark.skipif(
    CTX.mpirun() is None or not CTX.has_module("mpi4py"), reason="needs mpirun and mpi4py"
)
SCRIPT = str(SCRIPTS / "print_ranks.py")


@needs_mpi
def test_default_shows_rank_0_stdout_and_every_stderr():
    proc = launch("-np", "2", "python", SCRIPT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["out from rank 0"]
    assert "err from rank 0" in proc.stderr and "err from rank 1" in proc.stderr
    start = proc.stderr.splitlines()[0]
    assert start.startswith("distkeras-run: 2 ranks on this machine (backend local")
    assert start.endswith(f"python {SCRIPT}")


@needs_mpi
def test_output_all_prefixes_each_line_with_its_rank():
    proc = launch("-q", "-np", "2", "--output", "all", "python", SCRIPT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "[rank 0] out from rank 0",
        "[rank 1] out from rank 1",
    ]
    assert sorted(proc.stderr.splitlines()) == [
        "[rank 0] err from rank 0",
        "[rank 1] err from rank 1",
    ]


@needs_mpi
def test_output_dir_writes_one_file_per_rank(tmp_path):
    proc = launch("-q", "-np", "2", "--output-dir", str(tmp_path / "logs"), "python", SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["out from rank 0"]
    for rank in (0, 1):
        lines = (tmp_path / "logs" / f"rank.{rank}.log").read_text().splitlines()
        assert sorted(lines) == [f"err from rank {rank}", f"out from rank {rank}"]


@needs_mpi
def test_progress_bar_in_a_file_has_no_redraws_or_colors():
    proc = launch("-q", "-np", "2", "python", SCRIPT, "--fit", timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout and "\x1b" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("4/4 ") and " - loss: " in lines[1]  # one line per epoch
    assert lines[-1] == "out from rank 0"


@needs_mpi
def test_failure_shows_one_traceback_and_no_mpi_banner():
    proc = launch("-q", "-np", "2", "python", SCRIPT, "--fail", timeout=120)
    assert proc.returncode == 1
    err = proc.stderr
    assert err.count("Traceback (most recent call last)") == 1
    assert "ValueError: boom on rank 1" in err
    for banner in ("MPI_ABORT", "PID 0", "prterun", "PMIX", "-----", "\x00"):
        assert banner not in err
    assert err.splitlines()[-1].startswith("distkeras-run: rank 1 of 2 failed")
    verbose = launch("-v", "-np", "2", "python", SCRIPT, "--fail", timeout=120)
    assert "MPI_ABORT" in verbose.stderr  # -v keeps Open MPI's own messages


def test_version():
    proc = launch("--version", timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.startswith("distkeras-run 0.1.0 (distkeras 0.1.0, Python 3.")


def test_options_after_the_script_get_a_hint():
    proc = launch("python", SCRIPT, "-np", "2", timeout=60)
    assert proc.returncode == 2
    assert "-np after the script name go to the script" in proc.stderr


@needs_mpi
def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    launcher, marker = _start_sleepers(tmp_path, "-np", "2")
    launcher.send_signal(signal.SIGINT)
    out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 130, out
    assert out.rstrip("\n").splitlines()[-1] == (
        "distkeras-run: interrupted (Ctrl-C): stopped the job's 2 rank(s)"
    )
    assert "MPI" not in out and "prterun" not in out
    _assert_gone(launcher, marker, 130)


@needs_mpi
def test_progress_bar_on_a_terminal_redraws_live():
    """The other side of the file test: a launcher on a terminal gets the live bar."""
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "launcher", "-q", "-np", "2", "python", SCRIPT, "--fit"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=launcher_env(), stdout=slave, stderr=slave)
    os.close(slave)
    text = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        text += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0, text
    assert b"\r\x1b[1m1/4\x1b[0m" in text  # step 1 of 4, drawn in place, in bold
    assert text.count(b"out from rank") == 1
