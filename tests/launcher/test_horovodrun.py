"""`distkeras-run horovodrun ...`: horovodrun's command line and flags, mapped onto the
launcher's MPI plans (on the fake machine of test_cli.py), refused with a clear error
where distkeras offers no counterpart, and one real 2-rank run of a Horovod-style script.
"""

from __future__ import annotations

import shlex

import pytest

from launcher import __main__ as cli_main
from launcher import build_plan, horovodrun, parse_args
from launcher.cli import LauncherError
from tests.launcher.test_cli import MPICH, MPIRUN, PY, make_context, script  # noqa: F401
from tests.launcher.test_run import launch, needs_mpi

HVD_SCRIPT = "tests/horovod/scripts/collectives.py"
# Every test runs in a folder holding train.py and hosts.txt (test_cli.py's fixture).
pytestmark = pytest.mark.usefixtures("script")


def plan_of(line: str, **ctx):
    return build_plan(parse_args(shlex.split(line)), make_context(**ctx))


def test_horovodrun_line_is_the_launchers_own_options():
    hvd = plan_of("horovodrun -np 4 -H node1:2,node2:2 --verbose python train.py --lr 1")
    own = plan_of("-np 4 -H node1:2,node2:2 -v python train.py --lr 1")
    assert hvd.argv == own.argv and hvd.env == own.env and hvd.backend == own.backend == "mpi"
    assert hvd.argv[:6] == [MPIRUN, "-np", "4", "--allow-run-as-root", "-H", "node1:2,node2:2"]
    assert hvd.argv[-4:] == [PY, "train.py", "--lr", "1"]
    opts = parse_args(shlex.split("horovodrun -np 4 --verbose python train.py"))
    assert opts.horovodrun and opts.verbose and opts.np == 4
    # Horovod spells the hostfile option with one dash too; launcher options may precede.
    hf = plan_of("--timeout 60 horovodrun -np 5 -hostfile hosts.txt python train.py")
    assert "--hostfile" in hf.argv and hf.timeout == 60 and hf.size == 5
    # Without -np the slots of -H give the count, as for the launcher itself.
    assert plan_of("horovodrun -H a:2,b:3 python train.py").size == 5


def _after(argv: list[str], flag: str, count: int = 1) -> list[str]:
    i = argv.index(flag)
    return argv[i + 1 : i + 1 + count]


def test_ssh_network_tcp_and_mpi_args_become_open_mpi_arguments():
    line = (
        "horovodrun -np 4 -H n1:2,n2:2 -p 2222 -i /keys/id --network-interface eth0 "
        "--network-interfaces eth1,eth0 --tcp --mpi-args='--map-by ppr:2:node' "
        "--start-timeout 30 --disable-cache python train.py"
    )
    plan = plan_of(line)
    argv = plan.argv
    rsh = [i for i, w in enumerate(argv) if w == "plm_rsh_args"]
    assert len(rsh) == 1 and argv[rsh[0] + 1] == "-p 2222 -i /keys/id"
    assert _after(argv, "btl_tcp_if_include") == ["eth0,eth1"]
    assert _after(argv, "pml") == ["ob1"]
    assert _after(argv, "btl") == ["tcp,self"]
    assert _after(argv, "--map-by") == ["ppr:2:node"]
    assert plan.env["NCCL_SOCKET_IFNAME"] == "eth0,eth1"
    assert "NCCL_SOCKET_IFNAME" in _xs(argv)  # exported to the ranks
    assert argv.index("--map-by") < argv.index(PY)  # mpirun's arguments, not the script's
    # The same flags given to distkeras-run directly give the same command.
    direct = plan_of(line.replace("horovodrun ", ""))
    assert direct.argv == argv and direct.env == plan.env


def _xs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, w in enumerate(argv) if w == "-x"]


def test_binding_args_replace_bind_to_none_and_mpi_selects_mpi():
    plan = plan_of("horovodrun -np 2 --mpi --binding-args='--bind-to core --map-by slot' train.py")
    assert plan.backend == "mpi"
    assert _after(plan.argv, "--bind-to") == ["core"] and "none" not in plan.argv
    assert _after(plan.argv, "--map-by") == ["slot"]


def test_mpich_spelling():
    plan = plan_of(f"--mpirun {MPICH} horovodrun -np 2 -p 2222 --network-interface ib0 train.py")
    assert _after(plan.argv, "-bootstrap", 3) == ["ssh", "-bootstrap-exec-args", "-p 2222"]
    assert _after(plan.argv, "-iface") == ["ib0"]
    with pytest.raises(LauncherError, match=r"--tcp .*MPICH.*Received: --tcp"):
        plan_of(f"--mpirun {MPICH} horovodrun -np 2 --tcp train.py")


