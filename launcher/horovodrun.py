"""horovodrun's command line, as `distkeras-run` understands it.

A Horovod job's command line runs unchanged after `distkeras-run`, and the
flags it maps can also be given to `distkeras-run` directly:

    distkeras-run horovodrun -np 4 -H node1:2,node2:2 -p 2222 python train.py
    distkeras-run -np 4 -H node1:2,node2:2 --ssh-port 2222 python train.py

What each horovodrun flag becomes (see README.md, "Horovod scripts"):

- `-np/--num-proc`, `-H/--hosts`, `-hostfile/--hostfile`, `--verbose`: the
  launcher's own options of the same meaning (`--mpi` picks the MPI backend,
  which runs without it too);
- `-p/--ssh-port`, `-i/--ssh-identity-file`: mpirun's ssh arguments
  (Open MPI `--mca plm_rsh_args`, MPICH `-bootstrap-exec-args`);
- `--network-interface(s)`: Open MPI `--mca btl_tcp_if_include` and
  `NCCL_SOCKET_IFNAME` (MPICH: `-iface` for one interface), as horovodrun does;
- `--tcp`: Open MPI's TCP transport only (`--mca pml ob1 --mca btl tcp,self`);
- `--mpi-args "..."`: added to mpirun's arguments; `--binding-args "..."`:
  replace the launcher's `--bind-to none`;
- `--output-filename DIR`: `--output-dir DIR` (`DIR/rank.N.log` per rank);
- `--no-stall-check`, `--stall-check-warning-time-seconds S`,
  `--stall-check-shutdown-time-seconds S`: distkeras's stall warning and
  collective timeout (`DISTKERAS_STALL_WARNING_S`, `DISTKERAS_COLLECTIVE_TIMEOUT`);
- `--start-timeout S`, `--disable-cache`: accepted; they bound and cache
  horovodrun's own pre-start ssh and network probes, which `distkeras-run`
  does not run (mpirun reports an unreachable host itself);
- every other horovodrun flag (Gloo, jsrun, elastic mode, tensor-fusion and
  autotune tuning, the timeline, ...) is refused before anything starts,
  with an error naming the flag and what to do instead.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable

STALL_ENV = "DISTKERAS_STALL_WARNING_S"
TIMEOUT_ENV = "DISTKERAS_COLLECTIVE_TIMEOUT"

_ELASTIC = (
    "elastic Horovod is not offered; for fault tolerance use "
    "distkeras.distributed.ray.run (restarts lost workers from backups) or a "
    "DistkerasTrainer with FailureConfig(max_failures=k)"
)
_FUSION = (
    "Horovod's tensor-fusion tuning has no counterpart: distkeras reduces each "
    "step's gradients in one fused buffer"
)
_AUTOTUNE = "Horovod's autotuning is not offered (there are no fusion parameters to tune)"
_TIMELINE = "the Horovod timeline is not offered"
_NO_THREAD = "distkeras runs no Horovod background thread"
_LOG_TIME = "Horovod's internal log timestamps do not apply (distkeras logs through `logging`)"

# Flag names -> (number of values the flag takes, why it is refused).
REFUSED: dict[str, tuple[int, str]] = {
    "--gloo": (
        0,
        "distkeras has no Gloo controller: its ranks talk over MPI (drop --gloo) or, "
        "without MPI, over Ray (distkeras-run --backend ray -np N)",
    ),
    "--jsrun": (
        0,
        "jsrun (LSF) is not started by distkeras-run; run `jsrun ... python train.py` "
        "yourself (distkeras reads the MPI rank) or use mpirun",
    ),
    "-cb": (0, "build checks do not apply; `distkeras-run --version` prints the versions"),
    "--check-build": (
        0,
        "build checks do not apply; `distkeras-run --version` prints the versions",
    ),
    "--config-file": (1, "YAML run configurations are not read; give the flags themselves"),
    "--fusion-threshold-mb": (1, _FUSION),
    "--cycle-time-ms": (1, _FUSION),
    "--cache-capacity": (1, "distkeras has no Horovod response cache (no tensor negotiation)"),
    "--hierarchical-allreduce": (0, "hierarchical collectives are not offered"),
    "--no-hierarchical-allreduce": (0, "hierarchical collectives are not offered"),
    "--hierarchical-allgather": (0, "hierarchical collectives are not offered"),
    "--no-hierarchical-allgather": (0, "hierarchical collectives are not offered"),
    "--autotune": (0, _AUTOTUNE),
    "--no-autotune": (0, _AUTOTUNE),
    "--autotune-log-file": (1, _AUTOTUNE),
    "--autotune-warmup-samples": (1, _AUTOTUNE),
    "--autotune-steps-per-sample": (1, _AUTOTUNE),
    "--autotune-bayes-opt-max-samples": (1, _AUTOTUNE),
    "--autotune-gaussian-process-noise": (1, _AUTOTUNE),
    "--min-np": (1, _ELASTIC),
    "--min-num-proc": (1, _ELASTIC),
    "--max-np": (1, _ELASTIC),
    "--max-num-proc": (1, _ELASTIC),
    "--slots-per-host": (1, _ELASTIC),
    "--elastic-timeout": (1, _ELASTIC),
    "--reset-limit": (1, _ELASTIC),
    "--blacklist-cooldown-range": (2, _ELASTIC),
    "--host-discovery-script": (1, _ELASTIC),
    "--timeline-filename": (1, _TIMELINE),
    "--timeline-mark-cycles": (0, _TIMELINE),
    "--no-timeline-mark-cycles": (0, _TIMELINE),
    "--mpi-threads-disable": (0, _NO_THREAD),
    "--no-mpi-threads-disable": (0, _NO_THREAD),
    "--thread-affinity": (1, _NO_THREAD),
    "--num-nccl-streams": (1, "NCCL streams are not configurable in distkeras"),
    "--gloo-timeout-seconds": (
        1,
        "there is no Gloo; bound collectives with --stall-check-shutdown-time-seconds",
    ),
    "--log-level": (
        1,
        "Horovod's backend log level does not apply; distkeras logs through Python's "
        "`logging` (logger 'distkeras.distributed')",
    ),
    "--log-with-timestamp": (0, _LOG_TIME),
    "--log-without-timestamp": (0, _LOG_TIME),
    "--log-hide-timestamp": (0, _LOG_TIME),
    "--no-log-hide-timestamp": (0, _LOG_TIME),
    "-prefix-timestamp": (0, "timestamped output is not offered; --output all tags lines"),
    "--prefix-output-with-timestamp": (
        0,
        "timestamped output is not offered; --output all tags lines",
    ),
}

# Destinations of the flags mapped here (compared when given both before and after
# `horovodrun`).
MAPPED_DESTS = (
    "ssh_port",
    "ssh_identity_file",
    "network_interfaces",
    "mpi_args",
    "binding_args",
    "tcp",
    "start_timeout",
    "disable_cache",
    "use_mpi",
    "output_filename",
    "stall_warning",
    "stall_shutdown",
)


def refuse(argv: list[str], i: int) -> None:
    """Raises a clear error if `argv[i]` is a horovodrun flag distkeras-run does not offer.

    Raises:
        LauncherError: naming the flag, why, and what was received.
    """
    from launcher.cli import LauncherError  # noqa: PLC0415 - cli imports this module

    word = argv[i]
    name, eq, value = word.partition("=")
    if name not in REFUSED:
        return
    nargs, why = REFUSED[name]
    if not eq and nargs:
        value = " ".join(argv[i + 1 : i + 1 + nargs])
    received = f"{name}={value}" if (eq or nargs) else name
    raise LauncherError(
        f"horovodrun's {name} is not offered by distkeras-run: {why}. Received: {received}"
    )


def int_at_least(name: str, minimum: int = 0) -> Callable[[str], int]:
    """An argparse `type` that parses an integer >= `minimum`, naming the flag when not."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be an integer. Received: {name}={text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{name} must be >= {minimum}. Received: {name}={value}"
            )
        return value

    return convert


