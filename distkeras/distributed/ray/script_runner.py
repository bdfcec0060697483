"""Runs a whole Python script on N Ray workers (`distkeras-run --backend ray -np N`).

Each worker runs the script as `__main__` with `sys.argv = [script, *args]`,
in the driver's working directory when it exists on the worker's node, with
the Ray communicator set up, so the script's `initialize()` (or its first
`fit`) is data-parallel exactly as under mpirun.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
import traceback
from collections.abc import Sequence

from distkeras.distributed.ray.driver import WorkerError, ensure_ray, execute, report_failure

PLACEMENT_ENV = "DISTKERAS_RAY_PLACEMENT"


def _run_in_worker(script: str, args: list[str], cwd: str, source: str) -> int:
    from distkeras.distributed.ray.driver import get_context  # noqa: PLC0415

    if os.path.isdir(cwd):
        os.chdir(cwd)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    code = 0
    try:
        if os.path.isfile(script):
            runpy.run_path(script, run_name="__main__")
        else:  # not on this node's filesystem: run the driver's copy
            exec(compile(source, script, "exec"), {"__name__": "__main__", "__file__": script})  # noqa: S102
    except Exception as e:
        # Report the script's own frames (not runpy's and ours); the first report wins.
        ctx = get_context()
        report_failure(dict(os.environ), ctx.rank, ctx.size, script_traceback(e, script), 1)
        raise
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            sys.stderr.write(f"{e.code}\n")
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    if code != 0:
        ctx = get_context()
        report_failure(
            dict(os.environ), ctx.rank, ctx.size, f"the script exited with status {code}", code
        )
    return code


def script_traceback(error: BaseException, script: str) -> str:
    """The traceback of `error` from the script's first frame on (Python's format)."""
    tb = error.__traceback__
    frame = tb
    while frame is not None and frame.tb_frame.f_code.co_filename != script:
        frame = frame.tb_next
    return "".join(traceback.format_exception(type(error), error, frame or tb))


def run_script(
    script: str | os.PathLike,
    args: Sequence[str] = (),
    num_workers: int = 2,
    address: str | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Runs `script` on `num_workers` Ray workers; returns the job's exit code.

    Connects to the cluster at `address` (or `RAY_ADDRESS`); without either,
    starts a local cluster for the job (with at least `num_workers` CPUs) and
    stops it afterwards. A process already connected to Ray uses its cluster.

    Args:
        script: Path of the Python script.
        args: The script's command-line arguments.
        num_workers: The number of ranks.
        address: A Ray address ('host:6379', 'ray://host:10001', 'auto'), or None.
        env: Environment variables for the workers. `DISTKERAS_GPUS_PER_PROC`
            > 0 gives each worker that many GPUs; `DISTKERAS_RAY_PLACEMENT` (here
            or in this process's environment) picks the placement strategy
            ('PACK' by default, 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD').

    Returns:
        0 on success, the first failing rank's exit status (1 for an exception).
    """
    script = os.path.abspath(os.fspath(script))
    if not os.path.isfile(script):
        sys.stderr.write(f"distkeras-run: can't open file {script!r}: no such file\n")
        return 2
    with open(script, encoding="utf-8") as f:
        source = f.read()
    env = {str(k): str(v) for k, v in (env or {}).items()}
    gpus = float(env.get("DISTKERAS_GPUS_PER_PROC", "0") or 0)
    placement = env.get(PLACEMENT_ENV) or os.environ.get(PLACEMENT_ENV) or "PACK"
    resources = {"CPU": 1.0, **({"GPU": gpus} if gpus > 0 else {})}
    started = ensure_ray(address, num_cpus=max(num_workers, os.cpu_count() or 1))
    try:
        codes = execute(
            _run_in_worker,
            (script, [str(a) for a in args], os.getcwd(), source),
            num_workers,
            resources_per_worker=resources,
            use_gpu=gpus > 0,
            placement_strategy=placement,
            env=env,
            keep_all=True,
        )
    except WorkerError as e:
        text = e.traceback_text.rstrip("\n")
        sys.stderr.write(f"[distkeras] rank {e.rank} failed:\n{text}\n")
        return e.exit_code or 1
    finally:
        # Workers' output reaches the driver through Ray's log monitor, a moment
        # after they print: wait for it before the driver (and its output) ends.
        time.sleep(float(os.environ.get("DISTKERAS_RAY_LOG_DRAIN", "1.5")))
        sys.stdout.flush()
        if started:
            import ray  # noqa: PLC0415

            ray.shutdown()
    return next((int(c) for c in codes if c), 0)