def test_stall_check_flags_set_distkeras_deadlines_on_every_rank():
    plan = plan_of(
        "horovodrun -np 2 --stall-check-warning-time-seconds 45 "
        "--stall-check-shutdown-time-seconds 600 train.py"
    )
    assert plan.env[horovodrun.STALL_ENV] == "45"
    assert plan.env[horovodrun.TIMEOUT_ENV] == "600"
    assert {horovodrun.STALL_ENV, horovodrun.TIMEOUT_ENV} <= set(_xs(plan.argv))
    off = plan_of("horovodrun -np 2 --no-stall-check train.py")
    assert off.env[horovodrun.STALL_ENV] == "0" and horovodrun.TIMEOUT_ENV not in off.env
    # On Ray workers too (the variables travel with the job's environment).
    ray = plan_of("--backend ray horovodrun -np 2 --no-stall-check train.py")
    assert ray.ray_call["env"][horovodrun.STALL_ENV] == "0"


def test_output_filename_is_output_dir():
    opts = parse_args(shlex.split("horovodrun -np 2 --output-filename logs train.py"))
    assert opts.output_dir == "logs"
    with pytest.raises(LauncherError, match="Received: --output-filename='b'"):
        parse_args(shlex.split("--output-dir a horovodrun -np 2 --output-filename b train.py"))


@pytest.mark.parametrize("name", sorted(horovodrun.REFUSED))
def test_every_flag_without_a_counterpart_is_refused_by_name(name):
    nargs, _ = horovodrun.REFUSED[name]
    values = ["7"] * nargs
    for line in (["horovodrun", "-np", "2", name, *values], ["-np", "2", name, *values]):
        with pytest.raises(LauncherError) as err:
            parse_args([*line, "python", "train.py"])
        message = str(err.value)
        assert f"horovodrun's {name} is not offered" in message
        received = f"{name}={' '.join(values)}" if nargs else name
        assert message.endswith(f"Received: {received}"), message


def test_refused_flag_with_equals_and_gloo_points_to_ray():
    with pytest.raises(LauncherError, match=r"Received: --log-level=DEBUG$"):
        parse_args(shlex.split("horovodrun -np 2 --log-level=DEBUG python train.py"))
    with pytest.raises(LauncherError, match=r"--backend ray"):
        parse_args(shlex.split("horovodrun -np 2 --gloo python train.py"))


@pytest.mark.parametrize(
    "line,match",
    [
        ("-np 2 horovodrun -np 3 train.py", r"-np is given before horovodrun and after it"),
        ("-H a:1 horovodrun -H b:1 train.py", r"Received: --hosts='a:1' and --hosts='b:1'"),
        ("--backend ray horovodrun -np 2 --mpi train.py", r"Received: --backend=ray"),
        ("--backend ray horovodrun -np 2 -p 22 train.py", r"--ssh-port applies to the MPI"),
        ("--backend slurm -np 2 --tcp train.py", r"--tcp applies to the MPI"),
        ("horovodrun -np 2 -p 0 train.py", r"Received: --ssh-port=0"),
        ("horovodrun -np 2 --start-timeout x train.py", r"Received: --start-timeout='x'"),
        ("horovodrun -np 2 --mpi-args='a \"b' train.py", r"Received: --mpi-args="),
        ("horovodrun -np 2 --network-interface , train.py", r"names no interface"),
        ("horovodrun -np 2 --backend ray train.py", r"unrecognized arguments: --backend"),
    ],
)
def test_bad_combinations_fail_before_anything_starts(line, match):
    with pytest.raises(LauncherError, match=match):
        plan_of(line)


def test_same_value_on_both_sides_is_fine():
    assert plan_of("-np 2 horovodrun -np 2 train.py").size == 2


@needs_mpi
def test_horovod_script_through_the_horovodrun_form(tmp_path):
    """A Horovod-style script (collectives, join, DistributedOptimizer: every rank checks
    itself) started by a horovodrun command line on 2 local ranks; every rank's output
    lands in --output-filename's folder."""
    logs = tmp_path / "logs"
    proc = launch(
        "horovodrun", "-np", "2", "-H", "localhost:2", "--output-filename", str(logs),
        "--stall-check-warning-time-seconds", "40", "python", HVD_SCRIPT,
        timeout=240, OMP_NUM_THREADS="1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 ranks on hosts localhost:2" in proc.stderr, proc.stderr
    for rank in range(2):
        text = (logs / f"rank.{rank}.log").read_text()
        assert f"ALL OK rank {rank}" in text, text
    assert "ALL OK rank 0" in proc.stdout and "ALL OK rank 1" not in proc.stdout


def test_version_and_help_in_horovodrun_spelling(capsys):
    # horovodrun's -v is --version (distkeras-run's own -v is --verbose).
    assert cli_main.main(["horovodrun", "-v"]) == 0
    assert capsys.readouterr().out.startswith("distkeras-run ")
    assert cli_main.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "horovodrun flags" in text and "--ssh-port" in text and "horovodrun -np 4" in text
