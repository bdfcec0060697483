"""Command-line parsing for `distkeras-run`.

The launcher's own options come first; the first word that is not an option (or
the word after `--`) starts the command, which is passed on untouched:

    distkeras-run -np 4 python train.py --epochs 5
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import re
import sys
from pathlib import Path

from launcher import horovodrun

PROG = "distkeras-run"
BACKENDS = ("local", "mpi", "ray", "slurm")
SLURM_LAUNCHERS = ("auto", "srun", "mpirun")
OUTPUT_MODES = ("rank0", "all")
# Launcher options that, written after the script name, were surely meant for the launcher.
_MISPLACED = ("-np", "--num-proc", "--backend", "--hostfile", "--gpus-per-proc", "--address")
_PYTHON = re.compile(r"^python[0-9.]*$")
# Interpreter options that take a value (`python -X dev script.py`).
_PY_VALUE_OPTS = ("-X", "-W")


class LauncherError(Exception):
    """A problem with the launcher's arguments or environment, found before the job starts."""


@dataclasses.dataclass
class Options:
    """What the user asked for on the command line.

    Attributes:
        np: Number of processes (ranks), or None when it is to be inferred.
        backend: 'local', 'mpi', 'ray', 'slurm', or None (chosen from the options).
        hosts: `-H` value, e.g. 'host1:4,host2:4'.
        hostfile: `--hostfile` path.
        gpus_per_proc: GPUs given to each rank (CUDA_VISIBLE_DEVICES), or None.
        env: `--env` entries, each 'KEY=VALUE' or 'KEY' (pass the current value on).
        address: Ray cluster address for `--backend ray`.
        timeout: Wall-clock limit of the whole job in seconds, or None.
        dry_run: Print the command instead of running it.
        mpirun: An explicit mpirun/mpiexec to use instead of the bundled one.
        slurm_launcher: 'auto', 'srun' or 'mpirun' inside a Slurm allocation.
        wait: With the slurm backend outside an allocation, wait for the batch job.
        verbose: Print the command before it runs; keep MPI's and Ray's own banners.
        quiet: No start line.
        output: 'rank0' (rank 0's stdout, every rank's stderr) or 'all' (every
            line, prefixed with `[rank N]`).
        output_dir: Also write each rank's output to `DIR/rank.N.log`.
        ssh_port: horovodrun's `-p`: the ssh port mpirun uses on every host.
        ssh_identity_file: horovodrun's `-i`: the ssh key mpirun uses.
        network_interfaces: horovodrun's `--network-interface(s)`.
        mpi_args: horovodrun's `--mpi-args`: extra mpirun arguments (one string).
        binding_args: horovodrun's `--binding-args`: replace `--bind-to none`.
        tcp: horovodrun's `--tcp`: Open MPI's TCP transport only.
        horovodrun: The command line was `distkeras-run horovodrun ...`.
        command: The command after the options: `[python] script.py args...`.
    """

    np: int | None = None
    backend: str | None = None
    hosts: str | None = None
    hostfile: str | None = None
    gpus_per_proc: int | None = None
    env: list[str] = dataclasses.field(default_factory=list)
    address: str | None = None
    timeout: float | None = None
    dry_run: bool = False
    mpirun: str | None = None
    slurm_launcher: str = "auto"
    wait: bool = False
    verbose: bool = False
    quiet: bool = False
    output: str = "rank0"
    output_dir: str | None = None
    ssh_port: int | None = None
    ssh_identity_file: str | None = None
    network_interfaces: list[str] = dataclasses.field(default_factory=list)
    mpi_args: str | None = None
    binding_args: str | None = None
    tcp: bool = False
    horovodrun: bool = False
    command: list[str] = dataclasses.field(default_factory=list)


