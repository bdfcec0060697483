"""Helpers shared by the bench scripts: contender processes, timing, peer imports."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def pin_threads(n: int) -> None:
    """Caps BLAS/OpenMP threads (call before importing numpy or torch).

    For benches of a fixed thread count (the distributed ranks, the file
    benches). It sets nothing else: the step benches run each contender as a
    user's script, NumPy first and with the environment it was given.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def best_rate(
    step: Callable[[], None],
    samples_per_step: int,
    steps: int = 30,
    repeats: int = 5,
    warmup: int = 5,
) -> float:
    """Median samples/s over `repeats` runs of `steps` calls after `warmup` calls."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(samples_per_step * steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def interleaved_rates(
    contenders: dict[str, tuple[Callable[[], None], int]],
    rounds: int = 7,
    warmup: int = 3,
    settle: float = 0.5,
    prepare: Callable[[], None] | None = None,
    lead_in: bool = False,
) -> dict[str, float]:
    """Best samples/s of each contender over `rounds`, running them round-robin.

    `contenders` maps a name to (call, samples per call). Interleaving spreads the
    noise of a shared machine evenly; the best round is the least disturbed one.
    Before each timed call the machine idles for `settle` seconds: the thread
    pools of the previous contender (OpenBLAS workers, PyTorch's OpenMP team)
    spin-wait for a while after their last job and would otherwise steal cores
    from the next contender, whichever framework it is. `prepare`, when given,
    runs (untimed) before each timed call: `os.sync` for the file benchmarks,
    so that no contender's fsync pays for another's unwritten pages.

    `lead_in=True` runs each call once more, untimed, between the pause and
    the timed call, so a training step is timed in its steady state. Right
    after an idle pause the kernel's scheduler has forgotten how busy the
    threads were and stacks them on one core for a few tens of milliseconds
    (distkeras's LSTM step took 38 and 25 ms in the first two steps after a
    0.5 s pause, 15 ms after; PyTorch's 12 and 11 ms, 10.7 ms after): a cost
    a training loop pays once, not every ten steps.
    """
    for call, _ in contenders.values():
        for _ in range(warmup):
            call()
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, (call, samples) in contenders.items():
            if prepare is not None:
                prepare()
            time.sleep(settle)
            if lead_in:
                call()
            t0 = time.perf_counter()
            call()
            best[name] = max(best[name], samples / (time.perf_counter() - t0))
    return best


def import_time(module: str, env: dict | None = None, runs: int = 5) -> float:
    """Median wall time of `python -c 'import module'` minus a bare interpreter start."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return time.perf_counter() - t0

    base = statistics.median(run("pass") for _ in range(runs))
    return statistics.median(run(f"import {module}") for _ in range(runs)) - base


def optional(name: str):
    """Imports a peer, or prints that it is missing and returns None."""
    try:
        return __import__(name)
    except ImportError as e:
        print(f"[peer missing] {name}: {e}")
        return None


# ------------------------------------------------------ one process per contender
# The step benches (mlp, cnn, lstm) run each contender in its own interpreter,
# started like a user's script: `python bench/x.py --worker NAME`, whose first
# import is NumPy, with the environment the bench was started with. The parent
# keeps the round-robin: it tells one child at a time to time a call (after
# `settle` seconds of idling, so the previous child's spinning threads are
# asleep) and collects the rate the child prints. Idle children block reading
# their stdin.

MARK = "@@bench "
# Variants of a distkeras contender, as `NAME [variant]`. "before" reproduces
# main's code before the re-arm (a NumPy-first script kept OpenBLAS's default
# spin); "exported" sets the variable before NumPy loads, as importing
# distkeras first, `distkeras-run` or a start-up (.pth) hook would; "blas1"
# keeps OpenBLAS on one thread (no workers to spin, GEMMs on one core, the
# distkeras pool's loops still threaded): the other way to never run beside
# spinning workers; "numpy-loops" runs the LSTM's time loops as NumPy calls
# instead of the compiled ones (DISTKERAS_NATIVE=0), as main did before them.
VARIANTS = {
    "before": {"DISTKERAS_BLAS_TUNE": "0"},
    "exported": {"OPENBLAS_THREAD_TIMEOUT": "20"},
    "blas1": {"OPENBLAS_NUM_THREADS": "1"},
    "numpy-loops": {"DISTKERAS_NATIVE": "0"},
}
_CLEARED = ("OPENBLAS_THREAD_TIMEOUT", "DISTKERAS_BLAS_TUNE", "DISTKERAS_NATIVE")


def base_name(name: str) -> str:
    """The contender without variant or replica: "distkeras fit [before] #2" -> "distkeras fit"."""
    return replica_of(name).split(" [", 1)[0]


def replica_of(name: str) -> str:
    """The contender a replica process runs: "pytorch eager #2" -> "pytorch eager"."""
    head, sep, tail = name.rpartition(" #")
    return head if sep and tail.isdigit() else name


def with_replicas(contenders: dict[str, dict[str, str]], n: int) -> dict[str, dict[str, str]]:
    """Each contender `n` times, as `name #i`: one process each (`--processes`)."""
    if n <= 1:
        return contenders
    return {f"{name} #{i}": env for i in range(1, n + 1) for name, env in contenders.items()}


def merge_replicas(rates: dict[str, list[float]]) -> dict[str, list[float]]:
    """The rounds of every replica of a contender, under its name (replica by replica)."""
    out: dict[str, list[float]] = {}
    for name, values in rates.items():
        out.setdefault(replica_of(name), []).extend(values)
    return out


def with_variants(names: list[str], variants: list[str]) -> dict[str, dict[str, str]]:
    """Each name, plus `name [v]` for each variant v of the distkeras names, with their env."""
    out: dict[str, dict[str, str]] = {}
    for name in names:
        out[name] = {}
        if name.startswith("distkeras"):
            for v in variants:
                out[f"{name} [{v}]"] = VARIANTS[v]
    return out


def serve(build: Callable[[str], tuple[Callable[[], None], int]], name: str, warmup: int) -> None:
    """Child side: builds contender `name`, warms it up, then times one call per "run" line.

    `build(name)` returns (call, samples per call), or raises ImportError for a
    missing peer. Each "run" runs the call once untimed (the lead-in: right
    after the parent's pause the scheduler stacks the threads on one core for
    a few tens of milliseconds, a cost a training loop pays once) and once
    timed, and prints the samples/s.
    """
    try:
        call, samples = build(base_name(name))
    except ImportError as e:
        print(MARK + json.dumps({"missing": str(e)}), flush=True)
        return
    for _ in range(warmup):
        call()
    print(MARK + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        call()
        t0 = time.perf_counter()
        call()
        print(MARK + json.dumps({"rate": samples / (time.perf_counter() - t0)}), flush=True)


def _reply(proc: subprocess.Popen) -> dict:
    for line in proc.stdout:
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"contender process ended (exit {proc.wait()})")


def process_rates(
    script: str,
    contenders: dict[str, dict[str, str]],
    rounds: int = 7,
    settle: float = 0.5,
) -> dict[str, list[float]]:
    """samples/s of each contender in every round, each in its own process, round-robin.

    Args:
        script: The bench file; run as `python script <its argv> --worker NAME`.
        contenders: Name -> environment variables added for that child only
            (a variant); every child gets this process's environment less
            OPENBLAS_THREAD_TIMEOUT and DISTKERAS_BLAS_TUNE, as a user's shell.
        rounds: Timed calls per contender.
        settle: Idle seconds before each timed call.

    Returns:
        Name -> the rates of its rounds (missing peers are left out).
    """
    base = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    for k in _CLEARED:
        if k in os.environ:
            print(f"[note] {k} is set here; the contenders run without it")
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, extra in contenders.items():  # one at a time: each warms up alone
            proc = subprocess.Popen(
                [sys.executable, script, *sys.argv[1:], "--worker", name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**base, **extra},
            )
            reply = _reply(proc)
            if "missing" in reply:
                print(f"[peer missing] {name}: {reply['missing']}")
                proc.wait()
                continue
            procs[name] = proc
        rates: dict[str, list[float]] = {name: [] for name in procs}
        for r in range(rounds):
            for name, proc in procs.items():
                time.sleep(settle)
                proc.stdin.write("run\n")
                proc.stdin.flush()
                rates[name].append(_reply(proc)["rate"])
            got = ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items())
            print(f"[round {r + 1}/{rounds}] {got}", file=sys.stderr, flush=True)
        return rates
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait(timeout=60)


def report(rates: dict[str, list[float]], peers: tuple[str, ...]) -> None:
    """Prints best and median samples/s, then each distkeras variant's ratios to `peers`.

    The distkeras figure of a variant is the best of its fit and train_on_batch
    (each ratio by best rounds, then by medians).
    """
    print(f"{'':40s}{'best':>10s}{'median':>10s}   samples/s")
    for k, v in rates.items():
        print(f"{k:40s}{max(v):10.0f}{statistics.median(v):10.0f}")
    groups: dict[str, dict[str, list[float]]] = {}
    for k, v in rates.items():
        if k.startswith("distkeras"):
            variant = k.split(" [", 1)[1].rstrip("]") if " [" in k else "after"
            groups.setdefault(variant, {})[k] = v
    print("\nratios, best distkeras (fit or train_on_batch): by best rounds / by medians")
    for variant, members in groups.items():
        best = max(max(v) for v in members.values())
        med = max(statistics.median(v) for v in members.values())
        for peer in peers:
            if peer in rates:
                r1 = best / max(rates[peer])
                r2 = med / statistics.median(rates[peer])
                label = f"distkeras [{variant}] / {peer}"
                print(f"  {label:44s}{r1:6.2f}x {r2:6.2f}x")
    if "after" in groups and "before" in groups:
        a = max(max(v) for v in groups["after"].values())
        b = max(max(v) for v in groups["before"].values())
        am = max(statistics.median(v) for v in groups["after"].values())
        bm = max(statistics.median(v) for v in groups["before"].values())
        print(f"  distkeras after / before{'':20s}{a / b:6.2f}x {am / bm:6.2f}x")


def torch_threads() -> int:
    """The threads NumPy's OpenBLAS uses by default (this process's cores), for PyTorch too."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def ray_run(worker: Callable[[dict], Any], num_workers: int, config: dict) -> Any:
    """`distkeras.distributed.ray.run` on a local Ray cluster started (and shut down) here.

    Returns:
        What `run` returns (each worker's result, or rank 0's), or {} without Ray.
    """
    ray = optional("ray")
    if ray is None:
        return {}
    from distkeras.distributed.ray import run  # noqa: PLC0415

    ray.init(num_cpus=num_workers, include_dashboard=False, log_to_driver=False)
    try:
        return run(worker, num_workers=num_workers, config=config)
    finally:
        ray.shutdown()


# ------------------------------------------------------------ the step benches
def repeat(step: Callable[[], None], steps: int) -> Callable[[], None]:
    """A call that runs `step` `steps` times."""

    def run() -> None:
        for _ in range(steps):
            step()

    return run


def torch_adam_step(torch: Any, net: Any, lossf: Any, xt: Any, yt: Any) -> Callable[[], None]:
    """One PyTorch training step of `net` on (xt, yt): Adam (lr 1e-3, eps 1e-7, as Keras)."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), yt)
        loss.backward()
        opt.step()

    return step


def framework_contender(
    name: str,
    x: Any,
    y: Any,
    steps: int,
    batch: int,
    distkeras_model: Callable[[], Any],
    torch_step: Callable[[Any, Any, Any], Callable[[], None]],
    keras_model: Callable[[Any], Any],
    **fit_kwargs: Any,
) -> tuple[Callable[[], None], int]:
    """A step bench's distkeras, PyTorch or Keras 3 contender as (call, samples per call).

    Args:
        name: "distkeras train_on_batch", "distkeras fit", "pytorch eager",
            "keras3[torch] train_on_batch" or "keras3[torch] fit".
        x: One batch of inputs.
        y: Its targets.
        steps: Batches per timed call (`fit` runs one epoch of `steps` batches).
        batch: The batch size.
        distkeras_model: Builds the compiled distkeras model.
        torch_step: `(torch, x, y)` -> one PyTorch training step.
        keras_model: `(keras)` -> the compiled Keras 3 model.
        **fit_kwargs: Further arguments of both frameworks' `fit` calls.
    """
    samples = batch * steps
    if name == "pytorch eager":
        import torch  # noqa: PLC0415

        torch.set_num_threads(torch_threads())
        return repeat(torch_step(torch, x, y), steps), samples
    if name.startswith("distkeras"):
        model = distkeras_model()
    else:
        os.environ["KERAS_BACKEND"] = "torch"
        import keras  # noqa: PLC0415

        model = keras_model(keras)
    if name.endswith("train_on_batch"):
        return repeat(lambda: model.train_on_batch(x, y), steps), samples
    import numpy as np  # noqa: PLC0415 - after pin_threads in the benches that call it

    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
    return lambda: model.fit(xs, ys, batch_size=batch, epochs=1, verbose=0, **fit_kwargs), samples


def step_bench_main(
    script: str,
    build: Callable[[str, argparse.Namespace], tuple[Callable[[], None], int]],
    names: Sequence[str],
    keras_names: Sequence[str],
    title: str,
    peers: tuple[str, ...],
    steps: int = 10,
    rounds: int = 7,
    warmup: int = 3,
    after: Callable[[], None] | None = None,
) -> None:
    """The command line of a step bench (mlp, cnn, lstm): parent or `--worker` child.

    Args:
        script: The bench file (its `__file__`), run again for each contender.
        build: `(name, args)` -> contender `name` as (call, samples per call).
        names: The contenders.
        keras_names: The Keras 3 contenders (left out with `--no-keras`).
        title: What was benched, printed before the table with the thread count.
        peers: The contenders the distkeras variants are divided by.
        steps: Default of `--steps`.
        rounds: Default of `--rounds`.
        warmup: Untimed calls in each child before its first round.
        after: Runs after the report (in the parent).
    """
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument(
        "--variants", default="before", help="of distkeras: before,exported,blas1,numpy-loops or ''"
    )
    ap.add_argument("--no-keras", action="store_true", help="leave Keras 3 out")
    ap.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes per contender (a framework's speed can differ by a quarter from one "
        "process start to the next on this VM); figures pool the rounds of all of them",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        serve(lambda name: build(name, args), args.worker, warmup=warmup)
        return
    names = list(names) if args.no_keras else [*names, *keras_names]
    variants = [v for v in args.variants.split(",") if v]
    contenders = with_replicas(with_variants(names, variants), args.processes)
    rates = merge_replicas(process_rates(script, contenders, rounds=args.rounds))
    per = "one process" if args.processes <= 1 else f"{args.processes} processes"
    print(f"\n{title}, {torch_threads()} threads (NumPy first, {per} per contender)")
    report(rates, peers)
    if after is not None:
        after()
