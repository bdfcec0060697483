#!/usr/bin/env bash
# Builds the CPU image and runs it in containers, all on this machine:
#
#   (a) the image's default command (examples/mnist_mlp.py on 2 ranks), and the
#       check's job on 2 ranks in one container;
#   (b) a two-container MPI job started over ssh as the Kubeflow MPIJob
#       launcher does (cluster/k8s/mpijob.yaml): two worker containers run the
#       image's unprivileged sshd on port 2222 with the operator-style keys
#       mounted at ~/.ssh, and a launcher container runs distkeras-run
#       --backend mpi with the hostfile at /etc/mpi/hostfile;
#   (c) a two-container Ray cluster (`ray start --head` in one, `ray start
#       --address` in the other, token authentication on), the job submitted
#       with `ray job submit` to the head's dashboard as KubeRay's RayJob does
#       (cluster/k8s/rayjob.yaml);
#   (d) Slurm in one container (munged, slurmctld and slurmd on one node, from
#       Debian's slurm-wlm added to the image): `sbatch --wait
#       cluster/slurm/train.sbatch`, whose ranks srun starts with --mpi=pmix,
#       and `distkeras-run --backend slurm --wait`, which fills that template.
#
# Each run trains cluster/docker/weights_job.py (deterministic mode) and must
# print the weights digest of the same job run as one process in the image;
# (b) and (c) then run the manifests' own commands (read from the YAML files),
# which must print a test accuracy, as must the default command and train.sbatch.
#
#   bash cluster/docker/check.sh            # as root; about 6 min the first time
#   NO_CACHE=1 bash cluster/docker/check.sh # rebuild every layer (the base is kept)
#
# Needs root, python3, Docker's daemon and CLI and debootstrap (Debian: apt-get install
# -y docker.io debootstrap). Starts `dockerd --bridge=none --iptables=false`
# when no daemon answers (and leaves it running). Makes the base image once
# (BASE, default distkeras/base:bookworm): Debian bookworm with python3 and
# python3-venv, debootstrapped and `docker import`ed, with this machine's CA
# bundle and pip configuration, so that the build (on the host network) uses
# the package index this machine uses. Containers talk only over an --internal
# Docker network the check creates and removes; the containers, the network
# and the temporary files are removed on exit, the images are kept.
set -euo pipefail
{ # the whole script is read before it runs: editing it meanwhile cannot change a run

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml")
IMAGE=${IMAGE:-distkeras/distkeras:$VERSION}
BASE=${BASE:-distkeras/base:bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
NET=distkeras-check-$$
PREFIX=dkcheck-$$
WORK=$(mktemp -d /tmp/distkeras-check.XXXXXX)
STARTED=$(date +%s)
FAILED=0

say() { printf '[check %4ss] %s\n' "$(($(date +%s) - STARTED))" "$*"; }
fail() {
    say "FAIL: $*"
    FAILED=1
}

cleanup() {
    local ids
    ids=$(docker ps -aq --filter "name=^$PREFIX-" 2>/dev/null || true)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- the daemon ---------------------------------------------------------------------------
for tool in docker dockerd debootstrap; do
    command -v "$tool" >/dev/null || {
        echo "check.sh: $tool is missing (Debian: apt-get install -y docker.io debootstrap)" >&2
        exit 2
    }
done
if ! docker info >/dev/null 2>&1; then
    say "no Docker daemon answers: starting dockerd --bridge=none --iptables=false (log: /var/log/dockerd-distkeras.log)"
    nohup dockerd --bridge=none --iptables=false >/var/log/dockerd-distkeras.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || {
        echo "check.sh: dockerd did not start; see /var/log/dockerd-distkeras.log" >&2
        exit 2
    }
fi
say "docker $(docker version -f '{{.Server.Version}}')"

# --- the base image, once -----------------------------------------------------------------
pip_conf() {
    # This machine's effective pip configuration (files and PIP_* variables) as one
    # pip.conf, without the local-path indexes that do not exist in the image.
    python3 - <<'EOF'
import ast, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                     text=True).stdout
sections = {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    section, _, name = key.rpartition(".")
    section = "global" if section in (":env:", "") else section
    value = str(ast.literal_eval(value))
    if name in ("find-links", "extra-index-url", "index-url"):
        value = " ".join(v for v in value.split() if not v.startswith(("file:", "/")))
        if not value:
            continue
    sections.setdefault(section, {})[name] = value
for section, items in sections.items():
    print(f"[{section}]")
    for name, value in items.items():
        print(f"{name} = {value}")
EOF
}

if docker image inspect "$BASE" >/dev/null 2>&1; then
    say "base $BASE: present"
else
    say "base $BASE: debootstrap bookworm (python3, python3-venv) from $MIRROR"
    rootfs=$WORK/rootfs
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        tail -20 "$WORK/debootstrap.log" >&2
        exit 1
    }
    rm -f "$rootfs"/var/cache/apt/archives/*.deb
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    pip_conf >"$rootfs/etc/pip.conf"
    # Files the pip configuration names (certificate, constraints) go in at the same path.
    for f in $(sed -n 's/^\(cert\|client-cert\|constraint\|requirement\) = //p' "$rootfs/etc/pip.conf"); do
        [ -f "$f" ] && mkdir -p "$rootfs$(dirname "$f")" && cp "$f" "$rootfs$f"
    done
    sed 's/^/    pip.conf: /' "$rootfs/etc/pip.conf"
    tar -C "$rootfs" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["python3"]' - "$BASE" >/dev/null
    rm -rf "$rootfs"
    say "base $BASE: imported, $(docker image inspect -f '{{.Size}}' "$BASE" | awk '{printf "%.0f MB", $1/1e6}')"
fi

# --- the CPU image ------------------------------------------------------------------------
say "build $IMAGE from $BASE (docker build --network host --build-arg BASE_IMAGE=$BASE)"
t0=$(date +%s)
docker build --network host ${NO_CACHE:+--no-cache} --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE" "$ROOT" \
    >"$WORK/build.log" 2>&1 || {
    tail -30 "$WORK/build.log" >&2
    exit 1
}
say "build: $(($(date +%s) - t0)) s, image $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

CHECK=(-v "$ROOT/cluster/docker:/check:ro")
JOB=(python /check/weights_job.py)

digest() { sed -n 's/.*weights_sha256=\([0-9a-f]*\).*/\1/p' | tail -1; }

run_logged() { # name, command...: runs, keeps the output in $WORK/name.log and shows it
    # indented, without colour codes, only its last $TAIL lines when TAIL is set.
    local name=$1
    shift
    local rc=0
    timeout 600 "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$WORK/$name.log" || rc=$?
    # Ray's job CLI frames the job's output with hints on querying it; the log keeps them.
    local shown=$WORK/$name.shown
    grep -vE '(INFO|SUCC) cli\.py:(42|6[68]|3[3-5][0-9]) ' "$WORK/$name.log" >"$shown" || true
    if [ -n "${TAIL:-}" ] && [ "$(wc -l <"$shown")" -gt "$TAIL" ]; then
        echo "    | ... (last $TAIL of $(wc -l <"$shown") lines)"
        tail -n "$TAIL" "$shown" | sed 's/^/    | /'
    else
        sed 's/^/    | /' "$shown"
    fi
    return $rc
}

manifest_command() { # file, yaml path of a container list or a string: the command as words
    PYTHONPATH=$ROOT python3 -c '
import shlex, sys
from tests.launcher import miniyaml
node = miniyaml.load(open(sys.argv[1]).read())
for key in sys.argv[2].split("."):
    node = node[int(key)] if key.isdigit() else node[key]
words = shlex.split(node) if isinstance(node, str) else node["command"] + node["args"]
print(" ".join(shlex.quote(w) for w in words))' "$ROOT/cluster/k8s/$1" "$2"
}

accuracy() { sed -n 's/.*Test accuracy: \([0-9.]*\).*/\1/p' "$WORK/$1.log" | tail -1; }

# --- reference: one process ---------------------------------------------------------------
say "one process: ${JOB[*]}"
run_logged ref docker run --rm --network none --name "$PREFIX-ref" "${CHECK[@]}" "$IMAGE" "${JOB[@]}" ||
    fail "the one-process job failed"
REF=$(digest <"$WORK/ref.log")
[ -n "$REF" ] || {
    say "FAIL: no digest from the one-process job"
    exit 1
}

# --- (a) the image's default command; 2 ranks in one container -----------------------------
say "(a) docker run --rm --shm-size=1g $IMAGE   (the default command)"
t0=$(date +%s)
if TAIL=3 run_logged default docker run --rm --network none --shm-size=1g --name "$PREFIX-default" "$IMAGE"; then
    acc=$(accuracy default)
    say "(a) default command: exit 0 in $(($(date +%s) - t0)) s, test accuracy ${acc:-missing}"
    [ -n "$acc" ] || fail "(a) no test accuracy printed"
else
    fail "(a) the default command failed"
fi
say "(a) distkeras-run -np 2 ${JOB[*]}   (one container)"
run_logged one docker run --rm --network none --shm-size=1g --name "$PREFIX-one" "${CHECK[@]}" "$IMAGE" \
    distkeras-run -np 2 "${JOB[@]}" || fail "(a) the 2-rank job failed"
[ "$(digest <"$WORK/one.log")" = "$REF" ] && say "(a) 2 ranks, one container: one-process weights" ||
    fail "(a) 2 ranks in one container: digest differs from one process"

docker network create --internal "$NET" >/dev/null
say "network $NET: --internal ($(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$NET"))"

