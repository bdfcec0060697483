"""`distkeras-run` / `python -m launcher`: start a data-parallel job."""

from __future__ import annotations

import os
import signal
import sys

from launcher.cli import PROG, LauncherError, build_parser, parse_args
from launcher.lifeline import Lifeline
from launcher.plan import Context, build_plan, format_plan
from launcher.process import JobRunner, grace_period


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
        context = context or Context.from_system()
        plan = build_plan(opts, context)
        if opts.dry_run:
            print(format_plan(plan), flush=True)
            return 0
        if opts.verbose:
            print(format_plan(plan), file=sys.stderr, flush=True)
        with Lifeline(watchdog=cli_process) as lifeline:
            if plan.ray_call is not None:
                from launcher.ray_backend import run_ray  # noqa: PLC0415 - ray path only

                # Ray's processes and workers inherit the token from this process.
                os.environ.update(lifeline.env)
                plan.ray_call["env"].update(lifeline.env)
                return run_ray(plan)
            runner = JobRunner(
                plan.argv,
                {**context.environ, **plan.env, **lifeline.env},
                stdin=plan.stdin,
                timeout=plan.timeout,
                grace=grace_period(context.environ),
                subreaper=cli_process,
                death_signal=signal.SIGTERM,
                exclude=lifeline.pids,
            )
            return runner.run()
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
