"""What the user sees of a job's output: which ranks print, prefixes, per-rank files.

What reaches the terminal, as `torchrun`/`horovodrun` users expect:

- `rank0` (default): rank 0's stdout and every rank's stderr reach the
  terminal. The other ranks' stdout is dropped by the ranks themselves
  (`launcher.rankenv`), so rank 0's output is untouched and a progress bar
  still redraws live on a terminal.
- `all`: every line of every rank, prefixed with `[rank N]`.
With `--output-dir DIR`, each rank's stdout and stderr also go to
`DIR/rank.N.log` (the terminal shows what the mode says).

For `all` and `--output-dir` the MPI launcher tags each line with its rank (Open
MPI's `--output tag`, MPICH's `-prepend-rank`, srun's `--label`) and this
module reads the tags back. In every mode, Open MPI's own banners (the boxes
between dashed lines, `PMIX ERROR` lines) are dropped unless `-v` is given;
the launcher prints one line of its own instead (see `failure_line`). When no
rank is known to have failed (mpirun itself could not start the job), that
line quotes the last banner dropped, which says why (`launch_error`).
"""

from __future__ import annotations

import os
import re
import select
import sys
import threading
from collections.abc import Callable
from typing import IO

MODES = ("rank0", "all")
TTY_ENV = "DISTKERAS_STDOUT_TTY"
OUTPUT_ENV = "DISTKERAS_RUN_OUTPUT"
_PARTIAL_FLUSH_S = 0.2
_BANNER_MAX_LINES = 80
_BLANK = " \t\r\n\x00"  # prterun ends its banners with a NUL byte
_DASHES = re.compile(r"^-{20,}\s*$")
_MPI_WORDS = re.compile(r"MPI|prterun|mpirun|PRTE|PMIx|PMIX|prted|orted|mpiexec", re.I)
_RANK_IN_BANNER = re.compile(r"(?:process rank|invoked on rank|rank) (\d+)")
_NOISE = re.compile(r"PMIX ERROR")
_FAILED = re.compile(r"\[distkeras\] rank (\d+) failed")
_TAGS = {
    # [jobid,rank]<stdout>: text
    "openmpi": re.compile(r"^\[\d+,(\d+)\]<(stdout|stderr|stddiag)>: ?(.*)$", re.S),
    # [rank] text
    "mpich": re.compile(r"^\[(\d+)\] ?(.*)$", re.S),
    # "  rank: text" (srun --label)
    "srun": re.compile(r"^\s*(\d+): ?(.*)$", re.S),
    # (rank N pid=123, ip=1.2.3.4) text, possibly colored (Ray's log monitor)
    "ray": re.compile(r"^(?:\x1b\[[0-9;]*m)?\(rank (\d+)[^)]*\)(?:\x1b\[[0-9;]*m)? ?(.*)$", re.S),
}


def tag_options(flavor: str) -> list[str]:
    """The launcher options that make each output line carry its rank."""
    if flavor == "openmpi":
        return ["--output", "tag"]
    if flavor == "mpich":
        return ["-prepend-rank"]
    if flavor == "srun":
        return ["--label"]
    return []


