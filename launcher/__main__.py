"""`distkeras-run` / `python -m launcher`: start a data-parallel job."""

from __future__ import annotations

import os
import signal
import sys

from launcher.cli import PROG, LauncherError, build_parser, misplaced_hint, parse_args
from launcher.lifeline import Lifeline
from launcher.output import OutputRouter, failure_line
from launcher.plan import Context, Plan, build_plan, format_plan
from launcher.process import TIMEOUT_EXIT, JobRunner, grace_period
from launcher.sessiondir import SESSION_BASE_ENV, make_private_base, remove_base, wants_private_base


def start_line(plan: Plan, opts, environ) -> str:
    """What is launched, in one line: backend, ranks, where, threads per rank, command."""
    threads = plan.env.get("OMP_NUM_THREADS") or environ.get("OMP_NUM_THREADS")
    per_rank = f", {threads} thread(s) per rank" if threads else ""
    ranks = f"{plan.size} rank{'s' if plan.size != 1 else ''}"
    command = " ".join(opts.command)
    return f"{PROG}: {ranks} on {plan.where} (backend {plan.backend}{per_rank}): {command}"


def end_line(code: int, plan: Plan, router: OutputRouter | None) -> str | None:
    """The launcher's line about how the job ended, or None for success."""
    if code == 0 or code == TIMEOUT_EXIT:
        return None
    if code == 128 + signal.SIGINT:
        return f"{PROG}: interrupted (Ctrl-C): stopped the job's {plan.size} rank(s)"
    if code > 128 and code - 128 in (signal.SIGTERM, getattr(signal, "SIGHUP", -1)):
        name = signal.Signals(code - 128).name
        return f"{PROG}: got {name}: stopped the job's {plan.size} rank(s)"
    rank = router.failed_rank() if router is not None else None
    line = failure_line(code, rank, plan.size if plan.size > 1 else None)
    said = router.launch_error() if router is not None else None
    if said:
        line += ". The MPI launcher said:\n" + "\n".join("  " + s for s in said.splitlines())
    return line


def _router(plan: Plan, opts) -> OutputRouter | None:
    """The output router of an MPI/srun job, or None when its output needs no routing."""
    filtered = opts.output == "all" or opts.output_dir is not None
    if plan.ray_call is None and (plan.stdin is not None or (plan.size <= 1 and not filtered)):
        return None
    if opts.output_dir:
        try:
            os.makedirs(opts.output_dir, exist_ok=True)
        except OSError as e:
            raise LauncherError(
                f"Cannot create the output folder ({e.strerror}). "
                f"Received: --output-dir={opts.output_dir!r}"
            ) from None
    return OutputRouter(
        opts.output,
        opts.output_dir,
        verbose=opts.verbose,
        flavor=plan.tags,
        default_rank=0 if plan.size <= 1 else None,
    )


def _run(plan: Plan, opts, environ: dict, cli_process: bool) -> tuple[int, OutputRouter | None]:
    """Runs the plan's job (Ray, or a command) tied to a lifeline.

    Returns:
        The job's exit code and the router that read its output (or None).
    """
    router = None if plan.ray_call is not None else _router(plan, opts)
    env = {**environ, **plan.env}
    base = make_private_base() if wants_private_base(plan.mpi, env) else None
    if base is not None:
        env[SESSION_BASE_ENV] = base
    try:
        with Lifeline(watchdog=cli_process, leftover=base) as lifeline:
            if plan.ray_call is not None:
                from launcher.ray_backend import run_ray  # noqa: PLC0415 - ray path only

                # Ray's processes and workers inherit the token from this process.
                os.environ.update(lifeline.env)
                plan.ray_call["env"].update(lifeline.env)
                router = _router(plan, opts)
                return run_ray(plan, router=router, verbose=opts.verbose), router
            runner = JobRunner(
                plan.argv,
                {**env, **lifeline.env},
                stdin=plan.stdin,
                timeout=plan.timeout,
                grace=grace_period(environ),
                subreaper=cli_process,
                death_signal=signal.SIGTERM,
                exclude=lifeline.pids,
                router=router,
            )
            return runner.run(), router
    finally:
        remove_base(base)


def main(argv: list[str] | None = None, context: Context | None = None) -> int:
    """Runs `distkeras-run` and returns its exit code (the job's exit code).

    Args:
        argv: The arguments after the program name (default: `sys.argv[1:]`).
            When None, this is the real command-line process, which also adopts
            orphaned descendants and starts a watchdog, so that no process of
            the job outlives it, even when it is killed with SIGKILL.
        context: The machine as `build_plan` sees it (default: this process's).

    Returns:
        The job's exit code; 2 for a launcher error found before the job
        started; 128+N when the launcher got signal N; 124 after --timeout.
    """
    cli_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        build_parser().print_usage(sys.stderr)
        return 2
    try:
        opts = parse_args(argv)
        hint = misplaced_hint(opts)
        if hint:
            print(hint, file=sys.stderr, flush=True)
        context = context or Context.from_system()
        plan = build_plan(opts, context)
        if opts.dry_run:
            print(format_plan(plan), flush=True)
            return 0
        if opts.verbose:
            print(format_plan(plan), file=sys.stderr, flush=True)
        if not opts.quiet:
            print(start_line(plan, opts, context.environ), file=sys.stderr, flush=True)
        code, router = _run(plan, opts, context.environ, cli_process)
        line = end_line(code, plan, router)
        if line:
            print(line, file=sys.stderr, flush=True)
        return code
    except LauncherError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except SystemExit as e:  # --help / --version
        return e.code if isinstance(e.code, int) else 0
    except OSError as e:
        print(f"{PROG}: error: cannot start the job: {e}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main())
