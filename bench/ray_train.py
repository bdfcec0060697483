"""What Ray Train's machinery costs: the distributed MLP bench through three drivers.

    python bench/ray_train.py [--steps 30] [--repeats 5] [-n 2]

The model, data and batch of bench/distributed.py (784-512-512-10 MLP, Adam,
global batch 256, random data, one whole-epoch `fit` of `--steps` global
batches per timed call, best of `--repeats` round-robin rounds), trained on
`-n` workers x 1 thread by:

- `DistkerasTrainer` (Ray Train V2 with distkeras's backend), each `fit`
  with a `ReportCallback` (one `ray.train.report` per epoch, as users run it),
  and, interleaved in the same workers, without it (the driver alone);
- `distkeras.distributed.ray.run` (distkeras's own Ray driver);
- MPI (`mpirun -n 2`), the reference.

Each driver runs in its own process (a fresh local Ray cluster for each Ray
driver), one after the other. Printed: training samples/s in the workers'
steady state, the wall time of each whole job (interpreter start, Ray
cluster, worker start, the same warm-up and timed fits, shutdown), and the
ratios to MPI. Peers that are missing (mpirun/mpi4py, ray[train]) are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_rates, optional, pin_threads, ray_run  # noqa: E402
from distributed import _fit_call, _random_data, _run_child  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
TRAINER = "DistkerasTrainer (Ray Train)"
RAY_RUN = "distributed.ray.run"
MPI = "MPI (mpirun)"


def _rates(config: dict, callbacks: dict[str, list | None]) -> dict[str, float]:
    """Best samples/s of whole-epoch fits on this worker (every worker calls it).

    Args:
        config: The bench's settings.
        callbacks: {label: the fit's callbacks}: one contender each, one model
            for all, round-robin.
    """
    sys.path.insert(0, config["bench_dir"])
    pin_threads(1)
    from mlp import distkeras_model

    x, y = _random_data(config["global_batch"] * config["steps"])
    model = distkeras_model()
    calls = {label: _fit_call(model, x, y, callbacks=cbs) for label, cbs in callbacks.items()}
    return interleaved_rates(calls, config["repeats"], warmup=1, lead_in=True)


def _ray_run_worker(config: dict) -> dict:
    """On each `distributed.ray.run` actor."""
    import distkeras.distributed as dist

    comm = dist.get_communicator()
    label = f"{RAY_RUN} {comm.size} workers x 1 thread"
    return comm.broadcast({"r": _rates(config, {label: None})}, root=0)["r"]


def _trainer_loop(config: dict) -> None:
    """On each Ray Train worker: the same fits, each reporting its epoch to Ray Train."""
    sys.path.insert(0, config["bench_dir"])
    import distkeras.distributed as dist
    from distkeras.distributed.ray.train import ReportCallback

    comm = dist.get_communicator()
    label = f"{TRAINER} {comm.size} workers x 1 thread"
    # With a report per epoch (how it is used) and without (the driver alone).
    rates = _rates(config, {label: [ReportCallback(["loss"])], f"{label}, no report": None})
    rates = comm.broadcast({"r": rates}, root=0)["r"]
    if comm.rank == 0:
        with open(config["out"], "w") as f:
            json.dump(rates, f)


def _config(args) -> dict:
    from distributed import GLOBAL_BATCH

    return {
        "steps": args.steps,
        "repeats": args.repeats,
        "global_batch": GLOBAL_BATCH,
        "bench_dir": BENCH_DIR,
    }


def role_ray_run(args) -> dict:
    return ray_run(_ray_run_worker, args.n, _config(args))


def role_trainer(args) -> dict:
    if optional("ray") is None or optional("ray.train") is None:
        return {}
    import ray
    from ray.train import RunConfig, ScalingConfig

    from distkeras.distributed.ray.train import DistkerasTrainer

    ray.init(num_cpus=args.n + 1, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as d:
        config = {**_config(args), "out": os.path.join(d, "rates.json")}
        try:
            trainer = DistkerasTrainer(
                _trainer_loop,
                train_loop_config=config,
                scaling_config=ScalingConfig(num_workers=args.n),
                run_config=RunConfig(name="bench", storage_path=os.path.join(d, "runs")),
            )
            trainer.fit()
        finally:
            ray.shutdown()
        with open(config["out"]) as f:
            return json.load(f)


def role_mpi(args) -> dict:
    import distkeras.distributed as dist

    comm = dist.initialize()
    rates = _rates(_config(args), {f"{MPI} {comm.size} ranks x 1 thread": None})
    rates = comm.broadcast({"r": rates}, root=0)["r"]
    return rates if comm.rank == 0 else {}


def _child(role: str, args, out: str) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--role", role, "--out", out]
    return cmd + ["--steps", str(args.steps), "--repeats", str(args.repeats), "-n", str(args.n)]


def drive(args) -> int:
    rates: dict[str, float] = {}
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        jobs = []
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if mpirun and optional("mpi4py") is not None:
            cmd = [mpirun, "-n", str(args.n), "--oversubscribe", "--bind-to", "none"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-run-as-root")
            cmd += ["-x", "OMP_NUM_THREADS", "-x", "OPENBLAS_NUM_THREADS"]
            jobs.append((MPI, cmd, "mpi"))
        elif mpirun is None:
            print("[peer missing] mpirun: pip install 'distkeras[mpi]'")
        if optional("ray") is not None:
            jobs += [(RAY_RUN, [], "ray-run"), (TRAINER, [], "trainer")]
        for title, prefix, role in jobs:
            out = os.path.join(d, f"{role}.json")
            t0 = time.perf_counter()
            got = _run_child(prefix + _child(role, args, out), 1, title, out)
            if got:
                walls[title] = time.perf_counter() - t0
                rates.update(got)
    _report(rates, walls, args)
    return 0


def _report(rates: dict[str, float], walls: dict[str, float], args) -> None:
    from distributed import GLOBAL_BATCH

    print(f"\n=== Ray Train vs distributed.ray.run vs MPI: {args.n} workers x 1 thread ===")
    print(
        f"MLP 784-512-512-10, Adam, global batch {GLOBAL_BATCH}, {args.steps} steps per fit, "
        f"best of {args.repeats} rounds"
    )
    mpi = next((v for k, v in rates.items() if k.startswith(MPI)), None)
    mpi_wall = walls.get(MPI)
    print(f"  {'driver':60s}{'samples/s':>11s}{'/ MPI':>8s}{'job wall s':>12s}{'/ MPI':>8s}")
    for title in (TRAINER, RAY_RUN, MPI):
        wall = walls.get(title)
        for label, rate in ((k, v) for k, v in rates.items() if k.startswith(title)):
            r_ratio = f"{rate / mpi:7.2f}x" if mpi else f"{'-':>8s}"
            w_ratio = f"{wall / mpi_wall:7.2f}x" if wall and mpi_wall else f"{'-':>8s}"
            print(f"  {label:60s}{rate:11.0f}{r_ratio}{wall or 0:12.1f}{w_ratio}")
    trainer = next((v for k, v in rates.items() if k.startswith(TRAINER)), None)
    ray_run = next((v for k, v in rates.items() if k.startswith(RAY_RUN)), None)
    if trainer and ray_run:
        print(f"  DistkerasTrainer / distributed.ray.run samples/s  {trainer / ray_run:6.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2, help="workers / ranks (default 2)")
    ap.add_argument("--steps", type=int, default=30, help="global batches per timed fit")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (best kept)")
    ap.add_argument("--role", choices=("mpi", "ray-run", "trainer"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role is None:
        return drive(args)
    roles = {"mpi": role_mpi, "ray-run": role_ray_run, "trainer": role_trainer}
    result = roles[args.role](args)
    if result:
        with open(args.out, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
