"""Exits with status argv[2] on rank argv[1]; the other ranks wait in the next collective."""

import sys

import distkeras.distributed as dist

comm = dist.initialize()
assert comm.backend == "ray", comm.backend
comm.barrier()
if comm.rank == int(sys.argv[1]):
    sys.exit(int(sys.argv[2]))
comm.barrier()
