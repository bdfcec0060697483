"""DistkerasTrainer on the session's local Ray cluster: a Ray Train run on 2 workers with
distkeras's Ray communicator equals one process, reports each epoch's logs and a
checkpoint Ray Train keeps (`result.metrics`, `result.checkpoint`, `Result.from_path`)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.train")

from ray.train import FailureConfig, Result, RunConfig, ScalingConfig  # noqa: E402

import distkeras as keras  # noqa: E402
from distkeras import distributed  # noqa: E402
from distkeras.distributed.ray.train import (  # noqa: E402
    DistkerasConfig,
    DistkerasTrainer,
    ReportCallback,
    load_checkpoint,
)

EPOCHS = 3


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype("float32")
    y = (x @ rng.standard_normal((5, 1)) + 0.1).astype("float32")
    return x, y


def build(lr: float):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.5), loss="mse", metrics=["mae"])
    return model


def _reference():
    """One process in deterministic mode (the same micro-shard sums as the 2 workers)."""
    comm = distributed.get_communicator()
    old, comm.deterministic = comm.deterministic, True
    try:
        ref = build(0.05)
        x, y = data()
        ref.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0)
    finally:
        comm.deterministic = old
    return ref


def train_loop(config):
    import ray.train

    comm = distributed.get_communicator()
    assert comm.backend == "ray" and comm.size == 2, comm
    assert comm.rank == ray.train.get_context().get_world_rank()
    model = build(config["lr"])
    x, y = data()
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[ReportCallback(checkpoint=True)],
    )


def test_trainer_on_two_workers_equals_one_process(ray_cluster, tmp_path):
    trainer = DistkerasTrainer(
        train_loop,
        train_loop_config={"lr": 0.05},
        distkeras_config=DistkerasConfig(deterministic=True),
        scaling_config=ScalingConfig(num_workers=2),
        run_config=RunConfig(name="dk_train", storage_path=str(tmp_path)),
    )
    result = trainer.fit()
    assert result.error is None

    ref = _reference()
    hist = ref.history
    assert result.metrics["epoch"] == EPOCHS
    np.testing.assert_allclose(result.metrics["loss"], hist.history["loss"][-1], rtol=1e-5)
    np.testing.assert_allclose(result.metrics["mae"], hist.history["mae"][-1], rtol=1e-5)
    losses = result.metrics_dataframe["loss"].tolist()
    np.testing.assert_allclose(losses, hist.history["loss"], rtol=1e-5)

    restored, done = load_checkpoint(result.checkpoint)
    assert done == EPOCHS
    assert int(restored.optimizer.iterations.numpy()) == int(ref.optimizer.iterations.numpy())
    for a, b in zip(restored.weights, ref.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # deterministic: bitwise

    again = Result.from_path(result.path)
    assert again.metrics["epoch"] == EPOCHS and again.checkpoint is not None


def test_trainer_rejects_other_backend_configs():
    with pytest.raises(ValueError, match="distkeras_config"):
        DistkerasTrainer(lambda: None, distkeras_config=object())


def resumable_loop(config):
    import os

    import ray.train

    model, done = load_checkpoint(ray.train.get_checkpoint())
    if model is None:
        model = build(config["lr"])
    rank = ray.train.get_context().get_world_rank()
    marker = config["marker"]

    def crash(epoch, logs):
        if epoch == 1 and rank == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # a lost worker, after the checkpoint of epoch 2 was reported

    x, y = data()
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=EPOCHS,
        initial_epoch=done,
        shuffle=False,
        verbose=0,
        callbacks=[
            ReportCallback(checkpoint=True),
            keras.callbacks.LambdaCallback(on_epoch_end=crash),
        ],
    )


def test_lost_worker_resumes_from_the_reported_checkpoint(ray_cluster, tmp_path):
    trainer = DistkerasTrainer(
        resumable_loop,
        train_loop_config={"lr": 0.05, "marker": str(tmp_path / "crashed")},
        distkeras_config=DistkerasConfig(deterministic=True),
        scaling_config=ScalingConfig(num_workers=2),
        run_config=RunConfig(
            name="dk_resume",
            storage_path=str(tmp_path),
            failure_config=FailureConfig(max_failures=1),
        ),
    )
    result = trainer.fit()
    assert (tmp_path / "crashed").exists()  # the worker was lost once
    assert result.error is None and result.metrics["epoch"] == EPOCHS
    model, done = load_checkpoint(result.checkpoint)
    assert done == EPOCHS
    ref = _reference()
    for a, b in zip(model.weights, ref.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def tune_trial(config):
    from ray import tune

    trainer = DistkerasTrainer(
        train_loop,
        train_loop_config={"lr": config["lr"]},
        scaling_config=ScalingConfig(num_workers=2),
        run_config=RunConfig(name=f"trial_lr_{config['lr']}", storage_path=config["storage"]),
    )
    result = trainer.fit()
    tune.report({"loss": result.metrics["loss"], "epoch": result.metrics["epoch"]})


def test_tune_sweep_runs_two_trials_of_two_workers(ray_cluster, tmp_path):
    from ray import tune

    lrs = [0.01, 0.05]
    tuner = tune.Tuner(
        tune.with_resources(tune_trial, {"cpu": 0.1}),  # the 2 workers hold the CPUs
        param_space={"lr": tune.grid_search(lrs), "storage": str(tmp_path)},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(name="sweep", storage_path=str(tmp_path)),
    )
    results = tuner.fit()
    assert results.num_errors == 0
    got = {r.config["lr"]: r.metrics for r in results}
    assert sorted(got) == lrs
    for lr in lrs:
        ref = build(lr)
        x, y = data()
        hist = ref.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0)
        assert got[lr]["epoch"] == EPOCHS
        np.testing.assert_allclose(got[lr]["loss"], hist.history["loss"][-1], rtol=1e-4)
