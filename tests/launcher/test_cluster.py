"""cluster/ files and the Dockerfile: each parses, and they agree with each other,
with the launcher and with the repository (image names, commands, replica
counts, resources, users and paths).

The images are built and run by cluster/docker/check.sh (see cluster/README.md);
these tests check statically what that script does not run (the GPU image).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from launcher import parse_args, parse_command, slurm
from tests.launcher import miniyaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
YAML_FILES = ["ray/cluster.yaml", "k8s/mpijob.yaml", "k8s/rayjob.yaml"]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
VERSION = re.search(r'^version = "([^"]+)"$', PYPROJECT, re.M).group(1)


def load_yaml(name: str):
    return miniyaml.load((CLUSTER / name).read_text())


# --- the Dockerfiles -----------------------------------------------------------------------

DOCKERFILES = {"cpu": "Dockerfile", "gpu": "Dockerfile.gpu"}  # one stage each


def dockerfile(name: str = "Dockerfile") -> list[tuple[str, str]]:
    """(instruction, arguments) per logical line, continuations joined, comments dropped."""
    out, pending = [], ""
    for line in (ROOT / name).read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            word, _, rest = pending.partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    assert not pending, "dangling line continuation"
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    """stage name -> its instructions, the FROM line's ${ARG} resolved to the ARG's default."""
    result = {}
    for target, name in DOCKERFILES.items():
        args, stage = {}, None
        for instruction, rest in dockerfile(name):
            if instruction == "FROM":
                words = rest.split()
                assert len(words) == 3 and words[1].upper() == "AS", rest
                assert stage is None, f"{name} has more than one stage"
                base = re.sub(r"\$\{(\w+)\}", lambda m, known=args: known[m.group(1)], words[0])
                stage = words[2]
                result[stage] = [(instruction, base)]
            elif stage is None:
                assert instruction == "ARG", f"{name}: {instruction} before FROM"
                key, _, value = rest.partition("=")
                args[key] = value
            else:
                result[stage].append((instruction, rest))
        assert stage == target, name
    return result


def documented_images() -> dict[str, str]:
    """target -> image name, from the `docker build ... -t NAME` lines in the header."""
    images = {}
    for name in DOCKERFILES.values():
        for line in (ROOT / name).read_text().splitlines():
            if line.startswith("#") and "docker build" in line:
                words = shlex.split(line.lstrip("# ").split("#")[0])
                file = words[words.index("-f") + 1] if "-f" in words else "Dockerfile"
                target = {"Dockerfile": "default", "Dockerfile.gpu": "gpu"}[file]
                assert images.setdefault(target, words[words.index("-t") + 1]) == images[target]
    return images


def image_user() -> tuple[str, int, str]:
    """(name, uid, home) of the user the image runs as."""
    cpu = stages()["cpu"]
    run = " ".join(args for ins, args in cpu if ins == "RUN")
    m = re.search(r"useradd --create-home --uid (\d+) --shell \S+ (\w+)", run)
    assert m, "the image creates its user with useradd"
    return m.group(2), int(m.group(1)), f"/home/{m.group(2)}"


def test_dockerfile_stages_and_user():
    parsed = stages()
    assert sorted(parsed) == ["cpu", "gpu"]
    assert parsed["cpu"][0][1] == "python:3.11-slim"
    assert parsed["gpu"][0][1].startswith("nvidia/cuda:12.")
    user, uid, home = image_user()
    for name, body in parsed.items():
        users = [args for ins, args in body if ins == "USER"]
        assert users == [user], name  # exactly one switch, to the non-root user
        assert uid != 0 and user != "root"
        last_run = max(i for i, (ins, _) in enumerate(body) if ins == "RUN")
        assert [i for i, (ins, _) in enumerate(body) if ins == "USER"][0] > last_run, name
        assert ("WORKDIR", home) in body
        assert ("COPY", f"--chown={user}:{user} examples {home}/examples") in body
        cmd = [args for ins, args in body if ins == "CMD"]
        assert len(cmd) == 1 and cmd[0].startswith('["distkeras-run"'), name


def test_dockerfile_sets_the_blas_spin_that_distkeras_sets():
    """mpirun in the MPIJob bypasses distkeras-run: the image carries the variable."""
    from distkeras._blas import BLAS_ENV

    text = (ROOT / "Dockerfile").read_text()
    for key, value in BLAS_ENV.items():
        assert f"{key}={value}" in text


def test_dockerfile_installs_with_the_extras():
    parsed = stages()
    runs = {name: " ".join(a for i, a in body if i == "RUN") for name, body in parsed.items()}
    assert 'pip install ".[mpi,ray]"' in runs["cpu"]
    assert 'pip install ".[mpi,ray,gpu]"' in runs["gpu"]
    extras = dict(re.findall(r"^(\w+) = \[(.*)\]$", PYPROJECT, re.M))
    assert '"cupy' in extras["gpu"] and '"mpi4py' in extras["mpi"] and '"ray' in extras["ray"]
    env = {name: " ".join(a for i, a in body if i == "ENV") for name, body in parsed.items()}
    assert "DISTKERAS_BACKEND=cupy" in env["gpu"] and "DISTKERAS_BACKEND" not in env["cpu"]


def test_dockerfile_copies_what_the_build_needs():
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for body in stages().values():
        copied = []
        for ins, args in body:
            if ins == "COPY":
                words = [w for w in args.split() if not w.startswith("--")]
                copied += words[:-1]
        for needed in ("pyproject.toml", "README.md", "distkeras", "launcher", "examples"):
            assert needed in copied
        for source in copied:
            assert (ROOT / source).exists(), source
            assert source not in ignored, f"{source} is excluded by .dockerignore"
    assert ".git" in ignored


def test_documented_image_names():
    images = documented_images()
    assert set(images) == {"default", "gpu"}
    assert images["default"] == f"distkeras/distkeras:{VERSION}"
    assert images["gpu"] == f"distkeras/distkeras:{VERSION}-gpu"


def test_each_dockerfile_takes_its_base_as_a_build_argument():
    """BASE_IMAGE, declared before FROM, is the stage's base: check.sh builds from a local one."""
    for name in DOCKERFILES.values():
        instructions = dockerfile(name)
        assert instructions[0][0] == "ARG" and instructions[0][1].startswith("BASE_IMAGE=")
        assert [rest for ins, rest in instructions if ins == "FROM"][0].startswith("${BASE_IMAGE} ")
    versions = {
        re.search(r"^ARG RAY_VERSION=(\S+)$", (ROOT / name).read_text(), re.M).group(1)
        for name in DOCKERFILES.values()
    }
    assert len(versions) == 1  # both images install the same Ray


