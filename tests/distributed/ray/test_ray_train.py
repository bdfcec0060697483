"""DistkerasTrainer on the session's local Ray cluster: a Ray Train run on 2 workers with
distkeras's Ray communicator equals one process, reports each epoch's logs and a
checkpoint Ray Train keeps (`result.metrics`, `result.checkpoint`, `Result.from_path`),
resumes a lost worker mid-epoch from the reported checkpoint, bitwise, and trains on
Ray Data shards (each row read once per epoch, by one worker)."""

from __future__ import annotations

import json
import os

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
    dataset_batches,
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
    assert again.metrics["epoch"] == EPOCHS and again.metrics["loss"] == result.metrics["loss"]
    model, done = load_checkpoint(again.checkpoint)
    assert done == EPOCHS
    for a, b in zip(model.weights, ref.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_trainer_rejects_other_backend_configs():
    with pytest.raises(ValueError, match="distkeras_config"):
        DistkerasTrainer(lambda: None, distkeras_config=object())


def _reference_run(batch_size: int, epochs: int, shuffle: bool):
    """One process in deterministic mode (the same micro-shard sums as the 2 workers)."""
    comm = distributed.get_communicator()
    old, comm.deterministic = comm.deterministic, True
    try:
        ref = build(0.05)
        x, y = data()
        hist = ref.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=shuffle, verbose=0)
    finally:
        comm.deterministic = old
    return ref, hist.history


CRASH_AT = 7  # global step; checkpoints every 3 steps, 8 steps an epoch


def resumable_loop(config):
    import ray.train
    from ray.train import CheckpointConsistencyMode

    rank = ray.train.get_context().get_world_rank()
    x, y = data()
    # A first checkpointing fit: run again after the loss, afresh (its checkpoint is not
    # the newest); the second, the one that was running, resumes.
    warmup, warm_report = build(config["lr"]), ReportCallback(checkpoint=True)
    warmup.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, callbacks=[warm_report])

    model = build(config["lr"])  # no resume code: ReportCallback restores inside fit
    report = ReportCallback(checkpoint=True, save_freq=3)
    marker = config["marker"]

    def crash(batch, logs):
        if rank == 1 and model._global_step == CRASH_AT and not os.path.exists(marker):
            # Ray Train has registered every checkpoint reported so far (the one of step 6).
            ray.train.get_all_reported_checkpoints(
                consistency_mode=CheckpointConsistencyMode.COMMITTED
            )
            open(marker, "w").close()
            os._exit(1)  # a lost worker, mid-epoch

    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        shuffle=True,
        verbose=0,
        callbacks=[report, keras.callbacks.LambdaCallback(on_train_batch_end=crash)],
    )
    if rank == 0:
        with open(config["out"], "w") as f:
            json.dump({"warmup": warm_report.restored_from, "main": report.restored_from}, f)