def _timeout(text: str) -> float | None:
    lowered = text.strip().lower()
    if lowered in ("0", "none", "inf"):
        return None
    try:
        value = float(lowered)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--timeout must be a number of seconds. Received: --timeout={text!r}"
        ) from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"--timeout must be >= 0 (0: no limit). Received: --timeout={text!r}"
        )
    return None if math.isinf(value) else value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default exits; we raise instead.
        if "Received:" in message:  # our own message already names the option
            message = re.sub(r"^argument [^:]+: ", "", message)
        raise LauncherError(message)


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser of the launcher's own options (not of the command)."""
    p = _Parser(
        prog=PROG,
        usage=(
            f"{PROG} -np N [--backend {{{','.join(BACKENDS)}}}] [-H host1:4,host2:4 | "
            "--hostfile F] [--gpus-per-proc K] [--env K=V ...] [--address ADDR] "
            "[--timeout S] [--output {rank0,all}] [--output-dir DIR] [-q] [-v] [--dry-run] "
            "[python] script.py [args ...]"
        ),
        description=(
            "Run a training script on N data-parallel ranks: locally through the bundled "
            "mpirun, across hosts with mpirun, on a Ray cluster, or under Slurm. The same "
            "script runs unchanged as a single process."
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} -np 2 python examples/mnist_mlp.py\n"
            f"  {PROG} -np 8 -H node1:4,node2:4 python train.py\n"
            f"  {PROG} --backend ray -np 4 --address ray://head:10001 python train.py\n"
            f"  {PROG} --backend slurm -np 16 --gpus-per-proc 1 python train.py\n"
            f"  {PROG} horovodrun -np 4 -H node1:2,node2:2 -p 2222 python train.py"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=True,
    )
    p.add_argument(
        "-np",
        "-n",
        "--num-proc",
        dest="np",
        metavar="N",
        type=horovodrun.int_at_least("-np", 1),
        help="number of processes (ranks); default: the slots of -H/--hostfile, "
        "or SLURM_NTASKS inside a Slurm allocation",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        help="local (default; this machine), mpi (default with -H/--hostfile), ray, slurm",
    )
    p.add_argument("-H", "--hosts", dest="hosts", help="hosts and slots: host1:4,host2:4")
    p.add_argument(
        "-hostfile", "--hostfile", help="an MPI hostfile ('host slots=4' or 'host:4' per line)"
    )
    p.add_argument(
        "--gpus-per-proc",
        type=horovodrun.int_at_least("--gpus-per-proc", 1),
        metavar="K",
        help="GPUs per rank: each rank sees its own CUDA_VISIBLE_DEVICES",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="set an environment variable on every rank (K alone passes the current value)",
    )
    p.add_argument("--address", help="Ray cluster address (ray://host:10001, host:6379, auto)")
    p.add_argument(
        "--timeout",
        type=_timeout,
        metavar="S",
        help="end the whole job after S seconds (exit code 124)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    p.add_argument("--mpirun", metavar="PATH", help="use this mpirun/mpiexec (default: bundled)")
    p.add_argument(
        "--slurm-launcher",
        choices=SLURM_LAUNCHERS,
        default="auto",
        help="inside a Slurm allocation: srun --mpi=pmix (auto when srun exists) or mpirun",
    )
    p.add_argument(
        "--wait", action="store_true", help="slurm backend: wait for the batch job to finish"
    )
    p.add_argument(
        "--output",
        choices=OUTPUT_MODES,
        default="rank0",
        help="rank0 (default): rank 0's stdout and every rank's stderr; "
        "all: every rank's lines, each prefixed with [rank N]",
    )
    p.add_argument(
        "--output-dir", metavar="DIR", help="also write each rank's output to DIR/rank.N.log"
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the command before it runs; keep MPI's and Ray's own messages",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no start line")
    p.add_argument("--version", action="version", version=version_text())
    horovodrun.add_flags(p)
    return p


def version_text() -> str:
    """`distkeras-run X.Y.Z (distkeras X.Y.Z, Python A.B.C)`, read without importing distkeras."""
    version = "unknown"
    try:
        from importlib.metadata import PackageNotFoundError  # noqa: PLC0415
        from importlib.metadata import version as _version

        version = _version("distkeras")
    except (ImportError, PackageNotFoundError):
        pass
    init = Path(__file__).resolve().parents[1] / "distkeras" / "__init__.py"
    with contextlib.suppress(OSError):  # a source checkout: its own version wins
        found = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.M)
        version = found.group(1) if found else version
    python = ".".join(str(v) for v in sys.version_info[:3])
    return f"{PROG} {version} (distkeras {version}, Python {python})"


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    names = set()
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if action.option_strings and action.nargs != 0:
            names.update(action.option_strings)
    return names


def split_argv(argv: list[str], parser: argparse.ArgumentParser | None = None):
    """Splits argv into the launcher's options and the command that follows them.

    Returns:
        `(launcher_args, command)`.
    """
    parser = parser or build_parser()
    takes_value = _value_options(parser)
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return argv[:i], argv[i + 1 :]
        if not word.startswith("-") or word == "-":
            return argv[:i], argv[i:]
        horovodrun.refuse(argv, i)
        if "=" not in word and word in takes_value:
            i += 1
        i += 1
    return argv, []