class OutputRouter:
    """Routes a job's output lines to the terminal (and per-rank files).

    Args:
        mode: 'rank0' or 'all' (what reaches the terminal).
        out_dir: Also write each rank's lines to `out_dir/rank.N.log`, or None.
        verbose: Keep the MPI launcher's own banners.
        flavor: How lines carry their rank: 'openmpi', 'mpich', 'srun', 'ray',
            or None when they carry none (the rank is then `default_rank`).
        default_rank: The rank of untagged lines in a one-process job.
        stdout: Where rank output meant for stdout goes (default sys.stdout).
        stderr: Where rank output meant for stderr goes (default sys.stderr).
    """

    def __init__(
        self,
        mode: str = "rank0",
        out_dir: str | None = None,
        verbose: bool = False,
        flavor: str | None = None,
        default_rank: int | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"Unknown output mode. Expected one of {MODES}. Received: {mode!r}")
        self.mode = mode
        self.out_dir = out_dir
        self.verbose = verbose
        self.flavor = flavor
        self.default_rank = default_rank
        self._out = stdout or sys.stdout  # bound now: the Ray backend then replaces sys.stdout
        self._err = stderr or sys.stderr
        self._files: dict[int, IO[str]] = {}
        self._lock = threading.Lock()
        self._banner: list[str] | None = None
        self._dropped = False
        self._threads: list[threading.Thread] = []
        self.banner_ranks: list[int] = []
        self.failure_ranks: list[int] = []
        self.dropped_banners: list[str] = []

    @property
    def stdout(self) -> IO[str]:
        """Where lines meant for the terminal's stdout go."""
        return self._out

    @property
    def stderr(self) -> IO[str]:
        """Where lines meant for the terminal's stderr go."""
        return self._err

    # -- feeding -------------------------------------------------------------
    def feed(self, stream: str, text: str) -> None:
        """Routes one line (`text` ends with its newline, if it had one).

        Args:
            stream: 'stdout' or 'stderr': the pipe the line came from.
            text: The line.
        """
        with self._lock:
            self._route(stream, text)

    def _route(self, stream: str, text: str) -> None:
        rank, stream, body = self._untag(stream, text)
        failed = _FAILED.match(body)
        if failed:
            self.failure_ranks.append(int(failed.group(1)))
        if rank is None:
            self._launcher_line(stream, body)
            return
        if self.out_dir:
            self._file(rank).write(body)
        if self.mode == "all":
            prefix = f"[rank {rank}] "
            target = self.stdout if stream == "stdout" else self.stderr
            target.write(prefix + body if body.strip() or body.endswith("\n") else body)
        elif stream == "stdout":
            if rank == 0:
                self.stdout.write(body)
        else:
            self.stderr.write(body)
        (self.stdout if stream == "stdout" else self.stderr).flush()

    def _untag(self, stream: str, text: str) -> tuple[int | None, str, str]:
        pattern = _TAGS.get(self.flavor or "")
        if pattern is None:
            if self.default_rank is None:
                return None, stream, text
            return self.default_rank, stream, text
        found = pattern.match(text)
        if found is None:
            return (
                (self.default_rank, stream, text) if self.flavor == "ray" else (None, stream, text)
            )
        groups = found.groups()
        if len(groups) == 3:  # Open MPI names the stream
            rank, name, body = groups
            stream = "stdout" if name == "stdout" else "stderr"
        else:
            rank, body = groups
        if text.endswith("\n") and not body.endswith("\n"):
            body += "\n"
        return int(rank), stream, body

    def _launcher_line(self, stream: str, text: str) -> None:
        """A line of the MPI launcher itself (or of an untagged rank): banners are dropped."""
        target = self.stdout if stream == "stdout" and self.default_rank is None else self.stderr
        if self.verbose:
            target.write(text)
            target.flush()
            return
        # prterun writes a NUL byte after its banners; it can land at the start of the
        # next line of output, so it is dropped from every launcher line.
        text = text.replace("\x00", "")
        if not text:
            return
        if self._banner is not None:
            self._banner.append(text)
            if _DASHES.match(text) or len(self._banner) > _BANNER_MAX_LINES:
                self._close_banner(target, complete=bool(_DASHES.match(text)))
            return
        if _DASHES.match(text):
            self._banner = [text]
            return
        if _NOISE.search(text) or (self._dropped and not text.strip(_BLANK)):
            return
        self._dropped = False
        target.write(text)
        target.flush()

    def _close_banner(self, target: IO[str], complete: bool) -> None:
        lines, self._banner = self._banner or [], None
        body = "".join(lines)
        if complete and _MPI_WORDS.search(body):
            self._dropped = True
            self.dropped_banners.append(body)
            self.banner_ranks += [int(r) for r in _RANK_IN_BANNER.findall(body)]
            return
        target.write(body)
        target.flush()

    def _file(self, rank: int) -> IO[str]:
        f = self._files.get(rank)
        if f is None:
            os.makedirs(self.out_dir or ".", exist_ok=True)
            path = os.path.join(self.out_dir or ".", f"rank.{rank}.log")
            f = self._files[rank] = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
        return f

    # -- pipes -----------------------------------------------------------------
    def pump(self, fd: int, stream: str) -> None:
        """Reads a pipe in a thread and routes its lines until it closes."""
        thread = threading.Thread(target=self._read, args=(fd, stream), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read(self, fd: int, stream: str) -> None:
        broken = False
        for line in read_lines(fd):
            if broken:  # keep draining, or the job would block on a full pipe
                continue
            try:
                self.feed(stream, line)
            except (OSError, ValueError):  # our own stdout closed (`| head`)
                broken = True

    def close(self) -> None:
        """Waits for the pipes to drain, flushes a pending banner, closes the files."""
        for thread in self._threads:
            thread.join(timeout=10)
        with self._lock:
            if self._banner is not None:
                self._close_banner(self.stderr, complete=False)
            for f in self._files.values():
                f.close()
            self._files.clear()
        self.stdout.flush()
        self.stderr.flush()

    def failed_rank(self) -> int | None:
        """The rank that failed first, as the job's output tells it, or None."""
        ranks = self.failure_ranks or self.banner_ranks
        return ranks[0] if ranks else None

    def launch_error(self) -> str | None:
        """The last MPI banner dropped when no rank is known to have failed, or None.

        That banner is mpirun's own reason for a job that never ran (a PMIx
        error, a host it cannot reach); its text without the dashed lines.
        """
        if self.failed_rank() is not None or not self.dropped_banners:
            return None
        lines = self.dropped_banners[-1].replace("\x00", "").splitlines()
        text = "\n".join(line.rstrip() for line in lines if not _DASHES.match(line))
        return text.strip("\n") or None


def read_lines(fd: int, wait: Callable[[int], bool] | None = None):
    """Yields the lines of a pipe; a partial line idle for 0.2 s is yielded as is.

    A progress bar that redraws with `\\r` and no newline thus still shows.
    """
    wait = wait or (lambda f: bool(select.select([f], [], [], _PARTIAL_FLUSH_S)[0]))
    pending = b""
    while True:
        if pending and not wait(fd):
            yield pending.decode(errors="replace")
            pending = b""
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield (line + b"\n").decode(errors="replace")
    if pending:
        yield pending.decode(errors="replace")
    os.close(fd)


def failure_line(code: int, rank: int | None, size: int | None) -> str:
    """The launcher's one line about a failed job."""
    of = f" of {size}" if size else ""
    if rank is not None:
        return f"distkeras-run: rank {rank}{of} failed; the job was stopped (exit code {code})"
    return f"distkeras-run: the job failed (exit code {code})"
