"""Losses whose divisor depends on the data (output masks, `ignore_class`,
'mean_with_sample_weight') train data-parallel to the one-process weights.

Each rank's shard divides by the divisor of the whole global batch (the shards'
divisors summed across ranks once per step), so the ranks' gradients add up to the
global-batch gradient even when the heavy weights, padded steps and ignored labels
all sit on one rank's shard.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distkeras
from distkeras import layers, losses
from distkeras.backend.autodiff import GradientTape
from tests.models.test_data_parallel import MPIRUN, _env

SCRIPT = Path(__file__).parent / "scripts" / "exact_divisors.py"
KEYS = ("loss", "accuracy", "evaluate", "on_batch")


def _results(tmp_path: Path, n: int, loss: str, mode: str) -> list[dict]:
    prefix = str(tmp_path / f"n{n}_{loss}_{mode}")
    cmd = [sys.executable, str(SCRIPT), prefix, loss, mode]
    if n > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(n), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = []
    for r in range(n):
        with np.load(f"{prefix}.rank{r}.npz") as f:
            weights = [f[f"arr_{i}"] for i in range(4)]
            out.append({"weights": weights, **{k: f[k] for k in KEYS}})
    return out


def _assert_close(got: dict, ref: dict) -> None:
    for a, b in zip(got["weights"], ref["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in KEYS:  # the reported loss, weighted metric and evaluate too
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=key)


# ------------------------------------------------------------ in one process
def _sequence_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, 5, 4)).astype("float32")
    x[:4, 2:] = 0.0  # the padded steps sit in the first shard
    y = rng.integers(0, 3, size=(12, 5))
    sw = rng.uniform(0.1, 1.0, size=(12, 5)).astype("float32")
    sw[:4] *= 20.0
    return x, y, sw


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight"])
@pytest.mark.parametrize("ignore_class", [None, 2])
def test_shards_with_summed_divisors_add_up_to_the_global_batch_loss_and_gradient(
    reduction, ignore_class
):
    distkeras.utils.set_random_seed(1)
    model = distkeras.Sequential(
        [
            distkeras.Input((5, 4)),
            layers.Masking(0.0),
            layers.Dense(3, activation="softmax"),
        ]
    )
    loss = losses.SparseCategoricalCrossentropy(reduction=reduction, ignore_class=ignore_class)
    model.compile(optimizer="sgd", loss=loss)
    x, y, sw = _sequence_batch()
    kernel = model.layers[-1].kernel

    def loss_and_grad(loss_fn):
        with GradientTape() as tape:
            value = loss_fn()
        return float(value.data), np.asarray(tape.gradient(value, [kernel])[0])

    whole, whole_grad = loss_and_grad(
        lambda: model.compute_loss(y=y, y_pred=model(x), sample_weight=sw)
    )
    # Keras's formula on the whole batch: the loss's own reduction of the masked values.
    expected = float(loss(y, model(x), sample_weight=sw).data)
    np.testing.assert_allclose(whole, expected, rtol=1e-6)
    cuts = [(0, 4), (4, 12)]  # uneven shards, the first one heavy and mostly padded
    parts = [model._loss_parts(y[a:b], model(x[a:b]), sw[a:b]) for a, b in cuts]
    divisors = [sum(p.outputs[0][2] for p in parts)]
    total, grad = 0.0, 0.0
    for (a, b), _ in zip(cuts, parts):

        def shard_loss(a=a, b=b):
            p = model._loss_parts(y[a:b], model(x[a:b]), sw[a:b])
            return model._combine_loss(p, 12, b - a, divisors)[0]

        value, g = loss_and_grad(shard_loss)
        total, grad = total + value, grad + g
    np.testing.assert_allclose(total, whole, rtol=1e-6)
    np.testing.assert_allclose(grad, whole_grad, rtol=1e-5, atol=1e-7)
    # Without the summed divisors, each shard's own divisor scaled up is not the global one.
    approx = sum(
        float(
            model._combine_loss(model._loss_parts(y[a:b], model(x[a:b]), sw[a:b]), 12, b - a)[
                0
            ].data
        )
        for a, b in cuts
    )
    assert abs(approx - whole) > 1e-3 * abs(whole)


# ------------------------------------------------------------ under mpirun
mpi = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    cache: dict = {}

    def get(loss: str, mode: str) -> dict:
        if (loss, mode) not in cache:
            cache[loss, mode] = _results(tmp_path_factory.mktemp("one"), 1, loss, mode)[0]
        return cache[loss, mode]

    return get


@mpi
@pytest.mark.parametrize("loss", ["mask", "mwsw", "ignore", "mwsw_plain"])
def test_two_ranks_train_to_the_one_process_weights(tmp_path, one_process, loss):
    ref = one_process(loss, "default")
    for got in _results(tmp_path, 2, loss, "default"):
        _assert_close(got, ref)


@mpi
def test_three_uneven_ranks_train_to_the_one_process_weights(tmp_path, one_process):
    ref = one_process("mwsw", "default")
    for got in _results(tmp_path, 3, "mwsw", "default"):
        _assert_close(got, ref)


@mpi
@pytest.mark.parametrize("loss", ["mask", "ignore"])
def test_deterministic_mode_is_bitwise_on_1_2_and_3_ranks(tmp_path, one_process, loss):
    ref = one_process(loss, "det")
    for n in (2, 3):
        for got in _results(tmp_path, n, loss, "det"):
            for a, b in zip(got["weights"], ref["weights"]):
                np.testing.assert_array_equal(a, b)
            for key in KEYS:  # metric states are summed across ranks: float rounding
                np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, err_msg=key)
    # The deterministic run trains to the default mode's weights (same global divisors).
    _assert_close(ref, one_process(loss, "default"))
