"""`LearningRateWarmup`: the per-batch ramp against its formula, through hooks and a real fit."""

from __future__ import annotations

import re

import numpy as np
import pytest

from distkeras import callbacks, layers, optimizers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed


def expected_lr(epoch, batch, steps, warmup, initial, target):
    """Goyal et al. / Horovod: linear in the number of batches seen, target at the end."""
    progress = (epoch * steps + batch + 1) / (warmup * steps)
    return target if progress >= 1 else initial + (target - initial) * progress


class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class FakeModel:
    def __init__(self, learning_rate):
        self.optimizer = FakeOptimizer(learning_rate)
        self.stop_training = False


class FakeComm:
    def __init__(self, rank=0, size=4):
        self.rank, self.size = rank, size


def drive(cb, epochs, steps, lr=0.4, comm=None, initial_epoch=0, params_steps="same"):
    """Runs the hooks of a fit loop; returns the rates seen at each batch begin and the logs."""
    model = FakeModel(lr)
    cb.set_model(model)
    cb.set_params({"epochs": epochs, "steps": steps if params_steps == "same" else params_steps})
    cb.set_communicator(comm)
    cb.on_train_begin()
    seen, epoch_logs = [], []
    for epoch in range(initial_epoch, epochs):
        cb.on_epoch_begin(epoch)
        for batch in range(steps):
            cb.on_train_batch_begin(batch)
            seen.append((epoch, batch, model.optimizer.learning_rate))
        logs = {}
        cb.on_epoch_end(epoch, logs)
        epoch_logs.append(logs)
    return model, seen, epoch_logs


@pytest.mark.parametrize(
    "kwargs, comm, epochs, steps, initial, target",
    [
        # defaults: target = optimizer lr, initial = target / world size
        ({"warmup_epochs": 2}, FakeComm(size=4), 4, 3, 0.1, 0.4),
        ({"warmup_epochs": 2}, FakeComm(rank=1, size=2), 3, 5, 0.2, 0.4),
        ({"warmup_epochs": 2}, None, 3, 2, 0.4, 0.4),  # no communicator: world size 1
        ({"warmup_epochs": 1, "initial_lr": 0.0, "target_lr": 1.0}, None, 2, 4, 0.0, 1.0),
        ({"warmup_epochs": 3, "target_lr": 0.8}, FakeComm(size=8), 4, 2, 0.1, 0.8),
        ({"warmup_epochs": 1.5, "initial_lr": 0.05}, FakeComm(size=2), 3, 4, 0.05, 0.4),
        # an explicit steps_per_epoch wins over params['steps']
        ({"warmup_epochs": 1, "initial_lr": 0.1, "steps_per_epoch": 2}, None, 2, 4, 0.1, 0.4),
    ],
)
def test_ramp_follows_formula(kwargs, comm, epochs, steps, initial, target):
    cb = callbacks.LearningRateWarmup(**kwargs)
    model, seen, epoch_logs = drive(cb, epochs, steps, lr=0.4, comm=comm)
    s = kwargs.get("steps_per_epoch", steps)
    w = kwargs["warmup_epochs"]
    for epoch, batch, lr in seen:
        assert lr == pytest.approx(expected_lr(epoch, batch, s, w, initial, target), rel=1e-12)
    assert any(lr != target for _, _, lr in seen) == (initial != target)
    assert model.optimizer.learning_rate == target  # exactly
    assert [logs["learning_rate"] for logs in epoch_logs][-1] == target


def test_leaves_the_rate_alone_after_warmup():
    cb = callbacks.LearningRateWarmup(warmup_epochs=1, initial_lr=0.1)
    model = FakeModel(0.4)
    cb.set_model(model)
    cb.set_params({"steps": 2})
    cb.on_train_begin()
    for epoch in range(3):
        cb.on_epoch_begin(epoch)
        for batch in range(2):
            cb.on_train_batch_begin(batch)
            if epoch >= 1:
                assert model.optimizer.learning_rate in (0.4, 0.123)
                model.optimizer.learning_rate = 0.123  # another schedule takes over
    assert model.optimizer.learning_rate == 0.123


def test_resume_mid_warmup_keeps_the_original_target():
    """A second fit (or initial_epoch) continues the same ramp toward the same target."""
    cb = callbacks.LearningRateWarmup(warmup_epochs=4)
    model, seen, _ = drive(cb, 2, 3, lr=0.4, comm=FakeComm(size=4))
    assert model.optimizer.learning_rate == pytest.approx(expected_lr(1, 2, 3, 4, 0.1, 0.4))
    cb.on_train_begin()  # same optimizer: the ramped rate is not taken as the new target
    cb.on_epoch_begin(2)
    cb.on_train_batch_begin(0)
    assert model.optimizer.learning_rate == pytest.approx(expected_lr(2, 0, 3, 4, 0.1, 0.4))


def test_verbose_prints_once_on_the_coordinator(capsys):
    for rank in (0, 1):
        drive(callbacks.LearningRateWarmup(2, verbose=1), 3, 2, comm=FakeComm(rank, 2))
        out = capsys.readouterr().out
        expected = ["Epoch 2: finished gradual learning rate warmup to 0.4."] if rank == 0 else []
        assert re.findall(r"Epoch \d+: finished.*", out) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"warmup_epochs": 0}, "Received: warmup_epochs=0"),
        ({"warmup_epochs": -1}, "Received: warmup_epochs=-1"),
        ({"warmup_epochs": "5"}, "Received: warmup_epochs='5'"),
        ({"initial_lr": -0.1}, "Received: initial_lr=-0.1"),
        ({"target_lr": float("inf")}, "Received: target_lr=inf"),
        ({"steps_per_epoch": 0}, "Received: steps_per_epoch=0"),
        ({"steps_per_epoch": 2.5}, "Received: steps_per_epoch=2.5"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        callbacks.LearningRateWarmup(**kwargs)


def test_unknown_steps_per_epoch_is_an_error():
    cb = callbacks.LearningRateWarmup(2)
    with pytest.raises(ValueError, match=re.escape("Received: steps_per_epoch=None")):
        drive(cb, 1, 2, params_steps=None)


def test_config_round_trip():
    cb = callbacks.LearningRateWarmup(3, initial_lr=0.01, target_lr=0.1, steps_per_epoch=7)
    again = callbacks.LearningRateWarmup(**cb.get_config())
    assert again.get_config() == cb.get_config()


# -- through a real fit --------------------------------------------------------
def _model(lr):
    set_random_seed(0)
    model = Sequential([layers.Dense(4, activation="tanh", input_shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="mse")
    return model


@pytest.mark.parametrize("epochs", [2, 4])  # ends exactly at the end of warmup, or after it
def test_fit_ramps_per_batch_and_ends_at_target(epochs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    model = _model(0.1)
    seen = []
    record = callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append(
            float(model.optimizer.learning_rate.data)
        )
    )
    warmup = callbacks.LearningRateWarmup(warmup_epochs=2, initial_lr=0.01)
    history = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[warmup, record])
    steps = 5  # 40 samples / batch 8, taken from params['steps']
    want = [expected_lr(e, b, steps, 2, 0.01, 0.1) for e in range(epochs) for b in range(steps)]
    np.testing.assert_allclose(seen, np.float32(want), rtol=1e-6)
    assert seen[0] < seen[steps] < seen[2 * steps - 1]
    assert float(model.optimizer.learning_rate.data) == np.float32(0.1)
    np.testing.assert_allclose(
        history.history["learning_rate"],
        np.float32([want[(e + 1) * steps - 1] for e in range(epochs)]),
    )