def test_images_install_into_a_venv():
    """A distribution's Python refuses system-wide installs (PEP 668): pip runs in /opt/venv."""
    for name, body in stages().items():
        env = " ".join(a for i, a in body if i == "ENV")
        assert "VIRTUAL_ENV=/opt/venv" in env and "PATH=/opt/venv/bin:" in env, name
        runs = [a for i, a in body if i == "RUN"]
        venv = next(i for i, a in enumerate(runs) if "python3 -m venv /opt/venv" in a)
        pip = next(i for i, a in enumerate(runs) if "pip install" in a)
        assert venv < pip, name
        # sshd sessions (mpirun's daemons on the workers) find the venv's prted and python
        sshd = next(a for a in runs if ".sshd_config" in a)
        assert "SetEnv PATH=%s" in sshd and '"$PATH"' in sshd, name


# --- cluster/docker/check.sh ---------------------------------------------------------------

CHECK = CLUSTER / "docker" / "check.sh"


def test_check_script_is_valid_bash():
    import subprocess

    subprocess.run(["bash", "-n", str(CHECK)], check=True, timeout=30)
    assert CHECK.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in CHECK.read_text()


def test_check_script_runs_what_the_manifests_run():
    """The containers of check.sh start as the MPIJob's and the RayJob's pods do."""
    text = " ".join(CHECK.read_text().replace("\\\n", " ").split())
    job = load_yaml("k8s/mpijob.yaml")
    spec = job["spec"]
    (wc,) = spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    assert " ".join(wc["command"] + wc["args"]) in text  # the workers' sshd
    (lc,) = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"]
    opts, _ = check_command(lc["command"] + lc["args"], image_user()[2])
    assert f"distkeras-run --backend mpi -np {opts.np} --hostfile {opts.hostfile}" in text
    assert f'-v "$WORK/ssh:{spec["sshAuthMountPath"]}:ro"' in text  # the operator's keys
    ray = load_yaml("k8s/rayjob.yaml")["spec"]
    opts, _ = check_command(shlex.split(ray["entrypoint"]), image_user()[2])
    assert f"-- distkeras-run --backend ray -np {opts.np} " in text
    assert "ray start --head" in text and "ray start --block --address=" in text
    assert "docker network create --internal" in text and "docker network rm" in text
    # (d) submits the repository's batch script from the image's home, where ranks find examples/
    _, _, home = image_user()
    assert "sbatch --wait cluster/slurm/train.sbatch" in text
    assert f'-v "$ROOT/cluster/slurm:{home}/cluster/slurm:ro"' in text
    assert f"-w {home} " in text
    assert '--build-arg "BASE_IMAGE=$BASE"' in text