def parse_args(argv: list[str]) -> Options:
    """Parses `distkeras-run` arguments into `Options`.

    Raises:
        LauncherError: on a bad option or value.
    """
    parser = build_parser()
    own, command = split_argv(list(argv), parser)
    ns = parser.parse_args(own)
    is_horovodrun = bool(command) and Path(command[0]).name == "horovodrun"
    if is_horovodrun:  # distkeras-run [options] horovodrun [horovodrun flags] command
        hv_parser = horovodrun.build_parser(_Parser)
        hv_own, command = split_argv(command[1:], hv_parser)
        _merge(ns, hv_parser.parse_args(hv_own), parser)
    backend = ns.backend
    if ns.use_mpi:
        if backend not in (None, "local", "mpi"):
            raise LauncherError(f"--mpi asks for the MPI backend. Received: --backend={backend}")
        backend = backend or "mpi"
    output_dir = ns.output_dir
    if ns.output_filename is not None:
        if output_dir is not None and output_dir != ns.output_filename:
            raise LauncherError(
                "--output-filename and --output-dir name two folders; give one. "
                f"Received: --output-filename={ns.output_filename!r}"
            )
        output_dir = ns.output_filename
    return Options(
        np=ns.np,
        backend=backend,
        hosts=ns.hosts,
        hostfile=ns.hostfile,
        gpus_per_proc=ns.gpus_per_proc,
        env=list(ns.env) + horovodrun.env_entries(ns),
        address=ns.address,
        timeout=ns.timeout,
        dry_run=ns.dry_run,
        mpirun=ns.mpirun,
        slurm_launcher=ns.slurm_launcher,
        wait=ns.wait,
        verbose=ns.verbose,
        quiet=ns.quiet,
        output=ns.output,
        output_dir=output_dir,
        ssh_port=ns.ssh_port,
        ssh_identity_file=ns.ssh_identity_file,
        network_interfaces=list(ns.network_interfaces or []),
        mpi_args=ns.mpi_args,
        binding_args=ns.binding_args,
        tcp=ns.tcp,
        horovodrun=is_horovodrun,
        command=command,
    )


def _merge(ns: argparse.Namespace, hv: argparse.Namespace, parser: argparse.ArgumentParser):
    """Adds the flags given after `horovodrun` to the launcher's own (`ns`, in place).

    Raises:
        LauncherError: when a flag is given on both sides with different values.
    """
    for dest in ("np", "hosts", "hostfile", "verbose", *horovodrun.MAPPED_DESTS):
        value = getattr(hv, dest, None)
        if value is None or value is False:
            continue
        mine = getattr(ns, dest, None)
        if mine is not None and mine is not False and mine != value:
            names = [n for a in parser._actions if a.dest == dest for n in a.option_strings]  # noqa: SLF001
            flag = "-np" if dest == "np" else max(names, key=len, default=dest)
            raise LauncherError(
                f"{flag} is given before horovodrun and after it, with different values. "
                f"Received: {flag}={mine!r} and {flag}={value!r}"
            )
        setattr(ns, dest, value)


def misplaced_options(opts: Options) -> list[str]:
    """Launcher options written after the script name (passed to the script, not used)."""
    words = opts.command[1:]
    found = []
    for word in words:
        name = word.split("=", 1)[0]
        if name in _MISPLACED and name not in found:
            found.append(name)
    return found


def misplaced_hint(opts: Options) -> str:
    """A note naming launcher options that follow the script name, or ''."""
    names = misplaced_options(opts)
    if not names:
        return ""
    return (
        f"{PROG}: note: {', '.join(names)} after the script name "
        "go to the script, not to the launcher; put launcher options before it: "
        f"{PROG} -np 2 python train.py --epochs 3"
    )


@dataclasses.dataclass
class Command:
    """The user's command, normalized.

    Attributes:
        interpreter: An explicit interpreter path, or None for this Python.
        interpreter_args: Options for the interpreter (`-u`, `-X dev`, ...).
        script: The script path, or None when `module` is set.
        module: The module run with `-m`, or None.
        args: The script's arguments.
    """

    interpreter: str | None
    interpreter_args: list[str]
    script: str | None
    module: str | None
    args: list[str]

    def python_argv(self, python: str) -> list[str]:
        """The argv that runs this command with `python` (or the explicit interpreter)."""
        target = ["-m", self.module] if self.module else [self.script]
        return [self.interpreter or python, *self.interpreter_args, *target, *self.args]


def parse_command(command: list[str]) -> Command:
    """Normalizes `[python [opts]] script.py args` or `[python] -m module args`.

    Raises:
        LauncherError: when there is no script.
    """
    words = list(command)
    interpreter = None
    py_opts: list[str] = []
    if words and _PYTHON.match(words[0].rsplit("/", 1)[-1]):
        first = words.pop(0)
        interpreter = first if "/" in first else None
        while words and words[0].startswith("-") and words[0] != "-m":
            opt = words.pop(0)
            py_opts.append(opt)
            if opt in _PY_VALUE_OPTS and words:
                py_opts.append(words.pop(0))
    elif words and words[0].startswith("-") and words[0] != "-m":
        raise LauncherError(f"Unknown launcher option {words[0]!r}. See `{PROG} --help`.")
    if words[:1] == ["-m"]:
        if len(words) < 2:
            raise LauncherError("`-m` needs a module name. Received: -m with nothing after it")
        return Command(interpreter, py_opts, None, words[1], words[2:])
    if not words:
        raise LauncherError(
            f"No script given. Usage: {PROG} -np N [options] [python] script.py [args ...]"
        )
    return Command(interpreter, py_opts, words[0], None, words[1:])