class _Interfaces(argparse.Action):
    """Appends network interfaces, splitting comma-separated lists (as horovodrun does)."""

    def __call__(self, parser, namespace, values, option_string=None):
        names = [n.strip() for n in str(values).split(",") if n.strip()]
        if not names:
            raise argparse.ArgumentError(
                self, f"{option_string} names no interface. Received: {option_string}={values!r}"
            )
        found = list(getattr(namespace, self.dest, None) or [])
        found += [n for n in names if n not in found]
        setattr(namespace, self.dest, found)


def add_flags(p: argparse.ArgumentParser) -> None:
    """Adds the horovodrun flags that distkeras-run maps (see the module docstring)."""
    g = p.add_argument_group("horovodrun flags")
    g.add_argument(
        "-p",
        "--ssh-port",
        type=int_at_least("--ssh-port", minimum=1),
        metavar="PORT",
        help="ssh port on all hosts (mpirun's ssh arguments)",
    )
    g.add_argument(
        "-i",
        "--ssh-identity-file",
        metavar="FILE",
        help="ssh private key for all hosts (mpirun's ssh arguments)",
    )
    for flag in ("--network-interface", "--network-interfaces"):
        g.add_argument(
            flag,
            dest="network_interfaces",
            action=_Interfaces,
            metavar="NIC",
            help="network interface(s) for MPI's TCP traffic (comma-separated)",
        )
    g.add_argument("--mpi-args", metavar="ARGS", help='extra mpirun arguments: --mpi-args="..."')
    g.add_argument(
        "--binding-args",
        metavar="ARGS",
        help='mpirun binding arguments instead of "--bind-to none"',
    )
    g.add_argument("--tcp", action="store_true", help="Open MPI: TCP transport only")
    g.add_argument(
        "--start-timeout",
        type=int_at_least("--start-timeout"),
        metavar="S",
        help="accepted (horovodrun's pre-start checks, which distkeras-run skips)",
    )
    g.add_argument("--disable-cache", action="store_true", help="accepted (no check cache)")
    g.add_argument("--mpi", dest="use_mpi", action="store_true", help="the MPI backend")
    g.add_argument("--output-filename", metavar="DIR", help="the same as --output-dir DIR")
    g.add_argument(
        "--no-stall-check",
        dest="stall_warning",
        action="store_const",
        const=0,
        help=f"no stall warning ({STALL_ENV}=0)",
    )
    g.add_argument(
        "--stall-check",
        dest="stall_warning",
        action="store_const",
        const=None,
        help=argparse.SUPPRESS,
    )
    g.add_argument(
        "--stall-check-warning-time-seconds",
        dest="stall_warning",
        type=int_at_least("--stall-check-warning-time-seconds"),
        metavar="S",
        help=f"warn about ranks that have not reached a collective after S s ({STALL_ENV})",
    )
    g.add_argument(
        "--stall-check-shutdown-time-seconds",
        dest="stall_shutdown",
        type=int_at_least("--stall-check-shutdown-time-seconds"),
        metavar="S",
        help=f"fail a collective after S s, 0: never ({TIMEOUT_ENV})",
    )