def test_check_job_prints_the_digest_check_sh_reads():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(CLUSTER / "docker" / "weights_job.py"), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    pattern = re.search(r"sed -n 's/\.\*weights_sha256=(.*?)\.\*/", CHECK.read_text())
    assert pattern and pattern.group(1) == r"\([0-9a-f]*\)"
    digests = re.findall(r"weights_sha256=([0-9a-f]*)", out)
    assert len(digests) == 1 and len(digests[0]) == 64, out


# --- cluster/ files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", YAML_FILES)
def test_yaml_parses(name):
    data = load_yaml(name)
    assert isinstance(data, dict) and data
    try:
        import yaml
    except ImportError:
        return
    assert yaml.safe_load((CLUSTER / name).read_text()) == data  # the reader agrees with PyYAML


def test_every_image_is_the_documented_one():
    images = set(documented_images().values())
    found = [load_yaml("ray/cluster.yaml")["docker"]["image"]]
    for name in ("k8s/mpijob.yaml", "k8s/rayjob.yaml"):
        found += re.findall(r"^\s*(?:- )?image: (\S+)$", (CLUSTER / name).read_text(), re.M)
    assert len(found) == 1 + 2 + 2
    assert set(found) <= images, found
    text = (CLUSTER / "README.md").read_text()
    for image in re.findall(r"-t (\S+)", text):
        assert image in images


def check_command(words: list[str], home: str | None = None) -> tuple:
    """Parses a distkeras-run command as the launcher would; returns (options, script)."""
    assert words[0] == "distkeras-run", words
    opts = parse_args(words[1:])
    cmd = parse_command(opts.command)
    script = cmd.script
    if home and script.startswith(home + "/"):
        script = script[len(home) + 1 :]
    assert script.startswith("examples/") and (ROOT / script).is_file(), cmd.script
    return opts, cmd