def test_lost_worker_resumes_mid_epoch_from_the_reported_checkpoint(ray_cluster, tmp_path):
    trainer = DistkerasTrainer(
        resumable_loop,
        train_loop_config={
            "lr": 0.05,
            "marker": str(tmp_path / "crashed"),
            "out": str(tmp_path / "resumed.json"),
        },
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
    assert result.error is None and result.metrics["epoch"] == 2
    # The restarted run went on from the checkpoint of global step 6: epoch 0, step 6 of 8.
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed == {
        "warmup": None,
        "main": {"epoch": 0, "step": 6, "global_step": 6, "fit": 1},
    }

    ref, hist = _reference_run(batch_size=8, epochs=2, shuffle=True)
    model, done = load_checkpoint(result.checkpoint)
    assert done == 2
    assert int(model.optimizer.iterations.numpy()) == int(ref.optimizer.iterations.numpy())
    for a, b in zip(model.weights, ref.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # bitwise, as if never stopped
    # The epoch's metrics went on from the restored running sums.
    np.testing.assert_allclose(result.metrics["loss"], hist["loss"][-1], rtol=1e-5)


def test_report_callback_checks_its_arguments():
    with pytest.raises(ValueError, match="checkpoint=True"):
        ReportCallback(save_freq=5)
    with pytest.raises(ValueError, match="save_freq=0"):
        ReportCallback(checkpoint=True, save_freq=0)
    with pytest.raises(ValueError, match="metrics=3"):
        ReportCallback(metrics=3)
    assert not hasattr(ReportCallback(), "manager")  # only a checkpointing one restores
    assert hasattr(ReportCallback(checkpoint=True), "manager")


# ------------------------------------------------------------------ Ray Data
ROWS = 60  # 30 rows a worker: 4 steps an epoch of 8, 8, 8 and 6 rows
SEEN: list = []  # per worker process: [epoch, global step, row ids] of every train step
LOG: list = []  # [open file] to which the steps are also written, or empty


def id_data():
    """Rows whose first feature is the row id / 64 (exact in float32)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((ROWS, 5)).astype("float32")
    x[:, 0] = np.arange(ROWS) / 64
    y = (x @ rng.standard_normal((5, 1))).astype("float32")
    return x, y


class Recording(keras.Sequential):
    """Records which rows each train step of this worker saw."""

    def train_step(self, data):
        x = np.asarray(getattr(data[0], "data", data[0]))
        epoch = getattr(self, "_fit_cursor", (-1, 0))[0]  # -1: train_on_batch
        step = getattr(self, "_global_step", -1)
        entry = [int(epoch), int(step), np.rint(x[:, 0] * 64).astype(int).tolist()]
        SEEN.append(entry)
        for f in LOG:  # survives the worker's end
            f.write(json.dumps(entry) + "\n")
            f.flush()
        return super().train_step(data)


def build_recording():
    keras.utils.set_random_seed(3)
    model = Recording(
        [keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5), loss="mse")
    return model


DATA_MODES = ("shard", "iter_batches", "dataset_batches")
DATA_CRASH_AT = 7  # global step of the dataset_batches fit; checkpoints every 3 steps


def data_loop(config):
    import ray.train
    from ray.train import CheckpointConsistencyMode

    rank = ray.train.get_context().get_world_rank()
    marker = config["marker"]
    attempt = 2 if os.path.exists(marker) else 1
    shard = ray.train.get_dataset_shard("train")
    out = {}
    for mode in DATA_MODES:  # 8 rows per worker and step in each
        model = build_recording()
        SEEN.clear()
        if mode == "shard":  # fit's batch_size is global, as for arrays
            model.fit(shard, batch_size=16, epochs=2, verbose=0)
        elif mode == "iter_batches":
            model.fit(shard.iter_batches(batch_size=8), epochs=2, verbose=0)
        else:  # with mid-epoch checkpoints, and a worker lost once

            def crash(batch, logs, model=model):
                if rank == 1 and model._global_step == DATA_CRASH_AT and attempt == 1:
                    ray.train.get_all_reported_checkpoints(
                        consistency_mode=CheckpointConsistencyMode.COMMITTED
                    )
                    open(marker, "w").close()
                    os._exit(1)

            report = ReportCallback(checkpoint=True, save_freq=3)
            path = os.path.join(config["out"], f"steps_rank{rank}_attempt{attempt}.jsonl")
            with open(path, "w") as f:
                LOG.append(f)
                try:
                    model.fit(
                        dataset_batches(shard, "x", "y", batch_size=8),
                        epochs=2,
                        verbose=0,
                        callbacks=[
                            report,
                            keras.callbacks.LambdaCallback(on_train_batch_end=crash),
                        ],
                    )
                finally:
                    LOG.clear()
            out["restored_from"] = report.restored_from
        out[mode] = {"seen": list(SEEN), "weights": [w.numpy().tolist() for w in model.weights]}
    with open(os.path.join(config["out"], f"rank{rank}.json"), "w") as f:
        json.dump(out, f)


def _steps_before_and_after_the_loss(tmp_path, rank: int, resumed_at: int) -> list:
    """[epoch, global step, ids] of the steps the resumed run is made of, in order."""
    attempts = [
        [json.loads(line) for line in (tmp_path / f"steps_rank{rank}_attempt{a}.jsonl").open()]
        for a in (1, 2)
    ]
    return [e for e in attempts[0] if e[1] < resumed_at] + attempts[1]


def test_ray_data_shards_feed_fit_once_per_row_and_resume_mid_epoch(ray_cluster, tmp_path):
    import ray.data

    x, y = id_data()
    dataset = ray.data.from_items([{"x": x[i], "y": y[i], "id": i} for i in range(ROWS)])
    trainer = DistkerasTrainer(
        data_loop,
        train_loop_config={"out": str(tmp_path), "marker": str(tmp_path / "crashed")},
        scaling_config=ScalingConfig(num_workers=2),
        run_config=RunConfig(
            name="dk_data",
            storage_path=str(tmp_path),
            failure_config=FailureConfig(max_failures=1),
        ),
        datasets={"train": dataset},
    )
    result = trainer.fit()
    assert result.error is None and (tmp_path / "crashed").exists()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # dataset_batches resumed from its checkpoint of global step 6: epoch 1, step 2 of 4.
    resumed = {"epoch": 1, "step": 2, "global_step": 6, "fit": 0}
    assert ranks[0]["restored_from"] == ranks[1]["restored_from"] == resumed
    for mode in DATA_MODES:
        seen = [ranks[r][mode]["seen"] for r in range(2)]
        if mode == "dataset_batches":  # the steps kept from before the loss, then the rest
            seen = [_steps_before_and_after_the_loss(tmp_path, r, 6) for r in range(2)]
        assert [e[1] for e in seen[0]] == [e[1] for e in seen[1]] == list(range(8))
        ref = build_recording()
        for epoch in range(2):
            steps = [[ids for e, _, ids in seen[r] if e == epoch] for r in range(2)]
            per_rank = [sum(len(ids) for ids in steps[r]) for r in range(2)]
            assert per_rank == [ROWS // 2, ROWS // 2], (mode, epoch, per_rank)
            every = sorted(i for r in range(2) for ids in steps[r] for i in ids)
            assert every == list(range(ROWS)), (mode, epoch)  # each row once, by one worker
            for ids0, ids1 in zip(*steps):  # the same global batches in one process
                assert len(ids0) == 8 or len(ids0) == len(ids1) == 6
                rows = np.asarray(ids0 + ids1)
                ref.train_on_batch(x[rows], y[rows])
        for got, want in zip(ranks[0][mode]["weights"], ref.weights):
            np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-5, atol=1e-6)
        for a, b in zip(ranks[0][mode]["weights"], ranks[1][mode]["weights"]):
            np.testing.assert_array_equal(a, b)  # the replicas stay identical


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
