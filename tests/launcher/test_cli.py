"""`distkeras-run` option parsing and the exact commands each backend would run.

Every row builds a plan against a fixed, fake machine (`Context`), so the
commands are the same on any host; the same rows are then printed through
`--dry-run` and read back with shlex.
"""

from __future__ import annotations

import shlex
import socket

import pytest

from launcher import Context, build_plan, format_plan, parse_args, ray_backend, slurm
from launcher import __main__ as cli_main
from launcher.cli import LauncherError, split_argv
from launcher.rankenv import devices_for, local_rank

PY = "/env/bin/python"
MPIRUN = "/env/bin/mpirun"
MPICH = "/opt/mpich/bin/mpiexec"
SRUN = "/usr/bin/srun"
SBATCH = "/usr/bin/sbatch"
WRAP = [PY, "-m", "launcher.rankenv", "--gpus-per-proc"]


def make_context(
    environ=None, *, euid=0, cores=4, tools=("srun", "sbatch"), mpi=True, blas_set=True
):
    """A fake machine. `blas_set`: the user exported OPENBLAS_THREAD_TIMEOUT already,
    so the launcher adds nothing (the rows below); False shows what it adds."""
    which = {"srun": SRUN, "sbatch": SBATCH}
    paths = {MPICH: MPICH, "/usr/bin/mpirun": "/usr/bin/mpirun"}
    base = {"PATH": "/usr/bin", "DISTKERAS_SEED": "7"}
    if blas_set:
        base["OPENBLAS_THREAD_TIMEOUT"] = "24"
    return Context(
        environ={**base, **(environ or {})},
        python=PY,
        euid=euid,
        cores=cores,
        which=lambda name: which.get(name) if name in tools else paths.get(name),
        find_mpirun=lambda: MPIRUN if mpi else None,
        has_module=lambda name: mpi,
        mpi_flavor=lambda path: "mpich" if "mpich" in path else "openmpi",
    )


@pytest.fixture
def script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "hosts.txt").write_text("# two nodes\nnode1 slots=2\nnode2:3\n")
    return "train.py"


# Who prints (rank 0's stdout) and whether the launcher's stdout is a terminal (not here).
OUT = {"DISTKERAS_RUN_OUTPUT": "rank0", "DISTKERAS_STDOUT_TTY": "0"}
LOCAL_ENV = {"OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1", **OUT}
X_OUT = ["-x", "DISTKERAS_RUN_OUTPUT", "-x", "DISTKERAS_SEED", "-x", "DISTKERAS_STDOUT_TTY"]
X_LOCAL = [*X_OUT, "-x", "OMP_NUM_THREADS", "-x", "PYTHONUNBUFFERED"]
X_REMOTE = [*X_OUT, "-x", "PYTHONUNBUFFERED"]
ROOT_MPI = [MPIRUN, "-np", "2", "--allow-run-as-root", "--bind-to", "none"]
SLURM_IN = {"SLURM_JOB_ID": "12", "SLURM_NTASKS": "6", "SLURM_CPUS_PER_TASK": "3"}