# --- (b) MPIJob: launcher -> ssh -> two workers ---------------------------------------------
# The operator's secret: one key pair, mounted as ~/.ssh in every pod (owned by the user).
mkdir -m 700 "$WORK/ssh"
ssh-keygen -q -t rsa -b 3072 -N '' -C distkeras-check -f "$WORK/ssh/id_rsa"
cp "$WORK/ssh/id_rsa.pub" "$WORK/ssh/authorized_keys"
chown -R 1000:1000 "$WORK/ssh"
printf '%s-worker-0 slots=1\n%s-worker-1 slots=1\n' "$PREFIX" "$PREFIX" >"$WORK/hostfile"
SSH=(-v "$WORK/ssh:/home/distkeras/.ssh:ro")
for i in 0 1; do
    docker run -d --network "$NET" --name "$PREFIX-worker-$i" --hostname "$PREFIX-worker-$i" \
        --shm-size=1g "${SSH[@]}" "${CHECK[@]}" "$IMAGE" \
        /usr/sbin/sshd -De -f /home/distkeras/.sshd_config >/dev/null
done
say "(b) workers $PREFIX-worker-0/1: /usr/sbin/sshd -De -f /home/distkeras/.sshd_config (port 2222)"
say "(b) launcher: distkeras-run --backend mpi -np 2 --hostfile /etc/mpi/hostfile --env OMP_NUM_THREADS=1 ${JOB[*]}"
t0=$(date +%s)
run_logged mpijob docker run --rm --network "$NET" --name "$PREFIX-launcher" --hostname "$PREFIX-launcher" \
    "${SSH[@]}" "${CHECK[@]}" -v "$WORK/hostfile:/etc/mpi/hostfile:ro" "$IMAGE" \
    distkeras-run --backend mpi -np 2 --hostfile /etc/mpi/hostfile --env OMP_NUM_THREADS=1 "${JOB[@]}" ||
    fail "(b) the MPI job failed"
