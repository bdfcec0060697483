"""A private base folder for Open MPI's session directory, one per launch.

Open MPI 5's mpirun (PRRTE) keeps its session directory in
`$TMPDIR/ompi.<mpirun's pid>`, with PMIx rendezvous files named after that
pid. An mpirun killed with SIGKILL cannot remove it. Linux reuses pids (after
32,768 by default), and a later mpirun that gets the same pid finds the old
rendezvous files: PMIx refuses to start ("The PMIx server's listener thread
failed to start") and mpirun exits at once with code 213, before any rank runs.
A machine that has ever seen a killed mpirun (a scheduler's kill -9, a test
timeout) therefore fails a launch now and then, at random.

`distkeras-run` points mpirun's local session base (`prte_local_tmpdir_base`)
at a fresh folder of its own, so no stale directory can be in the way, and
removes the folder when the job ends (the watchdog does, when the launcher is
killed). A base the user chose (any `*prte_tmpdir_base` or
`*prte_local_tmpdir_base` variable) is left alone. The ranks keep `$TMPDIR`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping

SESSION_BASE_ENV = "PRTE_MCA_prte_local_tmpdir_base"
_USER_KEYS = ("prte_tmpdir_base", "prte_local_tmpdir_base")


def wants_private_base(mpi: str | None, environ: Mapping[str, str]) -> bool:
    """Whether a job started by an mpirun of flavor `mpi` gets a private session base.

    Args:
        mpi: The flavor of the mpirun that starts the job ('openmpi' or
            'mpich'), or None when no mpirun does.
        environ: The job's environment; a session base set there is kept.
    """
    if mpi != "openmpi":
        return False
    return not any(key.endswith(_USER_KEYS) for key in environ)


def make_private_base() -> str:
    """Creates the launch's session base folder (mode 0700) and returns its path."""
    return tempfile.mkdtemp(prefix="distkeras-mpi-")


def remove_base(path: str | None) -> None:
    """Removes a session base folder and what is left in it (no error if it is gone)."""
    if path:
        shutil.rmtree(path, ignore_errors=True)
