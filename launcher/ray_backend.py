"""`--backend ray`: hands the script to distkeras's Ray script runner.

The runner itself lives in `distkeras.distributed.ray` (the `ray` extra); this
module checks that it is installed and that the cluster answers, then calls
`run_script(script, args, num_workers, address, env)` in this process.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import socket
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from launcher.cli import LauncherError
from launcher.output import OutputRouter
from launcher.plan import RAY_EXTRA, Plan
from launcher.process import TIMEOUT_EXIT

_LOCAL_ADDRESSES = ("", "auto", "local")
_DEFAULT_PORTS = {"ray": 10001, "http": 8265, "https": 443, "": 6379}


def address_endpoint(address: str) -> tuple[str, int] | None:
    """The (host, port) an address points at, or None for 'auto'/'local'.

    Accepts `ray://host:10001` (Ray client), `http://host:8265` (job API) and
    `host:6379` (GCS).
    """
    if address is None or address.strip().lower() in _LOCAL_ADDRESSES:
        return None
    text = address.strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    if not parts.hostname:
        raise LauncherError(
            f"Cannot read a host out of the Ray address. Received: --address={address!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise LauncherError(
            f"Bad port in the Ray address. Received: --address={address!r}"
        ) from None
    return parts.hostname, port or _DEFAULT_PORTS.get(parts.scheme, 6379)


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Raises LauncherError when nothing listens at a Ray address."""
    endpoint = address_endpoint(address) if address else None
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise LauncherError(
            f"Cannot reach the Ray cluster at {address!r} ({host}:{port}: {reason}). Check "
            "--address, or start a cluster first (`ray start --head`, or `ray up "
            "cluster/ray/cluster.yaml`)."
        ) from None


def load_runner() -> Callable:
    """Returns `distkeras.distributed.ray.run_script`; a LauncherError names the missing extra."""
    try:
        importlib.import_module("ray")
    except ImportError:
        raise LauncherError(
            f"--backend ray needs Ray, which is not installed: {RAY_EXTRA}"
        ) from None
    try:
        module = importlib.import_module("distkeras.distributed.ray")
        return module.run_script
    except (ImportError, AttributeError) as e:
        raise LauncherError(
            "--backend ray needs distkeras's Ray script runner "
            f"(distkeras.distributed.ray.run_script), which is not available ({e}). "
            f"Reinstall with the extra: {RAY_EXTRA}"
        ) from None


class _Interrupted(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP or when --timeout expires."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _raise(code: int):
    def handler(signum, frame):
        raise _Interrupted(code)

    return handler


class _LineStream(io.TextIOBase):
    """A text stream that hands each complete line to an `OutputRouter`."""

    def __init__(self, router: OutputRouter, stream: str):
        super().__init__()
        self.router = router
        self.stream = stream
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self.router.feed(self.stream, line + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.router.feed(self.stream, self._pending)
            self._pending = ""


def ray_environment(address: str | None, verbose: bool) -> dict[str, str]:
    """Variables this process sets before loading Ray (a user's own values win).

    Each worker line reaches the router (no merging of equal lines across
    ranks), Ray logs only errors unless `-v`, and a cluster that answers but
    refuses the connection (a missing token) fails in seconds, not 20.
    """
    env = {"RAY_DEDUP_LOGS": "0"}
    if not verbose:
        env["DISTKERAS_RAY_QUIET"] = "1"
        # The failing rank's traceback is printed once; the other ranks' ends are not errors.
        env["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"
    if address_endpoint(address) is not None:
        env["RAY_NUM_REDIS_GET_RETRIES"] = "3"
    return env


def run_ray(
    plan: Plan,
    runner: Callable | None = None,
    router: OutputRouter | None = None,
    verbose: bool = False,
) -> int:
    """Runs a Ray plan; returns the job's exit code (128+N on signal N, 124 on timeout).

    Args:
        plan: A plan from `build_plan` with `ray_call` set.
        runner: The script runner (default: `distkeras.distributed.ray.run_script`).
        router: Routes the workers' lines (`[rank N]` prefixes, rank 0's stdout
            only, per-rank files); None prints them as Ray does.
        verbose: Keep Ray's own log messages.
    """
    call = plan.ray_call
    check_reachable(call["address"])
    for key, value in ray_environment(call["address"], verbose).items():
        os.environ.setdefault(key, value)
    runner = runner or load_runner()
    handlers = {signal.SIGTERM: _raise(128 + signal.SIGTERM)}
    if hasattr(signal, "SIGHUP"):
        handlers[signal.SIGHUP] = _raise(128 + signal.SIGHUP)
    if plan.timeout:
        handlers[signal.SIGALRM] = _raise(TIMEOUT_EXIT)
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    if plan.timeout:
        signal.setitimer(signal.ITIMER_REAL, plan.timeout)
    saved = sys.stdout, sys.stderr
    if router is not None:
        sys.stdout, sys.stderr = _LineStream(router, "stdout"), _LineStream(router, "stderr")
    try:
        rc = runner(call["script"], call["args"], call["num_workers"], call["address"], call["env"])
    except ConnectionError as e:  # the cluster answered but refused the driver
        raise LauncherError(str(e)) from None
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except _Interrupted as e:
        if e.code == TIMEOUT_EXIT:
            print(
                f"distkeras-run: the job ran past --timeout {plan.timeout:g} s; ended it",
                file=sys.stderr,
            )
        return e.code
    finally:
        if router is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = saved
            router.close()
        if plan.timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if rc is None:
        return 0
    with contextlib.suppress(TypeError, ValueError):
        return int(rc)
    return 1