def build_parser(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The parser of the words after `horovodrun` (horovodrun's own spelling of the flags)."""
    from launcher.cli import PROG, version_text  # noqa: PLC0415

    p = parser_class(
        prog=f"{PROG} horovodrun",
        usage=f"{PROG} horovodrun -np N [-H host1:2,host2:2 | -hostfile F] [flags] "
        "python script.py [args ...]",
        description="horovodrun's command line, run by distkeras-run.",
    )
    p.add_argument("-v", "--version", action="version", version=version_text())
    p.add_argument("-np", "--num-proc", dest="np", type=int_at_least("-np", 1), metavar="N")
    p.add_argument("-H", "--hosts", dest="hosts", metavar="HOSTS")
    p.add_argument("-hostfile", "--hostfile", dest="hostfile", metavar="FILE")
    p.add_argument("--verbose", action="store_true")
    add_flags(p)
    return p


def env_entries(ns: argparse.Namespace) -> list[str]:
    """`--env` entries for the stall-check flags."""
    entries = []
    if getattr(ns, "stall_warning", None) is not None:
        entries.append(f"{STALL_ENV}={ns.stall_warning}")
    if getattr(ns, "stall_shutdown", None) is not None:
        entries.append(f"{TIMEOUT_ENV}={ns.stall_shutdown}")
    return entries


def mpirun_options(opts, flavor: str) -> tuple[list[str] | None, list[str], dict[str, str]]:
    """What the mapped flags add to an mpirun command line.

    Args:
        opts: The launcher's `Options`.
        flavor: 'openmpi' or 'mpich'.

    Returns:
        `(binding, extra, env)`: the binding arguments that replace the
        default `--bind-to none` (None: keep it), the arguments added before
        the program, and the variables set on every rank.

    Raises:
        LauncherError: for a flag the MPI flavor cannot honour.
    """
    from launcher.cli import LauncherError  # noqa: PLC0415

    extra: list[str] = []
    env: dict[str, str] = {}
    ssh = []
    if opts.ssh_port is not None:
        ssh += ["-p", str(opts.ssh_port)]
    if opts.ssh_identity_file:
        ssh += ["-i", opts.ssh_identity_file]
    nics = list(opts.network_interfaces)
    if flavor == "mpich":
        if ssh:
            extra += ["-bootstrap", "ssh", "-bootstrap-exec-args", shlex.join(ssh)]
        if len(nics) == 1:
            extra += ["-iface", nics[0]]
        if opts.tcp:
            raise LauncherError(
                "--tcp selects Open MPI's TCP transport; this mpirun is MPICH/Hydra. "
                "Received: --tcp"
            )
    else:
        if ssh:
            extra += ["--mca", "plm_rsh_args", shlex.join(ssh)]
        if nics:
            extra += ["--mca", "btl_tcp_if_include", ",".join(nics)]
        if opts.tcp:
            extra += ["--mca", "pml", "ob1", "--mca", "btl", "tcp,self"]
    if nics:
        env["NCCL_SOCKET_IFNAME"] = ",".join(nics)
    if opts.mpi_args:
        extra += _split(opts.mpi_args, "--mpi-args")
    binding = _split(opts.binding_args, "--binding-args") if opts.binding_args else None
    return binding, extra, env


def _split(text: str, name: str) -> list[str]:
    from launcher.cli import LauncherError  # noqa: PLC0415

    try:
        return shlex.split(text)
    except ValueError as e:
        raise LauncherError(f"{name} cannot be split ({e}). Received: {name}={text!r}") from None
