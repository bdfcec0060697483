"""Prints `rank <r> session <PMIX_SERVER_TMPDIR>` (where mpirun keeps this job's
session directory), after a barrier so that every rank is up."""

import os

from mpi4py import MPI

comm = MPI.COMM_WORLD
comm.Barrier()
print(f"rank {comm.Get_rank()} session {os.environ.get('PMIX_SERVER_TMPDIR')}", flush=True)