# (id, launcher argv, context kwargs, expected backend, argv, env)
CASES = [
    ("np1", "-np 1 train.py --epochs 1", {}, "local", [PY, "train.py", "--epochs", "1"], {}),
    ("np1-python", "-np 1 python train.py", {}, "local", [PY, "train.py"], {}),
    ("np1-path", "-np 1 /x/python3.12 train.py", {}, "local", ["/x/python3.12", "train.py"], {}),
    (
        "np1-gpus",
        "-np 1 --gpus-per-proc 2 train.py",
        {"environ": {"CUDA_VISIBLE_DEVICES": "4,5,6"}},
        "local",
        [PY, "train.py"],
        {"CUDA_VISIBLE_DEVICES": "4,5"},
    ),
    (
        "np2",
        "-np 2 python train.py -v",
        {},
        "local",
        ROOT_MPI + X_LOCAL + [PY, "train.py", "-v"],
        LOCAL_ENV,
    ),
    (
        "np2-nonroot",
        "-np 2 train.py",
        {"euid": 1000},
        "local",
        [MPIRUN, "-np", "2", "--bind-to", "none"] + X_LOCAL + [PY, "train.py"],
        LOCAL_ENV,
    ),
    (
        "oversubscribe",
        "-np 8 train.py",
        {},
        "local",
        [MPIRUN, "-np", "8", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
        + X_LOCAL
        + [PY, "train.py"],
        {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **OUT},
    ),
    (
        "user-omp-kept",
        "-np 2 train.py",
        {"environ": {"OMP_NUM_THREADS": "3"}},
        "local",
        ROOT_MPI + X_REMOTE + [PY, "train.py"],
        {"PYTHONUNBUFFERED": "1", **OUT},
    ),
    (
        "gpus",
        "-np 2 --gpus-per-proc 2 python train.py",
        {},
        "local",
        ROOT_MPI + X_LOCAL + WRAP + ["2", PY, "train.py"],
        LOCAL_ENV,
    ),
    (
        "env",
        "-np 2 --env A=1 --env HOME --env B=x=y train.py",
        {"environ": {"HOME": "/home/me"}},
        "local",
        ROOT_MPI
        + ["-x", "A", "-x", "B", *X_OUT, "-x", "HOME"]
        + ["-x", "OMP_NUM_THREADS", "-x", "PYTHONUNBUFFERED", PY, "train.py"],
        {"A": "1", "HOME": "/home/me", "B": "x=y", **LOCAL_ENV},
    ),
    (
        "module",
        "-np 2 python -m pkg.train --lr 0.1",
        {},
        "local",
        ROOT_MPI + X_LOCAL + [PY, "-m", "pkg.train", "--lr", "0.1"],
        LOCAL_ENV,
    ),
    (
        "interpreter-opts",
        "-np 1 python -u -X dev train.py",
        {},
        "local",
        [PY, "-u", "-X", "dev", "train.py"],
        {},
    ),
    ("dashdash", "-np 1 -- train.py -np 3", {}, "local", [PY, "train.py", "-np", "3"], {}),
    ("equals", "--num-proc=1 --backend=local train.py", {}, "local", [PY, "train.py"], {}),
    (
        "hosts",
        "-H node1:2,node2:2 python train.py",
        {},
        "mpi",
        [MPIRUN, "-np", "4", "--allow-run-as-root", "-H", "node1:2,node2:2", "--bind-to", "none"]
        + X_REMOTE
        + [PY, "train.py"],
        {"PYTHONUNBUFFERED": "1", **OUT},
    ),
    (
        "hostfile",
        "--hostfile hosts.txt train.py",
        {"euid": 1000},
        "mpi",
        [MPIRUN, "-np", "5", "--hostfile", "hosts.txt", "--bind-to", "none"]
        + X_REMOTE
        + [PY, "train.py"],
        {"PYTHONUNBUFFERED": "1", **OUT},
    ),
    (
        "mpi-no-hosts",
        "--backend mpi -np 2 train.py",
        {},
        "mpi",
        ROOT_MPI + X_LOCAL + [PY, "train.py"],
        LOCAL_ENV,
    ),
    (
        "mpich",
        f"-np 4 -H a:2,b:2 --mpirun {MPICH} --env A=1 train.py",
        {},
        "mpi",
        [MPICH, "-n", "4", "-hosts", "a:2,b:2", "-bind-to", "none"]
        + [
            "-genvlist",
            "A,DISTKERAS_RUN_OUTPUT,DISTKERAS_SEED,DISTKERAS_STDOUT_TTY,PYTHONUNBUFFERED",
            PY,
            "train.py",
        ],
        {"A": "1", "PYTHONUNBUFFERED": "1", **OUT},
    ),
    (
        "system-mpirun",
        "-np 2 --mpirun /usr/bin/mpirun train.py",
        {"euid": 1000},
        "local",
        ["/usr/bin/mpirun", "-np", "2", "--bind-to", "none"] + X_LOCAL + [PY, "train.py"],
        LOCAL_ENV,
    ),
    (
        "slurm-srun",
        "--backend slurm -np 4 --gpus-per-proc 1 train.py --x",
        {"environ": SLURM_IN},
        "slurm",
        [SRUN, "--mpi=pmix", "--ntasks=4", "--kill-on-bad-exit=1", "--cpus-per-task=3"]
        + ["--gpus-per-task=1"]
        + WRAP
        + ["1", PY, "train.py", "--x"],
        OUT,
    ),
    (
        "slurm-srun-ntasks",
        "--backend slurm python train.py",
        {"environ": SLURM_IN},
        "slurm",
        [SRUN, "--mpi=pmix", "--ntasks=6", "--kill-on-bad-exit=1", "--cpus-per-task=3"]
        + [PY, "train.py"],
        OUT,
    ),
    (
        "slurm-mpirun",
        "--backend slurm --slurm-launcher mpirun -np 4 train.py",
        {"environ": SLURM_IN},
        "slurm",
        [MPIRUN, "-np", "4", "--allow-run-as-root", "--bind-to", "none"]
        + X_REMOTE
        + [PY, "train.py"],
        {"PYTHONUNBUFFERED": "1", **OUT},
    ),
    (
        "slurm-auto-no-srun",
        "--backend slurm -np 2 --env A=1 train.py",
        {"environ": SLURM_IN, "tools": ()},
        "slurm",
        ROOT_MPI + ["-x", "A"] + X_REMOTE + [PY, "train.py"],
        {"A": "1", "PYTHONUNBUFFERED": "1", **OUT},
    ),
    ("sbatch", "--backend slurm -np 3 train.py", {}, "slurm", [SBATCH], {}),
    ("sbatch-wait", "--backend slurm -np 3 --wait train.py", {}, "slurm", [SBATCH, "--wait"], {}),
]


@pytest.mark.parametrize(
    ("argv", "expected_x"),
    [("-np 1 train.py", None), ("-np 2 train.py", ["-x", "OPENBLAS_THREAD_TIMEOUT"])],
)
def test_blas_spin_variable_is_set_for_the_job_when_unset(argv, expected_x, script):
    """OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, at load: the launcher sets it for
    every rank (and exports it to remote ones) unless the user set it."""
    from distkeras._blas import BLAS_ENV

    plan = build_plan(parse_args(shlex.split(argv)), make_context(blas_set=False))
    assert plan.env["OPENBLAS_THREAD_TIMEOUT"] == BLAS_ENV["OPENBLAS_THREAD_TIMEOUT"]
    if expected_x:
        i = plan.argv.index("OPENBLAS_THREAD_TIMEOUT")
        assert plan.argv[i - 1 : i + 1] == expected_x
    mine = make_context(environ={"OPENBLAS_THREAD_TIMEOUT": "12"}, blas_set=False)
    plan = build_plan(parse_args(["--env", "OPENBLAS_THREAD_TIMEOUT", *shlex.split(argv)]), mine)
    assert plan.env["OPENBLAS_THREAD_TIMEOUT"] == "12"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_plan_and_dry_run(case, script, capsys):
    _, argv, ctx_kwargs, backend, expected_argv, expected_env = case
    ctx = make_context(**ctx_kwargs)
    plan = build_plan(parse_args(shlex.split(argv)), ctx)
    assert plan.backend == backend
    assert plan.argv == expected_argv
    assert plan.env == expected_env
    assert plan.timeout is None

    # --dry-run prints `K=V ... argv` (plus the batch script for sbatch) and runs nothing.
    assert cli_main.main(["--dry-run", *shlex.split(argv)], context=ctx) == 0
    printed = capsys.readouterr().out
    first = printed.splitlines()[0]
    if plan.stdin is not None:
        first = first.split(" <<", 1)[0]
        assert plan.stdin in printed
    words = shlex.split(first)
    assert words[len(expected_env) :] == expected_argv
    assert dict(w.split("=", 1) for w in words[: len(expected_env)]) == expected_env


@pytest.mark.parametrize(
    "np,options,script_args,gpus,env,time_limit",
    [
        (3, [], [], None, {}, None),
        (
            8,
            ["--gpus-per-proc", "2", "--timeout", "5400", "--env", "A=x y"],
            ["--e", "1"],
            2,
            {"A": "x y"},
            5400.0,
        ),
    ],
)
def test_sbatch_script_is_filled(np, options, script_args, gpus, env, time_limit, script):
    argv = ["--backend", "slurm", "-np", str(np), *options, "python", script, *script_args]
    plan = build_plan(parse_args(argv), make_context())
    words = ["python", script, *script_args]
    expected = slurm.render_sbatch(np, words, gpus_per_task=gpus, time_limit=time_limit, env=env)
    assert plan.stdin == expected
    assert plan.timeout is None  # Slurm enforces it (--time)
    assert f"#SBATCH --ntasks={np}\n" in expected
    assert ("#SBATCH --gpus-per-task=2\n" in expected) == bool(gpus)
    assert ("--gpus-per-proc 2 python" in expected) == bool(gpus)
    assert ("#SBATCH --time=01:30:00\n" in expected) == bool(time_limit)
    assert ("export A='x y'\n" in expected) == bool(env)
    assert expected.rstrip().endswith(shlex.join(words))


def test_timeout_is_carried_by_every_backend(script):
    for argv in ("-np 1", "-np 2", "-H a:2", "--backend ray -np 2"):
        plan = build_plan(parse_args([*argv.split(), "--timeout", "90", script]), make_context())
        assert plan.timeout == 90.0
        assert format_plan(plan).startswith("# distkeras-run ends the job after 90 s")
    plan = build_plan(parse_args(["--timeout", "0", "-np", "2", script]), make_context())
    assert plan.timeout is None


def test_ray_dry_run(script, capsys):
    ctx = make_context({"DISTKERAS_BACKEND": "numpy"})
    argv = "--backend ray -np 4 --address ray://head:10001 --gpus-per-proc 1 --env A=1"
    plan = build_plan(parse_args([*argv.split(), "python", script, "--epochs", "2"]), ctx)
    assert plan.argv == []
    assert plan.ray_call == {
        "script": "train.py",
        "args": ["--epochs", "2"],
        "num_workers": 4,
        "address": "ray://head:10001",
        "env": {
            "DISTKERAS_SEED": "7",
            "DISTKERAS_BACKEND": "numpy",
            "A": "1",
            "DISTKERAS_GPUS_PER_PROC": "1",
        },
    }
    assert cli_main.main(["--dry-run", *argv.split(), script], context=ctx) == 0
    out = capsys.readouterr().out
    assert out.startswith("distkeras.distributed.ray.run_script(script='train.py'")
    assert "num_workers=4" in out and "address='ray://head:10001'" in out


ERRORS = [
    ("-np 0 train.py", {}, "-np must be >= 1. Received: -np=0"),
    ("-np two train.py", {}, "-np must be an integer"),
    ("-np 2 missing.py", {}, "Script not found. Received: script='missing.py'"),
    ("-np 2", {}, "No script given"),
    ("-np 2 python", {}, "No script given"),
    ("-np 2 python -m", {}, "`-m` needs a module name"),
    ("train.py", {}, "-np is required"),
    ("--bogus 1 train.py", {}, "unrecognized arguments: --bogus"),
    ("-np 2 train.py", {"mpi": False}, "pip install 'distkeras[mpi]'"),
    ("-np 2 -H a:1 --hostfile hosts.txt train.py", {}, "either -H/--hosts or --hostfile"),
    ("--backend local -H a:2 train.py", {}, "apply to --backend mpi"),
    ("--backend ray -np 2 -H a:2 train.py", {}, "apply to --backend mpi"),
    ("-np 2 --address ray://h:1 train.py", {}, "--address applies to --backend ray"),
    ("-np 2 --wait train.py", {}, "--wait applies to --backend slurm"),
    ("-np 2 --slurm-launcher srun train.py", {}, "--slurm-launcher applies"),
    ("--backend ray -np 2 --mpirun /x train.py", {}, "--mpirun does not apply"),
    ("-H a:x train.py", {}, "host[:slots]"),
    ("-np 2 --env 1A=2 train.py", {}, "--env expects KEY=VALUE"),
    ("-np 2 --env NOT_SET_ANYWHERE train.py", {}, "NOT_SET_ANYWHERE is not set"),
    ("-np 2 --timeout soon train.py", {}, "--timeout must be a number"),
    ("-np 2 --timeout -1 train.py", {}, "--timeout must be >= 0"),
    ("-np 2 --gpus-per-proc 0 train.py", {}, "--gpus-per-proc must be >= 1"),
    ("-np 2 --hostfile nope.txt --backend mpi train.py", {}, "Hostfile not found"),
    ("-np 2 --mpirun /no/such/mpirun train.py", {}, "mpirun not found"),
    ("--backend ray -np 2 python -m pkg", {}, "`-m` is not supported"),
    ("--backend ray train.py", {}, "--backend ray needs -np"),
    ("--backend slurm -np 2 train.py", {"tools": ()}, "sbatch not found"),
    ("--backend slurm -np 2 train.py", {"tools": (), "mpi_in": True}, "srun not found"),
]


@pytest.mark.parametrize("argv,ctx_kwargs,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(argv, ctx_kwargs, message, script, capsys):
    kwargs = dict(ctx_kwargs)
    if kwargs.pop("mpi_in", False):
        kwargs["environ"] = SLURM_IN
        kwargs["mpi"] = True
    ctx = make_context(**kwargs)
    if message == "srun not found":
        ctx.find_mpirun = lambda: None
    with pytest.raises(LauncherError) as info:
        build_plan(parse_args(shlex.split(argv)), ctx)
    assert message in str(info.value)
    assert cli_main.main(shlex.split(argv), context=ctx) == 2
    err = capsys.readouterr().err
    assert err.startswith("distkeras-run: error: ") and message in err


def test_missing_mpirun_names_the_extra(script):
    ctx = make_context()
    ctx.find_mpirun = lambda: None
    with pytest.raises(LauncherError, match=r"No mpirun found .* pip install 'distkeras\[mpi\]'"):
        build_plan(parse_args(["-np", "2", script]), ctx)
    plan = build_plan(parse_args(["--dry-run", "-np", "2", script]), ctx)
    assert plan.argv[0] == "mpirun"


def test_no_arguments_prints_usage(capsys):
    assert cli_main.main([]) == 2
    assert "usage: distkeras-run -np N" in capsys.readouterr().err
    assert cli_main.main(["--help"]) == 0
    assert "--gpus-per-proc" in capsys.readouterr().out


def test_split_argv_stops_at_the_script():
    own, command = split_argv(["-np", "2", "--env", "A=1", "-v", "python", "t.py", "-np", "9"])
    assert own == ["-np", "2", "--env", "A=1", "-v"]
    assert command == ["python", "t.py", "-np", "9"]
    assert split_argv(["--dry-run", "--", "-weird.py"]) == (["--dry-run"], ["-weird.py"])


@pytest.mark.parametrize(
    "rank,k,visible,expected",
    [
        (0, 1, None, "0"),
        (3, 2, None, "6,7"),
        (1, 2, "7,6,5,4", "5,4"),
        (1, 1, " 3 , 9 ", "9"),
        (5, 2, "2,3", "2,3"),  # already bound to this rank (srun --gpus-per-task)
    ],
)
def test_devices_for(rank, k, visible, expected):
    assert devices_for(rank, k, visible) == expected


def test_devices_for_errors_and_local_rank():
    with pytest.raises(ValueError, match="only 3 are visible"):
        devices_for(1, 2, "0,1,2")
    with pytest.raises(ValueError, match="gpus_per_proc=0"):
        devices_for(0, 0)
    assert local_rank({"OMPI_COMM_WORLD_LOCAL_RANK": "3", "SLURM_LOCALID": "1"}) == 3
    assert local_rank({"SLURM_LOCALID": "1"}) == 1
    assert local_rank({}) == 0


# --- the Ray backend: address checks, the missing extra, and the call itself ---------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_plan(script, *extra):
    argv = ["--backend", "ray", "-np", "2", *extra, script, "--epochs", "1"]
    return build_plan(parse_args(argv), make_context())


@pytest.mark.parametrize(
    "address,endpoint",
    [
        ("ray://head:10001", ("head", 10001)),
        ("ray://head", ("head", 10001)),
        ("10.0.0.1:6379", ("10.0.0.1", 6379)),
        ("http://head:8265", ("head", 8265)),
        ("auto", None),
        ("local", None),
    ],
)
def test_address_endpoint(address, endpoint):
    assert ray_backend.address_endpoint(address) == endpoint


def test_unreachable_ray_address(script, capsys):
    address = f"127.0.0.1:{_closed_port()}"
    plan = _ray_plan(script, "--address", address)
    with pytest.raises(LauncherError, match="Cannot reach the Ray cluster at"):
        ray_backend.run_ray(plan, runner=lambda *a: 0)
    argv = ["--backend", "ray", "-np", "2", "--address", address, script]
    assert cli_main.main(argv, context=make_context()) == 2
    assert f"Cannot reach the Ray cluster at '{address}'" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["ray", "distkeras.distributed.ray"])
def test_missing_ray_extra(missing, script, monkeypatch, capsys):
    real = ray_backend.importlib.import_module

    def fake_import(name, *args):
        if name == missing:
            raise ImportError(f"No module named {name!r}")
        if name == "distkeras.distributed.ray":
            return object()
        return real(name, *args)

    monkeypatch.setattr(ray_backend.importlib, "import_module", fake_import)
    with pytest.raises(LauncherError, match=r"pip install 'distkeras\[ray\]'"):
        ray_backend.load_runner()
    assert cli_main.main(["--backend", "ray", "-np", "2", script], context=make_context()) == 2
    assert "distkeras[ray]" in capsys.readouterr().err


def test_ray_runner_call_and_exit_codes(script):
    calls = []

    def runner(*args):
        calls.append(args)
        return 3

    plan = _ray_plan(script, "--env", "A=1")
    assert ray_backend.run_ray(plan, runner=runner) == 3
    assert calls == [("train.py", ["--epochs", "1"], 2, None, {"DISTKERAS_SEED": "7", "A": "1"})]
    assert ray_backend.run_ray(plan, runner=lambda *a: None) == 0

    def interrupted(*args):
        raise KeyboardInterrupt

    assert ray_backend.run_ray(plan, runner=interrupted) == 130


def test_ray_timeout(script):
    import time

    def slow(*args):
        time.sleep(30)
        return 0

    plan = _ray_plan(script, "--timeout", "0.2")
    assert ray_backend.run_ray(plan, runner=slow) == 124
