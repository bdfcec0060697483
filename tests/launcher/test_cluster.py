"""cluster/ files and the Dockerfile: each parses, and they agree with each other,
with the launcher and with the repository (image names, commands, replica
counts, resources, users and paths).

Docker cannot build here, so the Dockerfile is checked statically.
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


# --- the Dockerfile ------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per logical line, continuations joined, comments dropped."""
    out, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
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
    result, name = {}, None
    for instruction, args in dockerfile():
        if instruction == "FROM":
            words = args.split()
            assert len(words) == 3 and words[1].upper() == "AS", args
            name = words[2]
            result[name] = [(instruction, words[0])]
        elif name is not None:
            result[name].append((instruction, args))
    return result


def documented_images() -> dict[str, str]:
    """target -> image name, from the `docker build ... -t NAME` lines in the header."""
    images = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("#") and "docker build" in line:
            words = shlex.split(line.lstrip("# ").split("#")[0])
            target = words[words.index("--target") + 1] if "--target" in words else "default"
            images[target] = words[words.index("-t") + 1]
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
    assert list(parsed) == ["gpu", "cpu"]  # the last stage (cpu) is the default target
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
