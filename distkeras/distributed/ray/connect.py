"""Connecting a driver to Ray: token authentication, clear errors, no nested jobs.

`ray start --head` on Ray 2.x may run with token authentication
(`RAY_AUTH_MODE=token`); its token lives in `~/.ray/auth_token` (or the file
`RAY_AUTH_TOKEN_PATH` names, or the `RAY_AUTH_TOKEN` variable). Ray itself
reads that token only for `address='auto'`; `ensure_ray` also sends it to an
explicit address, as `distkeras-run --backend ray --address HOST:PORT` gives.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import ray

from distkeras.distributed.env import detect_launch
from distkeras.distributed.ray.communicator import GROUP_ENV

AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_TOKEN_ENV = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
QUIET_ENV = "DISTKERAS_RAY_QUIET"  # set by distkeras-run without -v: Ray logs errors only


def cluster_token_available(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this machine holds a Ray token (RAY_AUTH_TOKEN, its path, ~/.ray/auth_token)."""
    env = os.environ if environ is None else environ
    if env.get(AUTH_TOKEN_ENV, "").strip():
        return True
    default = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    try:
        with open(env.get(AUTH_TOKEN_PATH_ENV) or default, encoding="utf-8") as f:
            return bool(f.read().strip())
    except OSError:
        return False


def use_cluster_token() -> bool:
    """Sends this machine's token when connecting to an address (`RAY_AUTH_MODE=token`).

    An explicit `RAY_AUTH_MODE` (`disabled` included) is left as the user set it.

    Returns:
        True when token mode was switched on here.
    """
    if AUTH_MODE_ENV in os.environ or not cluster_token_available():
        return False
    os.environ[AUTH_MODE_ENV] = "token"
    try:  # make an already-loaded Ray see the mode, as `ray.init('auto')` does
        from ray._raylet import Config  # noqa: PLC0415

        Config.initialize("")
    except Exception:  # noqa: BLE001 - older Rays read the variable when connecting
        pass
    return True


def connect_error(address: str, error: BaseException) -> ConnectionError:
    """The error for a cluster that answered but refused this driver."""
    if os.environ.get(AUTH_MODE_ENV, "").lower() == "token":
        auth = (
            "If it uses token authentication, this machine's token (~/.ray/auth_token, "
            f"{AUTH_TOKEN_PATH_ENV} or {AUTH_TOKEN_ENV}) must be the head node's "
            "(`ray get-auth-token` prints it there)."
        )
    else:
        auth = (
            "A cluster started with token authentication (RAY_AUTH_MODE=token) needs "
            "its token here: copy the head node's ~/.ray/auth_token to this machine, or "
            f"set {AUTH_TOKEN_ENV} (or {AUTH_TOKEN_PATH_ENV})."
        )
    return ConnectionError(
        f"Cannot connect to the Ray cluster ({error}). {auth} Received: address={address!r}"
    )


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connects to Ray if this process is not yet connected; returns True if it connected.

    Uses `address`, else `RAY_ADDRESS`, else starts a local cluster with
    `num_cpus` CPUs (default: the machine's). A cluster with token
    authentication gets this machine's token (see `use_cluster_token`).

    Raises:
        ConnectionError: The cluster at `address` refused the connection; the
            message names the token variables.
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    level = logging.ERROR if os.environ.get(QUIET_ENV) == "1" else logging.INFO
    if address and address.lower() != "local":
        if address.lower() != "auto":
            use_cluster_token()
        # A missing or wrong token is a ConnectionError, or Ray's AuthenticationError when
        # token mode is already on in the environment (RAY_AUTH_MODE=token).
        refused = (ConnectionError, getattr(ray.exceptions, "AuthenticationError", ConnectionError))
        try:
            ray.init(address=address, logging_level=level)
        except refused as e:
            raise connect_error(address, e) from None
    else:
        # 'local': a new cluster, even where `ray start` left an address file behind.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level=level)
    return True


def check_not_nested(what: str = "distkeras.distributed.ray.run()") -> None:
    """Raises when a Ray job driver runs where it would start a second job.

    Inside a distkeras Ray worker, or in one of several ranks started by
    mpirun/srun (`distkeras-run -np N`), every rank would start Ray workers of
    its own (and a Ray cluster of its own).

    Raises:
        RuntimeError: naming how to start the script instead.
    """
    if os.environ.get(GROUP_ENV):
        raise RuntimeError(
            f"{what} was called inside a distkeras Ray worker (a script run by "
            "`distkeras-run --backend ray`), but it starts Ray workers itself. Run the "
            "script as `python script.py`, or, under `distkeras-run`, train with "
            "`fit` (or `distkeras.distributed.initialize()`) instead of `run()`."
        )
    info = detect_launch()
    if info is not None and info.is_distributed:
        size = info.size if info.size is not None else "several"
        raise RuntimeError(
            f"{what} starts its own Ray workers, but this process is one of {size} ranks "
            f"started by {info.launcher} (`distkeras-run -np N` or `mpirun`): each rank "
            "would start a Ray cluster of its own. Run this script as `python script.py`; "
            "`run(num_workers=N)` starts the N workers itself."
        )