hosts=$(sed -n 's/^rank [0-9] of 2 (mpi) on //p' "$WORK/mpijob.log" | sort | tr '\n' ' ')
say "(b) ranks ran on: ${hosts:-?}($(($(date +%s) - t0)) s)"
[ "$hosts" = "$PREFIX-worker-0 $PREFIX-worker-1 " ] || fail "(b) the ranks did not run one per worker"
[ "$(digest <"$WORK/mpijob.log")" = "$REF" ] && say "(b) MPI over ssh, two containers: one-process weights" ||
    fail "(b) digest differs from one process"
LAUNCHER=$(manifest_command mpijob.yaml spec.mpiReplicaSpecs.Launcher.template.spec.containers.0)
say "(b) the MPIJob launcher's own command: $LAUNCHER"
t0=$(date +%s)
eval "WORDS=($LAUNCHER)"
TAIL=3 run_logged mpijob-manifest docker run --rm --network "$NET" --name "$PREFIX-launcher" \
    --hostname "$PREFIX-launcher" "${SSH[@]}" -v "$WORK/hostfile:/etc/mpi/hostfile:ro" "$IMAGE" \
    "${WORDS[@]}" || fail "(b) the MPIJob's command failed"
acc=$(accuracy mpijob-manifest)
say "(b) MPIJob command: $(($(date +%s) - t0)) s, test accuracy ${acc:-missing}"
[ -n "$acc" ] || fail "(b) the MPIJob's command printed no test accuracy"
docker rm -f "$PREFIX-worker-0" "$PREFIX-worker-1" >/dev/null