def test_mpijob_agrees_with_launcher_and_image():
    job = load_yaml("k8s/mpijob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v2beta1", "MPIJob")
    spec = job["spec"]
    user, uid, home = image_user()
    launcher = spec["mpiReplicaSpecs"]["Launcher"]
    worker = spec["mpiReplicaSpecs"]["Worker"]
    assert launcher["replicas"] == 1
    (lc,) = launcher["template"]["spec"]["containers"]
    (wc,) = worker["template"]["spec"]["containers"]
    opts, _ = check_command(lc["command"] + lc["args"], home)
    assert opts.backend == "mpi" and opts.hostfile == "/etc/mpi/hostfile"
    assert opts.np == worker["replicas"] * spec["slotsPerWorker"]
    env = dict(e.split("=", 1) for e in opts.env)
    cpus = int(wc["resources"]["limits"]["cpu"])
    assert int(env["OMP_NUM_THREADS"]) * spec["slotsPerWorker"] == cpus
    assert wc["resources"]["requests"] == wc["resources"]["limits"]
    for c in (lc, wc):
        assert c["securityContext"]["runAsUser"] == uid
    assert spec["sshAuthMountPath"] == f"{home}/.ssh"
    assert wc["command"] == ["/usr/sbin/sshd"] and wc["args"][-1] == f"{home}/.sshd_config"
    dockerfile_text = (ROOT / "Dockerfile").read_text()
    assert f"> {home}/.sshd_config" in dockerfile_text
    assert f"HostKey {home}/.ssh/id_rsa" in dockerfile_text


def test_rayjob_agrees_with_launcher_and_image():
    job = load_yaml("k8s/rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    _, _, home = image_user()
    opts, _ = check_command(shlex.split(spec["entrypoint"]), home)
    assert opts.backend == "ray"
    cluster = spec["rayClusterSpec"]
    ray_version = re.search(r"^ARG RAY_VERSION=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert cluster["rayVersion"] == ray_version.group(1)
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (group,) = cluster["workerGroupSpecs"]
    assert opts.np == group["replicas"] == group["minReplicas"] == group["maxReplicas"]
    (c,) = group["template"]["spec"]["containers"]
    cpus = c["resources"]["limits"]["cpu"]
    assert c["resources"]["requests"]["cpu"] == cpus == group["rayStartParams"]["num-cpus"]
    assert {"name": "OMP_NUM_THREADS", "value": cpus} in c["env"]


def test_ray_cluster_config_agrees():
    config = load_yaml("ray/cluster.yaml")
    head = config["head_node_type"]
    types = config["available_node_types"]
    assert head in types and types[head]["resources"]["CPU"] == 0
    workers = [t for name, t in types.items() if name != head]
    total = sum(t["min_workers"] for t in workers)
    assert config["max_workers"] == total == sum(t["max_workers"] for t in workers)
    assert all(cmd.startswith(("ray stop", "ulimit")) for cmd in config["head_start_ray_commands"])
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP" in c for c in config["worker_start_ray_commands"])
    _, _, home = image_user()
    commands = ray_exec_commands((CLUSTER / "ray/cluster.yaml").read_text())
    commands += ray_exec_commands((CLUSTER / "README.md").read_text())
    assert len(commands) == 2
    for words in commands:
        opts, _ = check_command(words, home)
        assert opts.backend == "ray" and opts.np == total


def ray_exec_commands(text: str) -> list[list[str]]:
    found = []
    for line in text.splitlines():
        line = line.lstrip("# ").strip()
        if line.startswith("ray exec "):
            found.append(shlex.split(shlex.split(line)[3]))
    return found


def test_sbatch_is_the_launcher_template():
    text = (CLUSTER / "slurm/train.sbatch").read_text()
    assert text == slurm.default_sbatch()
    assert f"#SBATCH --ntasks={slurm.DEFAULT_NTASKS}\n" in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("exec distkeras-run --backend slurm")
    words = [w.replace("${SLURM_NTASKS}", str(slurm.DEFAULT_NTASKS)) for w in shlex.split(last)[1:]]
    opts, _ = check_command(words)
    assert opts.backend == "slurm"
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    first_command = next(
        i for i, line in enumerate(text.splitlines()) if line and not line.startswith("#")
    )
    assert all(text.splitlines().index(d) < first_command for d in directives)


def test_readme_commands_parse():
    text = (CLUSTER / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = [
        shlex.split(line.split("  #")[0])
        for block in blocks
        for line in block.splitlines()
        if line.startswith("distkeras-run ")
    ]
    assert len(commands) >= 6
    for words in commands:
        check_command(words)
    for name in ["slurm/train.sbatch", *YAML_FILES]:
        assert f"`{name}`" in text
