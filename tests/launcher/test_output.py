"""What `distkeras-run` shows: the output router on recorded launcher output,
and the non-terminal progress bar.

The MPI banners below are the text Open MPI 5.0.11's prterun printed here
when rank 1 of 2 raised (recorded once; NUL byte included).
"""

from __future__ import annotations

import io
import os

import pytest

from distkeras.distributed.env import apply_output_mode, stdout_is_terminal
from distkeras.utils.progbar import Progbar
from launcher.cli import misplaced_hint, parse_args, version_text
from launcher.output import OutputRouter, failure_line, read_lines, tag_options

ABORT_BANNER = """\
--------------------------------------------------------------------------
MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD
  Proc: [[45729,1],1]
  Errorcode: 1

NOTE: invoking MPI_ABORT causes Open MPI to kill all MPI processes.
You may or may not see output from other processes, depending on
exactly when Open MPI kills them.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
prterun has exited due to process rank 1 with PID 0 on node vm calling
"abort". This may have caused other processes in the application to be
terminated by signals sent by prterun (as reported here).
--------------------------------------------------------------------------
\x00"""
# what prterun printed (and exited 213) when PMIx found a stale rendezvous file
LISTENER_BANNER = """\
--------------------------------------------------------------------------
The PMIx server's listener thread failed to start. We cannot
continue.
--------------------------------------------------------------------------
\x00"""
TRACEBACK = """\
[distkeras] rank 1 failed:
Traceback (most recent call last):
  File "train.py", line 5, in <module>
ValueError: boom
"""


def route(router: OutputRouter, stream: str, text: str) -> None:
    for line in text.splitlines(keepends=True):
        router.feed(stream, line)
    router.close()


def make(mode="rank0", **kwargs):
    out, err = io.StringIO(), io.StringIO()
    return OutputRouter(mode, stdout=out, stderr=err, **kwargs), out, err


def test_mpi_banners_are_dropped_and_the_failing_rank_is_known():
    router, out, err = make()
    route(router, "stderr", TRACEBACK + ABORT_BANNER)
    assert err.getvalue() == TRACEBACK
    assert out.getvalue() == ""
    assert router.failed_rank() == 1
    assert failure_line(1, router.failed_rank(), 2).startswith("distkeras-run: rank 1 of 2 failed")


def test_a_job_mpirun_could_not_start_names_mpiruns_reason():
    router, out, err = make()
    route(router, "stderr", LISTENER_BANNER)
    assert err.getvalue() == out.getvalue() == ""  # dropped as it comes...
    assert router.failed_rank() is None
    # ...and quoted in the launcher's last line, since no rank says what went wrong
    assert router.launch_error() == (
        "The PMIx server's listener thread failed to start. We cannot\ncontinue."
    )


def test_a_rank_failure_is_not_blamed_on_mpirun():
    router, _, _ = make()
    route(router, "stderr", TRACEBACK + ABORT_BANNER)
    assert router.launch_error() is None
    router, _, _ = make()
    route(router, "stderr", "-" * 30 + "\nmy own report\n" + "-" * 30 + "\n")
    assert router.launch_error() is None  # a user's box is shown, not kept as mpirun's


def test_verbose_keeps_the_banners():
    router, _, err = make(verbose=True)
    route(router, "stderr", TRACEBACK + ABORT_BANNER)
    assert "MPI_ABORT was invoked" in err.getvalue()
    assert "PID 0" in err.getvalue()


def test_a_users_dashed_box_is_kept():
    box = "-" * 30 + "\nmy own report\n" + "-" * 30 + "\n"
    router, _, err = make()
    route(router, "stderr", box + "PMIX ERROR: NOT-FOUND in file x.c\n")
    assert err.getvalue() == box  # not MPI's: shown; the PMIX ERROR line is not


def test_output_all_prefixes_every_line_with_its_rank():
    tagged = (
        "[1,1]<stdout>: out from rank 1\n[1,0]<stdout>: out from rank 0\n"
        "[1,0]<stderr>: err from rank 0\n"
    )
    router, out, err = make("all", flavor="openmpi")
    route(router, "stdout", tagged)
    assert out.getvalue() == "[rank 1] out from rank 1\n[rank 0] out from rank 0\n"
    assert err.getvalue() == "[rank 0] err from rank 0\n"


@pytest.mark.parametrize(
    "flavor,lines",
    [
        ("openmpi", ["[1,0]<stdout>: zero\n", "[1,1]<stdout>: one\n"]),
        ("mpich", ["[0] zero\n", "[1] one\n"]),
        ("srun", ["0: zero\n", "1: one\n"]),
        ("ray", ["\x1b[36m(rank 0 pid=12)\x1b[0m zero\n", "(rank 1 pid=13, ip=10.0.0.2) one\n"]),
    ],
)
def test_rank0_mode_shows_rank_0_stdout_and_files_get_every_rank(tmp_path, flavor, lines):
    router, out, _ = make("rank0", flavor=flavor, out_dir=str(tmp_path))
    for line in lines:
        router.feed("stdout", line)
    router.close()
    assert out.getvalue() == "zero\n"
    assert (tmp_path / "rank.0.log").read_text() == "zero\n"
    assert (tmp_path / "rank.1.log").read_text() == "one\n"


def test_tag_options_per_launcher():
    assert tag_options("openmpi") == ["--output", "tag"]
    assert tag_options("mpich") == ["-prepend-rank"]
    assert tag_options("srun") == ["--label"]


def test_read_lines_yields_an_idle_partial_line():
    read_end, write_end = os.pipe()
    os.write(write_end, b"one\npartial")
    lines = read_lines(read_end)
    assert next(lines) == "one\n"
    assert next(lines) == "partial"  # nothing followed: shown as it is, not held back
    os.write(write_end, b" done\n")
    os.close(write_end)
    assert list(lines) == [" done\n"]


def test_version_and_misplaced_option_hint():
    assert version_text().startswith("distkeras-run 0.1.0 (distkeras 0.1.0, Python ")
    assert "-np" in misplaced_hint(parse_args(["python", "train.py", "-np", "2"]))
    assert misplaced_hint(parse_args(["-np", "2", "train.py", "--epochs", "2"])) == ""


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("told,live", [("0", False), ("1", True)])
def test_progbar_follows_the_launchers_terminal(monkeypatch, told, live):
    # Open MPI hands ranks a pseudo-terminal: the launcher's own answer wins.
    fake = _FakeTTY()
    monkeypatch.setattr("sys.stdout", fake)
    monkeypatch.setenv("DISTKERAS_STDOUT_TTY", told)
    assert stdout_is_terminal() is live
    bar = Progbar(4, verbose=1, interval=0.0)
    for step in range(1, 5):
        bar.update(step, [("loss", 1.0 / step)])
    text = fake.getvalue()
    assert ("\r" in text) is live
    assert ("\x1b[" in text) is live
    if not live:
        assert text.count("\n") == 1 and text.startswith("4/4 ")


def test_apply_output_mode_silences_only_other_ranks(monkeypatch):
    env = {"DISTKERAS_RUN_OUTPUT": "rank0", "OMPI_COMM_WORLD_SIZE": "2"}
    assert apply_output_mode({**env, "OMPI_COMM_WORLD_RANK": "0"}) is False
    assert (
        apply_output_mode({**env, "OMPI_COMM_WORLD_RANK": "1", "DISTKERAS_RUN_OUTPUT": "all"})
        is False
    )
    assert apply_output_mode({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}) is False