# --- (c) RayJob: ray start --head / ray start --address / ray job submit -------------------
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
RAYENV=(-e RAY_AUTH_MODE=token -e "RAY_AUTH_TOKEN=$TOKEN" -e OMP_NUM_THREADS=1)
HEAD=$PREFIX-ray-head
docker run -d --network "$NET" --name "$HEAD" --hostname "$HEAD" --shm-size=1g "${RAYENV[@]}" \
    "${CHECK[@]}" "$IMAGE" \
    ray start --head --block --port=6379 --num-cpus=1 --dashboard-host=0.0.0.0 >/dev/null
docker run -d --network "$NET" --name "$PREFIX-ray-worker" --hostname "$PREFIX-ray-worker" \
    --shm-size=1g "${RAYENV[@]}" "${CHECK[@]}" "$IMAGE" \
    ray start --block --address="$HEAD:6379" --num-cpus=1 >/dev/null
say "(c) $HEAD: ray start --head --block --port=6379 --num-cpus=1 --dashboard-host=0.0.0.0"
say "(c) $PREFIX-ray-worker: ray start --block --address=$HEAD:6379 --num-cpus=1"
say "(c) both, and the submitter: RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<64 hex digits> OMP_NUM_THREADS=1"
for _ in $(seq 90); do
    nodes=$(docker exec "$HEAD" python -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(n["Alive"] for n in ray.nodes()))' 2>/dev/null | tail -1 || true)
    [ "$nodes" = 2 ] && break
    sleep 2
done
say "(c) cluster up: ${nodes:-0} nodes alive"
say "(c) ray job submit --address http://$HEAD:8265 -- distkeras-run --backend ray -np 2 ${JOB[*]}"
t0=$(date +%s)
run_logged rayjob docker run --rm --network "$NET" --name "$PREFIX-submitter" "${RAYENV[@]}" "$IMAGE" \
    ray job submit --address "http://$HEAD:8265" -- distkeras-run --backend ray -np 2 "${JOB[@]}" ||
    fail "(c) the Ray job failed"
hosts=$(sed -n 's/.*rank [0-9] of 2 (ray) on //p' "$WORK/rayjob.log" | sort | tr '\n' ' ')
say "(c) ranks ran on: ${hosts:-?}($(($(date +%s) - t0)) s)"
[ "$hosts" = "$HEAD $PREFIX-ray-worker " ] || fail "(c) the ranks did not run one per container"
[ "$(digest <"$WORK/rayjob.log")" = "$REF" ] && say "(c) Ray cluster, two containers: one-process weights" ||
    fail "(c) digest differs from one process"
ENTRYPOINT=$(manifest_command rayjob.yaml spec.entrypoint)
say "(c) the RayJob's own entrypoint: ray job submit ... -- $ENTRYPOINT"
t0=$(date +%s)
eval "WORDS=($ENTRYPOINT)"
TAIL=3 run_logged rayjob-manifest docker run --rm --network "$NET" --name "$PREFIX-submitter" \
    "${RAYENV[@]}" "$IMAGE" ray job submit --address "http://$HEAD:8265" -- "${WORDS[@]}" ||
    fail "(c) the RayJob's entrypoint failed"
acc=$(accuracy rayjob-manifest)
say "(c) RayJob entrypoint: $(($(date +%s) - t0)) s, test accuracy ${acc:-missing}"
[ -n "$acc" ] || fail "(c) the RayJob's entrypoint printed no test accuracy"

