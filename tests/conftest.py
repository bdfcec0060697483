"""Settings every test shares.

Each test's `mpirun` keeps its session directory under a fresh base folder
(`PRTE_MCA_prte_local_tmpdir_base`), as `distkeras-run` does for its jobs
(`launcher.sessiondir`): a stale `ompi.<pid>` directory that an mpirun killed
earlier in the run left in `$TMPDIR` would otherwise make a later mpirun with
the same pid exit with code 213 before any rank runs. Tests of the launcher
drop the variable (`tests.launcher.test_run.launcher_env`), so the launcher
chooses its own base there.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

from launcher.sessiondir import SESSION_BASE_ENV


@pytest.fixture(autouse=True)
def _mpirun_session_base(monkeypatch):
    base = tempfile.mkdtemp(prefix="distkeras-test-mpi-")
    monkeypatch.setenv(SESSION_BASE_ENV, base)
    yield
    shutil.rmtree(base, ignore_errors=True)
