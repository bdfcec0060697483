"""Turns parsed options into the exact command a backend runs (a `Plan`).

Nothing here starts a process: `build_plan` only reads the environment it is
given through a `Context`, so `--dry-run` and the tests see exactly what a real
run would execute.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from distkeras._blas import BLAS_ENV
from launcher import horovodrun, slurm
from launcher.cli import Command, LauncherError, Options, parse_command
from launcher.output import OUTPUT_ENV, TTY_ENV, tag_options
from launcher.rankenv import devices_for

MPI_EXTRA = "pip install 'distkeras[mpi]'"
RAY_EXTRA = "pip install 'distkeras[ray]'"


def physical_cores() -> int:
    """Physical cores this process may run on (what Open MPI counts as slots)."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topo / "physical_package_id").read_text().strip()
            core = (topo / "core_id").read_text().strip()
            cores.add((package, core))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _bundled_mpirun(python: str) -> str | None:
    for name in ("mpirun", "mpiexec"):
        candidate = Path(python).parent / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("mpirun") or shutil.which("mpiexec")


def _mpi_flavor(mpirun: str) -> str:
    """'openmpi' or 'mpich' (MPICH, Intel MPI and other Hydra launchers)."""
    try:
        out = subprocess.run(
            [mpirun, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
        text = out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        return "openmpi"
    if any(word in text for word in ("HYDRA", "MPICH", "Intel(R) MPI")):
        return "mpich"
    return "openmpi"


@dataclasses.dataclass
class Context:
    """What `build_plan` may know about the machine (injectable for tests).

    Attributes:
        environ: The launcher's environment.
        python: The interpreter the ranks run (this one by default).
        euid: Effective user id (0 adds Open MPI's --allow-run-as-root).
        cores: Physical cores here (more ranks than this adds --oversubscribe).
        which: Finds an executable on PATH.
        find_mpirun: Finds the bundled mpirun (next to `python`, then on PATH).
        has_module: Whether a Python module is importable.
        mpi_flavor: 'openmpi' or 'mpich' for an mpirun path.
        stdout_tty: Whether the launcher's stdout is a terminal (ranks then
            draw live progress bars; otherwise one line per epoch).
    """

    environ: Mapping[str, str]
    python: str
    euid: int
    cores: int
    which: Callable[[str], str | None] = shutil.which
    find_mpirun: Callable[[], str | None] | None = None
    has_module: Callable[[str], bool] = _has_module
    mpi_flavor: Callable[[str], str] = _mpi_flavor
    stdout_tty: bool = False

    @classmethod
    def from_system(cls) -> Context:
        """The context of this process."""
        return cls(
            environ=dict(os.environ),
            python=sys.executable,
            euid=os.geteuid() if hasattr(os, "geteuid") else 1,
            cores=physical_cores(),
            stdout_tty=bool(hasattr(sys.stdout, "isatty") and sys.stdout.isatty()),
        )

    def mpirun(self) -> str | None:
        """The mpirun to use by default."""
        if self.find_mpirun is not None:
            return self.find_mpirun()
        return _bundled_mpirun(self.python)


@dataclasses.dataclass
class Plan:
    """What a backend will run.

    Attributes:
        backend: The backend that was chosen.
        argv: The command to execute (empty for the Ray backend).
        env: Variables set for the job on top of the launcher's environment.
        stdin: Text fed to the command's standard input (the sbatch script).
        timeout: Wall-clock limit enforced by the launcher, or None.
        ray_call: Keyword arguments of `distkeras.distributed.ray.run_script`.
        size: The number of ranks.
        tags: How the job's output lines carry their rank ('openmpi', 'mpich',
            'srun'), or None when they do not (see `launcher.output`).
        where: Where the ranks run, in words (for the start line).
        mpi: The flavor of the mpirun that starts the job ('openmpi' or
            'mpich'), or None when no mpirun does.
    """

    backend: str
    argv: list[str]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    stdin: str | None = None
    timeout: float | None = None
    ray_call: dict | None = None
    size: int = 1
    tags: str | None = None
    where: str = "this machine"
    mpi: str | None = None


def parse_hosts(hosts: str) -> list[tuple[str, int]]:
    """Parses `host1:4,host2:4` (slots default to 1)."""
    result = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, slots = item.partition(":")
        if not name or (slots and (not slots.isdigit() or int(slots) < 1)):
            raise LauncherError(
                f"-H expects host[:slots] items separated by commas. Received: -H={hosts!r}"
            )
        result.append((name, int(slots) if slots else 1))
    if not result:
        raise LauncherError(f"-H names no host. Received: -H={hosts!r}")
    return result


def parse_hostfile(text: str) -> list[tuple[str, int]]:
    """Parses a hostfile: `host slots=4`, `host:4` or `host` per line; '#' comments."""
    result = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, _, slots = words[0].partition(":")
        count = int(slots) if slots.isdigit() else 1
        for word in words[1:]:
            key, _, value = word.partition("=")
            if key in ("slots", "max_slots", "max-slots") and value.isdigit():
                count = int(value) if key == "slots" else count
        result.append((name, count))
    return result


def resolve_env(entries: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Turns `--env` entries (`K=V` or `K`) into a dict."""
    env = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise LauncherError(
                f"--env expects KEY=VALUE with a valid variable name. Received: --env={entry!r}"
            )
        if not sep:
            if key not in environ:
                raise LauncherError(
                    f"--env {key} passes the current value on, but {key} is not set. "
                    f"Received: --env={entry!r}"
                )
            value = environ[key]
        env[key] = value
    return env


def _validate(opts: Options, backend: str) -> None:
    if opts.hosts and opts.hostfile:
        raise LauncherError("Give either -H/--hosts or --hostfile, not both.")
    if (opts.hosts or opts.hostfile) and backend != "mpi":
        raise LauncherError(
            f"-H/--hostfile apply to --backend mpi (local runs on this machine only). "
            f"Received: --backend={backend}"
        )
    if opts.address and backend != "ray":
        raise LauncherError(f"--address applies to --backend ray. Received: --backend={backend}")
    if opts.wait and backend != "slurm":
        raise LauncherError(f"--wait applies to --backend slurm. Received: --backend={backend}")
    if opts.slurm_launcher != "auto" and backend != "slurm":
        raise LauncherError(
            f"--slurm-launcher applies to --backend slurm. Received: --backend={backend}"
        )
    if opts.mpirun and backend == "ray":
        raise LauncherError("--mpirun does not apply to --backend ray.")
    if backend not in ("local", "mpi"):
        mpi_only = {
            "--ssh-port": opts.ssh_port,
            "--ssh-identity-file": opts.ssh_identity_file,
            "--network-interface": ",".join(opts.network_interfaces) or None,
            "--mpi-args": opts.mpi_args,
            "--binding-args": opts.binding_args,
            "--tcp": opts.tcp or None,
        }
        for flag, value in mpi_only.items():
            if value is not None:
                raise LauncherError(
                    f"{flag} applies to the MPI backends (local, mpi), where distkeras-run "
                    f"starts mpirun. Received: --backend={backend}"
                )


def _num_procs(opts: Options, backend: str, ctx: Context) -> int:
    if opts.np is not None:
        return opts.np
    if backend == "ray":
        raise LauncherError("--backend ray needs -np: the number of Ray workers.")
    if opts.hosts:
        return sum(slots for _, slots in parse_hosts(opts.hosts))
    if opts.hostfile and os.path.isfile(opts.hostfile):
        total = sum(slots for _, slots in parse_hostfile(Path(opts.hostfile).read_text()))
        if total:
            return total
    if backend == "slurm" and ctx.environ.get("SLURM_NTASKS", "").isdigit():
        return int(ctx.environ["SLURM_NTASKS"])
    raise LauncherError("-np is required: the number of processes to start (e.g. -np 2).")


def _need_mpi(opts: Options, ctx: Context) -> None:
    if not opts.dry_run and not ctx.has_module("mpi4py"):
        raise LauncherError(
            "Running more than one rank needs mpi4py and an MPI library, which are not "
            f"installed: {MPI_EXTRA}"
        )


def _find_mpirun(opts: Options, ctx: Context) -> str:
    if opts.mpirun:
        path = ctx.which(opts.mpirun)  # also checks an explicit path
        if path is None and not opts.dry_run:
            raise LauncherError(f"mpirun not found. Received: --mpirun={opts.mpirun!r}")
        return path or opts.mpirun
    path = ctx.mpirun()
    if path is None:
        if opts.dry_run:
            return "mpirun"
        raise LauncherError(f"No mpirun found next to {ctx.python} or on PATH: {MPI_EXTRA}")
    return path


def _rank_program(cmd: Command, gpus: int | None, ctx: Context) -> list[str]:
    program = cmd.python_argv(ctx.python)
    if gpus:
        return [ctx.python, "-m", "launcher.rankenv", "--gpus-per-proc", str(gpus), *program]
    return program


def _mpirun_argv(
    mpirun: str,
    flavor: str,
    np: int,
    program: list[str],
    exports: list[str],
    *,
    root: bool = False,
    oversubscribe: bool = False,
    hosts: str | None = None,
    hostfile: str | None = None,
    binding: list[str] | None = None,
    extra: list[str] = (),
) -> list[str]:
    if flavor == "mpich":
        argv = [mpirun, "-n", str(np)]
        if hosts:
            argv += ["-hosts", hosts]
        if hostfile:
            argv += ["-f", hostfile]
        argv += ["-bind-to", "none"] if binding is None else binding
        if exports:
            argv += ["-genvlist", ",".join(exports)]
        return argv + list(extra) + program
    argv = [mpirun, "-np", str(np)]
    if root:
        argv.append("--allow-run-as-root")
    if oversubscribe:
        argv.append("--oversubscribe")
    if hosts:
        argv += ["-H", hosts]
    if hostfile:
        argv += ["--hostfile", hostfile]
    argv += ["--bind-to", "none"] if binding is None else binding
    for key in exports:
        argv += ["-x", key]
    return argv + list(extra) + program


def _exports(env: Mapping[str, str], environ: Mapping[str, str]) -> list[str]:
    names = set(env) | {k for k in environ if k.startswith("DISTKERAS_")}
    return sorted(names)


def _launcher_filters(opts: Options) -> bool:
    """Whether the launcher reads the ranks' tagged lines (else rank != 0 drops its stdout)."""
    return opts.output == "all" or opts.output_dir is not None


def _output_env(opts: Options, ctx: Context, env: dict) -> None:
    """Tells the ranks who prints (`DISTKERAS_RUN_OUTPUT`) and whether stdout is a terminal."""
    filtered = _launcher_filters(opts)
    env[OUTPUT_ENV] = "all" if filtered else "rank0"
    live = ctx.stdout_tty and not filtered
    env.setdefault(TTY_ENV, ctx.environ.get(TTY_ENV, "1" if live else "0"))


def _with_tags(argv: list[str], flavor: str, opts: Options) -> list[str]:
    """Inserts the rank-tagging options right after the launcher's name."""
    return [argv[0], *tag_options(flavor), *argv[1:]] if _launcher_filters(opts) else argv


def _where(opts: Options) -> str:
    if opts.hosts:
        return f"hosts {opts.hosts}"
    if opts.hostfile:
        return f"the hosts of {opts.hostfile}"
    return "this machine"


def _mpi_plan(opts: Options, backend: str, np: int, cmd: Command, env: dict, ctx: Context) -> Plan:
    remote = bool(opts.hosts or opts.hostfile)
    if backend == "local" and np == 1:
        if opts.gpus_per_proc:
            visible = ctx.environ.get("CUDA_VISIBLE_DEVICES")
            env["CUDA_VISIBLE_DEVICES"] = devices_for(0, opts.gpus_per_proc, visible)
        return Plan(backend, cmd.python_argv(ctx.python), env, timeout=opts.timeout)
    _need_mpi(opts, ctx)
    mpirun = _find_mpirun(opts, ctx)
    flavor = ctx.mpi_flavor(mpirun) if opts.mpirun else "openmpi"
    if opts.hostfile and not opts.dry_run and not os.path.isfile(opts.hostfile):
        raise LauncherError(f"Hostfile not found. Received: --hostfile={opts.hostfile!r}")
    if opts.hosts:
        parse_hosts(opts.hosts)
    if not remote:
        if "OMP_NUM_THREADS" not in ctx.environ and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = str(max(1, ctx.cores // np))
    if "PYTHONUNBUFFERED" not in ctx.environ and "PYTHONUNBUFFERED" not in env:
        env["PYTHONUNBUFFERED"] = "1"
    _output_env(opts, ctx, env)
    binding, extra, hvd_env = horovodrun.mpirun_options(opts, flavor)
    for key, value in hvd_env.items():
        env.setdefault(key, value)
    argv = _mpirun_argv(
        mpirun,
        flavor,
        np,
        _rank_program(cmd, opts.gpus_per_proc, ctx),
        _exports(env, ctx.environ),
        root=ctx.euid == 0,
        oversubscribe=not remote and np > ctx.cores,
        hosts=opts.hosts,
        hostfile=opts.hostfile,
        binding=binding,
        extra=extra,
    )
    argv = _with_tags(argv, flavor, opts)
    tags = flavor if _launcher_filters(opts) else None
    return Plan(
        backend, argv, env, timeout=opts.timeout, size=np, tags=tags, where=_where(opts), mpi=flavor
    )


def _slurm_plan(opts: Options, np: int, cmd: Command, env: dict, ctx: Context) -> Plan:
    if "SLURM_JOB_ID" not in ctx.environ:
        words = cmd.python_argv("python")
        script = slurm.render_sbatch(
            np, words, gpus_per_task=opts.gpus_per_proc, time_limit=opts.timeout, env=env
        )
        sbatch = ctx.which("sbatch")
        if sbatch is None and not opts.dry_run:
            raise LauncherError(
                "sbatch not found: submit from a Slurm login node, or run inside an "
                "allocation (salloc/sbatch), where srun starts the ranks."
            )
        argv = [sbatch or "sbatch"] + (["--wait"] if opts.wait else [])
        return Plan("slurm", argv, {}, stdin=script)
    _need_mpi(opts, ctx)
    choice = opts.slurm_launcher
    srun = ctx.which("srun")
    if choice == "auto":
        choice = "srun" if srun or (opts.mpirun is None and ctx.mpirun() is None) else "mpirun"
    program = _rank_program(cmd, opts.gpus_per_proc, ctx)
    if choice == "mpirun":
        mpirun = _find_mpirun(opts, ctx)
        flavor = ctx.mpi_flavor(mpirun) if opts.mpirun else "openmpi"
        if "PYTHONUNBUFFERED" not in ctx.environ:
            env["PYTHONUNBUFFERED"] = "1"
        _output_env(opts, ctx, env)
        argv = _mpirun_argv(
            mpirun, flavor, np, program, _exports(env, ctx.environ), root=ctx.euid == 0
        )
        argv = _with_tags(argv, flavor, opts)
        tags = flavor if _launcher_filters(opts) else None
        return Plan("slurm", argv, env, timeout=opts.timeout, size=np, tags=tags,
                    where="the Slurm allocation", mpi=flavor)  # fmt: skip
    if srun is None and not opts.dry_run:
        raise LauncherError(
            "srun not found inside the Slurm allocation; try --slurm-launcher mpirun"
        )
    argv = [srun or "srun", "--mpi=pmix", f"--ntasks={np}", "--kill-on-bad-exit=1"]
    cpus = ctx.environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit():
        argv.append(f"--cpus-per-task={cpus}")
    if opts.gpus_per_proc:
        argv.append(f"--gpus-per-task={opts.gpus_per_proc}")
    _output_env(opts, ctx, env)
    argv = _with_tags(argv, "srun", opts)
    tags = "srun" if _launcher_filters(opts) else None
    return Plan("slurm", argv + program, env, timeout=opts.timeout, size=np, tags=tags,
                where="the Slurm allocation")  # fmt: skip


def _ray_plan(opts: Options, np: int, cmd: Command, env: dict, ctx: Context) -> Plan:
    if cmd.module:
        raise LauncherError(
            f"--backend ray runs a script file; `-m` is not supported. Received: -m {cmd.module}"
        )
    ray_env = {k: v for k, v in ctx.environ.items() if k.startswith("DISTKERAS_")}
    ray_env.update(env)
    if opts.gpus_per_proc:
        ray_env["DISTKERAS_GPUS_PER_PROC"] = str(opts.gpus_per_proc)
    call = {
        "script": cmd.script,
        "args": list(cmd.args),
        "num_workers": np,
        "address": opts.address,
        "env": ray_env,
    }
    where = f"the Ray cluster at {opts.address}" if opts.address else "a local Ray cluster"
    return Plan(
        "ray", [], {}, timeout=opts.timeout, ray_call=call, size=np, tags="ray", where=where
    )


def build_plan(opts: Options, ctx: Context | None = None) -> Plan:
    """Builds the plan for parsed options.

    Raises:
        LauncherError: for a missing script, a bad combination of options, or a
            backend whose tools are not installed (except under `--dry-run`).
    """
    ctx = ctx or Context.from_system()
    cmd = parse_command(opts.command)
    if cmd.script is not None and not os.path.isfile(cmd.script):
        raise LauncherError(f"Script not found. Received: script={cmd.script!r}")
    backend = opts.backend or ("mpi" if opts.hosts or opts.hostfile else "local")
    _validate(opts, backend)
    env = resolve_env(opts.env, ctx.environ)
    for key, value in BLAS_ENV.items():  # must be in place before the job loads NumPy
        if key not in ctx.environ and key not in env:
            env[key] = value
    np = _num_procs(opts, backend, ctx)
    if backend in ("local", "mpi"):
        return _mpi_plan(opts, backend, np, cmd, env, ctx)
    if backend == "slurm":
        return _slurm_plan(opts, np, cmd, env, ctx)
    return _ray_plan(opts, np, cmd, env, ctx)


def format_plan(plan: Plan) -> str:
    """The plan as a shell command (what `--dry-run` prints)."""
    lines = []
    if plan.timeout:
        lines.append(f"# distkeras-run ends the job after {plan.timeout:g} s (--timeout)")
    if plan.ray_call is not None:
        args = ", ".join(f"{k}={v!r}" for k, v in plan.ray_call.items())
        lines.append(f"distkeras.distributed.ray.run_script({args})")
        return "\n".join(lines)
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in plan.env.items())
    command = shlex.join(plan.argv)
    line = f"{prefix} {command}" if prefix else command
    if plan.stdin is not None:
        line += " <<'DISTKERAS_EOF'\n" + plan.stdin + "DISTKERAS_EOF"
    lines.append(line)
    return "\n".join(lines)
