"""examples/ray_train_tune.py: a 2-trial Tune sweep of DistkerasTrainer runs (2 workers each)
on its own local Ray cluster. Both trials' metrics come back, each equals one process
trained at that learning rate, the best trial is the one with the highest validation
accuracy, and each trial's Ray Train result (`Result.from_path`) holds a checkpoint
whose model scores what was reported."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from tests.examples.harness import EXAMPLES, output, run_example

pytest.importorskip("ray.train")
pytest.importorskip("ray.tune")

EPOCHS = 2
LRS = (0.001, 0.01)
TRIAL = re.compile(
    r"^Trial lr=([0-9.e-]+): (\d+) workers, (\d+) epochs, loss ([0-9.]+), "
    r"val_accuracy ([0-9.]+)$",
    re.M,
)


def _example():
    spec = importlib.util.spec_from_file_location("ray_train_tune", EXAMPLES / "ray_train_tune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_trial_sweep_of_two_worker_trainers(tmp_path):
    from ray.train import Result

    from distkeras.distributed.ray.train import load_checkpoint

    proc = run_example(
        "ray_train_tune",
        "--epochs", str(EPOCHS), "--concurrent", "2", "--storage", str(tmp_path),
        timeout=420, RAY_ADDRESS="",
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    trials = {float(m[0]): m[1:] for m in TRIAL.findall(proc.stdout)}
    assert sorted(trials) == list(LRS), output(proc)
    assert all(t[:2] == ("2", str(EPOCHS)) for t in trials.values()), trials
    best = max(trials, key=lambda lr: float(trials[lr][3]))
    assert f"Best trial: lr={best:g} " in proc.stdout, output(proc)

    example = _example()
    (x, y), (xt, yt) = example.load_data()
    for lr in LRS:
        result = Result.from_path(str(tmp_path / f"lr_{lr:g}"))
        assert result.metrics["epoch"] == EPOCHS
        # What was printed is what Ray Train kept.
        assert f"{result.metrics['loss']:.4f}" == trials[lr][2]
        # The 2-worker run trained the weights of one process at the same global batch.
        ref = example.build_model(lr, seed=1)
        hist = ref.fit(x, y, batch_size=example.BATCH_SIZE, epochs=EPOCHS, verbose=0)
        np.testing.assert_allclose(result.metrics["loss"], hist.history["loss"][-1], rtol=1e-4)
        # The reported checkpoint holds the trained model: it scores the reported numbers.
        model, done = load_checkpoint(result.checkpoint)
        assert done == EPOCHS
        score = model.evaluate(xt, yt, verbose=0, return_dict=True)
        np.testing.assert_allclose(score["accuracy"], result.metrics["val_accuracy"], rtol=1e-5)