# --- (d) Slurm: one node in one container ---------------------------------------------------
SLURM_IMAGE=$IMAGE-slurm
printf 'FROM %s\nUSER root\nRUN apt-get update && apt-get install -y --no-install-recommends slurm-wlm munge libpmix-dev && rm -rf /var/lib/apt/lists/*\n' \
    "$IMAGE" | docker build --network host -t "$SLURM_IMAGE" - >"$WORK/slurm-build.log" 2>&1 || {
    tail -20 "$WORK/slurm-build.log" >&2
    exit 1
}
SLURM=$PREFIX-slurm
docker run -d --network "$NET" --name "$SLURM" --hostname "$SLURM" --shm-size=1g -u root "${CHECK[@]}" \
    -v "$ROOT/cluster/slurm:/home/distkeras/cluster/slurm:ro" "$SLURM_IMAGE" sleep infinity >/dev/null
# slurm.conf for this one node, a munge key, then the three daemons.
docker exec "$SLURM" bash -c '
set -e
H=$(hostname)
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm /run/munge
printf "%s\n" ClusterName=check SlurmctldHost=$H SlurmUser=root AuthType=auth/munge \
    ProctrackType=proctrack/linuxproc TaskPlugin=task/none MpiDefault=none ReturnToService=2 \
    SelectType=select/cons_tres SelectTypeParameters=CR_Core StateSaveLocation=/var/spool/slurmctld \
    SlurmdSpoolDir=/var/spool/slurmd SlurmctldLogFile=/var/log/slurm/slurmctld.log \
    SlurmdLogFile=/var/log/slurm/slurmd.log "NodeName=$H CPUs=$(nproc) State=UNKNOWN" \
    "PartitionName=check Nodes=$H Default=YES MaxTime=INFINITE State=UP" >/etc/slurm/slurm.conf
head -c 1024 /dev/urandom >/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key /run/munge && chmod 400 /etc/munge/munge.key
su -s /bin/sh munge -c /usr/sbin/munged 2>/dev/null
slurmctld && slurmd
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 0.5; done'
say "(d) $SLURM: munged, slurmctld, slurmd ($(docker exec "$SLURM" sinfo -h -o '%P %D node(s) %c CPUs %T'))"
slurm_job() { # name, command...: runs it as the user and shows the job's output file
    local name=$1
    shift
    local rc=0
    timeout 600 docker exec -u distkeras -w /home/distkeras "$SLURM" "$@" >"$WORK/$name.submit" 2>&1 || rc=$?
    local id
    id=$(sed -n 's/^Submitted batch job //p' "$WORK/$name.submit")
    sed 's/^/    > /' "$WORK/$name.submit"
    TAIL=${TAIL:-} run_logged "$name" docker exec "$SLURM" cat "/home/distkeras/distkeras-$id.out" || rc=1
    return $rc
}
say "(d) sbatch --wait cluster/slurm/train.sbatch"
t0=$(date +%s)
TAIL=3 slurm_job sbatch sbatch --wait cluster/slurm/train.sbatch || fail "(d) the batch job failed"
acc=$(accuracy sbatch)
say "(d) train.sbatch: $(($(date +%s) - t0)) s, test accuracy ${acc:-missing}"
[ -n "$acc" ] || fail "(d) train.sbatch printed no test accuracy"
say "(d) distkeras-run --backend slurm -np 2 --wait ${JOB[*]}"
t0=$(date +%s)
TAIL=4 slurm_job slurmrun distkeras-run --backend slurm -np 2 --wait "${JOB[@]}" ||
    fail "(d) distkeras-run --backend slurm failed"
say "(d) $(($(date +%s) - t0)) s"
[ "$(digest <"$WORK/slurmrun.log")" = "$REF" ] && say "(d) Slurm, srun --mpi=pmix: one-process weights" ||
    fail "(d) digest differs from one process"

if [ "$FAILED" = 0 ]; then
    say "PASS: one-process weights $REF from (a) one container, (b) MPI over ssh, (c) a Ray cluster, (d) Slurm"
    say "PASS: the default command, the MPIJob's and RayJob's commands and train.sbatch trained (test accuracy printed)"
else
    say "FAILED (logs above)"
fi
exit "$FAILED"
}
