"""Tests for distkeras.callbacks, driven through a fake model and a mini training loop.

The real model is not needed to check callback logic: the callbacks only rely on
`model.stop_training`, `model.optimizer.learning_rate`, `get_weights`/`set_weights`.
"""

from __future__ import annotations

import csv
import http.server
import json
import math
import re
import socket
import threading
import urllib.parse
import warnings

import numpy as np
import pytest

from distkeras import callbacks, optimizers
from distkeras.backend import Variable
from distkeras.callbacks.callback import _HOOKS

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FakeOptimizer:
    def __init__(self, learning_rate=0.01):
        self.learning_rate = learning_rate


class FakeModel:
    def __init__(self, learning_rate=0.01):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.weights = [np.zeros(2), np.zeros(3)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


class FakeComm:
    def __init__(self, rank, size=2):
        self.rank, self.size = rank, size


def fit(cbs, epoch_logs, model=None, comm=None, steps=2, verbose=0, batch_logs=None):
    """A minimal `fit` loop: runs the hooks in Keras's order, one epoch per `epoch_logs` entry.

    Before each epoch's end the weights are set to the epoch index, so restoring
    the best weights can be checked. Returns (model, history, epochs run).
    """
    model = model or FakeModel()
    cb_list = callbacks.CallbackList(
        cbs, add_history=True, model=model, epochs=len(epoch_logs), steps=steps, verbose=verbose
    )
    if comm is not None:
        cb_list.set_communicator(comm)
    model.stop_training = False
    cb_list.on_train_begin()
    ran = 0
    logs = {}
    for epoch, logs in enumerate(epoch_logs):
        cb_list.on_epoch_begin(epoch)
        for step in range(steps):
            cb_list.on_train_batch_begin(step)
            cb_list.on_train_batch_end(step, dict(batch_logs or logs))
            if model.stop_training:
                break
        model.set_weights([np.full(2, float(epoch)), np.full(3, float(epoch))])
        logs = dict(logs)
        cb_list.on_epoch_end(epoch, logs)
        ran += 1
        if model.stop_training:
            break
    cb_list.on_train_end(logs)
    return model, model.history, ran


# -- Callback / CallbackList ---------------------------------------------------
class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name in _HOOKS:
            calls = object.__getattribute__(self, "calls")
            return lambda *args, **kwargs: calls.append((name, args, kwargs))
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("hook", _HOOKS)
def test_callback_list_forwards_every_hook(hook):
    rec = Recorder()
    cb_list = callbacks.CallbackList([rec])
    args = (
        ()
        if hook.endswith(
            ("train_begin", "train_end", "test_begin", "test_end", "predict_begin", "predict_end")
        )
        else (3,)
    )
    getattr(cb_list, hook)(*args, logs={"loss": np.float32(0.5)})
    assert len(rec.calls) == 1
    name, got_args, kwargs = rec.calls[0]
    assert name == hook and got_args[: len(args)] == args
    logs = kwargs.get("logs", got_args[-1])
    assert logs["loss"] == 0.5
    if "batch" in hook:
        assert "logs" in kwargs  # batch hooks get logs by keyword, as in Keras
    if hook in ("on_batch_end", "on_train_batch_end", "on_test_batch_end"):
        assert type(logs["loss"]) is float  # pythonified


def test_base_train_batch_hooks_call_legacy_aliases():
    seen = []

    class Legacy(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch))

    cb = Legacy()
    cb.on_train_batch_begin(1)
    cb.on_train_batch_end(1)
    assert seen == [("begin", 1), ("end", 1)]


def test_callback_list_defaults_params_model_communicator():
    hist, rec = callbacks.History(), callbacks.Callback()
    model = FakeModel()
    cb_list = callbacks.CallbackList(
        [[rec], hist], add_history=True, add_progbar=True, model=model, epochs=3, steps=7, verbose=0
    )
    kinds = [type(c).__name__ for c in cb_list.callbacks]
    assert kinds == ["Callback", "History", "ProgbarLogger"]  # no second History
    assert model.history is hist
    assert all(c.model is model for c in cb_list.callbacks)
    assert rec.params == {"epochs": 3, "steps": 7, "verbose": 0}
    assert all(c.is_coordinator for c in cb_list.callbacks)
    cb_list.set_communicator(FakeComm(1))
    assert not any(c.is_coordinator for c in cb_list.callbacks)
    cb_list.set_communicator(FakeComm(0))
    assert all(c.is_coordinator for c in cb_list.callbacks)
    with pytest.raises(TypeError, match="callback="):
        callbacks.CallbackList([object()])


def test_history_records_epochs():
    logs = [{"loss": 1.0, "val_loss": 2.0}, {"loss": 0.5, "val_loss": 1.5}]
    model, history, _ = fit([], logs)
    assert isinstance(history, callbacks.History)
    assert history.epoch == [0, 1]
    assert history.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.5]}


# -- LambdaCallback ------------------------------------------------------------
def test_lambda_callback_calls_functions_with_keras_signatures():
    seen = []
    cb = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(("eb", epoch)),
        on_epoch_end=lambda epoch, logs: seen.append(("ee", epoch, logs["loss"])),
        on_train_begin=lambda logs: seen.append(("tb",)),
        on_train_end=lambda logs: seen.append(("te",)),
        on_train_batch_begin=lambda batch, logs: seen.append(("bb", batch)),
        on_train_batch_end=lambda batch, logs: seen.append(("be", batch)),
        on_test_end=lambda logs: seen.append(("test_end",)),
    )
    fit([cb], [{"loss": 0.3}], steps=1)
    cb.on_test_end({})
    assert seen == [
        ("tb",),
        ("eb", 0),
        ("bb", 0),
        ("be", 0),
        ("ee", 0, 0.3),
        ("te",),
        ("test_end",),
    ]
    with pytest.raises(ValueError, match="on_epoch_middle"):
        callbacks.LambdaCallback(on_epoch_middle=print)


# -- TerminateOnNaN ------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_and_prints(bad, capsys):
    model, _, ran = fit([callbacks.TerminateOnNaN()], [{"loss": 1.0}] * 3, batch_logs={"loss": bad})
    assert model.stop_training and ran == 1
    assert capsys.readouterr().out == "Batch 0: Invalid loss, terminating training\n"


def test_terminate_on_nan_finite_loss_and_other_ranks(capsys):
    model, _, ran = fit([callbacks.TerminateOnNaN()], [{"loss": 1.0}] * 3)
    assert not model.stop_training and ran == 3
    model, _, _ = fit(
        [callbacks.TerminateOnNaN()],
        [{"loss": 1.0}],
        batch_logs={"loss": math.nan},
        comm=FakeComm(1),
    )
    assert model.stop_training  # decided on every rank
    assert capsys.readouterr().out == ""  # but printed on the coordinator only
    with pytest.raises(RuntimeError, match="batch 0"):
        fit(
            [callbacks.TerminateOnNaN(raise_error=True)],
            [{"loss": 1.0}],
            batch_logs={"loss": math.nan},
        )


# -- EarlyStopping -------------------------------------------------------------
# (kwargs, monitored values per epoch, epochs run, stopped_epoch, best_epoch), worked by
# hand from Keras's rule: improvement = op(current -/+ min_delta, best); stop when
# wait >= patience after a non-improving epoch > 0.
EARLY_STOPPING_CASES = [
    (dict(monitor="loss", patience=2), [1.0, 0.9, 0.95, 0.96, 0.5], 4, 3, 1),
    (dict(monitor="loss", patience=0), [1.0, 2.0, 3.0], 2, 1, 0),
    (dict(monitor="loss", patience=1, min_delta=0.1), [1.0, 0.95, 0.8], 2, 1, 0),
    (dict(monitor="loss", patience=1, min_delta=-0.1), [1.0, 0.95, 0.8], 2, 1, 0),  # abs()
    (dict(monitor="loss", patience=1, min_delta=0.01), [1.0, 0.95, 0.8, 0.795], 4, 3, 2),
    (dict(monitor="val_accuracy", patience=1), [0.5, 0.6, 0.55, 0.9], 3, 2, 1),
    (dict(monitor="val_accuracy", patience=1, mode="min"), [0.5, 0.6, 0.55], 2, 1, 0),
    (dict(monitor="val_mae", patience=1), [0.5, 0.6, 0.55], 2, 1, 0),
    (dict(monitor="loss", patience=2), [0.9, 0.95, 0.97], 3, 2, 0),
    (dict(monitor="loss", patience=2, baseline=0.5), [0.9, 0.95, 0.97], 2, 1, 0),
    (dict(monitor="loss", patience=2, baseline=0.5), [0.9, 0.8, 0.7, 0.6], 4, 0, 3),
    (dict(monitor="loss", patience=0, start_from_epoch=2), [1.0, 2.0, 3.0, 4.0], 4, 3, 2),
    (dict(monitor="loss", patience=5), [3.0, 2.0, 1.0], 3, 0, 2),
]


@pytest.mark.parametrize("kwargs, values, ran_expected, stopped, best_epoch", EARLY_STOPPING_CASES)
def test_early_stopping_table(kwargs, values, ran_expected, stopped, best_epoch):
    monitor = kwargs["monitor"]
    cb = callbacks.EarlyStopping(**kwargs)
    model, _, ran = fit([cb], [{monitor: v} for v in values])
    assert (ran, cb.stopped_epoch, cb.best_epoch) == (ran_expected, stopped, best_epoch)
    assert model.stop_training == (stopped > 0)
    assert cb.best == values[best_epoch]


@pytest.mark.parametrize("values, stops", [([1.0, 0.5, 0.7, 0.8], True), ([1.0, 0.5, 0.7], False)])
def test_early_stopping_restores_best_weights(values, stops, capsys):
    cb = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True, verbose=1)
    model, _, ran = fit([cb], [{"loss": v} for v in values])
    assert model.stop_training == stops
    # Keras 3 restores at the end of training, early-stopped or not.
    np.testing.assert_array_equal(model.weights[0], np.full(2, 1.0))
    out = capsys.readouterr().out
    assert ("Epoch 4: early stopping" in out) == stops
    assert "Restoring model weights from the end of the best epoch: 2." in out


def test_early_stopping_reuse_and_missing_monitor():
    cb = callbacks.EarlyStopping(monitor="loss", patience=1)
    fit([cb], [{"loss": 1.0}, {"loss": 2.0}])
    assert cb.stopped_epoch == 1
    fit([cb], [{"loss": 5.0}, {"loss": 4.0}])  # a fresh run forgets the old best
    assert cb.stopped_epoch == 0 and cb.best == 4.0
    with pytest.warns(UserWarning, match="val_loss.*Available metrics are: loss"):
        model, _, ran = fit([callbacks.EarlyStopping()], [{"loss": 1.0}] * 2)
    assert ran == 2 and not model.stop_training
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning away from the coordinator
        fit([callbacks.EarlyStopping()], [{"loss": 1.0}], comm=FakeComm(1))
    with pytest.warns(UserWarning, match="mode sideways is unknown"):
        assert callbacks.EarlyStopping(mode="sideways").mode == "auto"


def test_early_stopping_metric_direction_from_model():
    class Metric:
        name, _direction = "score", "up"

    model = FakeModel()
    model.metrics = [Metric()]
    cb = callbacks.EarlyStopping(monitor="val_score", patience=0)
    fit([cb], [{"val_score": v} for v in [1.0, 2.0, 3.0]], model=model)
    assert cb.stopped_epoch == 0  # increasing is improving for an "up" metric


def test_early_stopping_same_decision_on_every_rank(capsys):
    logs = [{"loss": v} for v in [1.0, 1.1, 1.2]]
    results = []
    for rank in (0, 1):
        cb = callbacks.EarlyStopping(monitor="loss", patience=1, verbose=1)
        model, _, ran = fit([cb], logs, comm=FakeComm(rank))
        results.append((ran, cb.stopped_epoch, cb.wait, model.stop_training))
        out = capsys.readouterr().out
        assert ("early stopping" in out) == (rank == 0)
    assert results[0] == results[1] == (2, 1, 1, True)


# -- LearningRateScheduler -----------------------------------------------------
def test_learning_rate_scheduler_two_and_one_argument(capsys):
    model, history, _ = fit(
        [callbacks.LearningRateScheduler(lambda e, lr: lr * 0.5, verbose=1)],
        [{"loss": 1.0}] * 3,
        model=FakeModel(1.0),
    )
    assert model.optimizer.learning_rate == 0.125
    assert history.history["learning_rate"] == [0.5, 0.25, 0.125]
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.125." in (
        capsys.readouterr().out
    )
    model, history, _ = fit(
        [callbacks.LearningRateScheduler(lambda e: 0.1 * (e + 1))],
        [{"loss": 1.0}] * 2,
        comm=FakeComm(1),
    )
    assert history.history["learning_rate"] == [0.1, 0.2]
    assert capsys.readouterr().out == ""


def test_learning_rate_scheduler_rejects_non_float():
    with pytest.raises(ValueError, match="learning_rate=1"):
        fit([callbacks.LearningRateScheduler(lambda e, lr: 1)], [{"loss": 1.0}])
    with pytest.raises(ValueError, match="schedule="):
        callbacks.LearningRateScheduler(0.1)


# -- ReduceLROnPlateau ---------------------------------------------------------
# (kwargs, monitored values, learning rates logged per epoch, final learning rate); hand-worked
# from Keras's rule (the cooldown counter is decremented before the wait check).
REDUCE_CASES = [
    (
        dict(factor=0.5, patience=1, cooldown=2, min_lr=0.2),
        [1.0] * 6,
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25],
        0.2,
    ),
    (
        dict(factor=0.5, patience=1, cooldown=1, min_lr=0.2),
        [1.0] * 6,
        [1.0, 1.0, 0.5, 0.25, 0.2, 0.2],
        0.2,
    ),
    (
        dict(factor=0.1, patience=2),
        [1.0, 0.9, 0.85, 0.85, 0.86, 0.8],
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.1],
        0.1,
    ),
    (
        dict(factor=0.5, patience=1, min_delta=0.2),
        [1.0, 0.9, 0.7, 0.69],
        [1.0, 1.0, 0.5, 0.5],
        0.25,
    ),
    (dict(monitor="val_accuracy", factor=0.5, patience=1), [0.5, 0.6, 0.7], [1.0] * 3, 1.0),
    (dict(monitor="val_accuracy", factor=0.5, patience=1), [0.5, 0.4, 0.3], [1.0, 1.0, 0.5], 0.25),
]


@pytest.mark.parametrize("kwargs, values, lrs, final_lr", REDUCE_CASES)
def test_reduce_lr_on_plateau_table(kwargs, values, lrs, final_lr):
    monitor = kwargs.get("monitor", "val_loss")
    model, history, _ = fit(
        [callbacks.ReduceLROnPlateau(**kwargs)],
        [{monitor: v} for v in values],
        model=FakeModel(1.0),
    )
    np.testing.assert_allclose(history.history["learning_rate"], lrs)
    assert model.optimizer.learning_rate == pytest.approx(final_lr)


def test_reduce_lr_on_plateau_errors_and_messages(capsys):
    with pytest.raises(ValueError, match="factor=1.5"):
        callbacks.ReduceLROnPlateau(factor=1.5)
    for rank, prints in ((0, True), (1, False)):
        cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, verbose=1)
        model, _, _ = fit([cb], [{"loss": 1.0}] * 2, model=FakeModel(1.0), comm=FakeComm(rank))
        assert model.optimizer.learning_rate == 0.5
        out = capsys.readouterr().out
        assert ("Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in out) == prints
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        fit([callbacks.ReduceLROnPlateau()], [{"loss": 1.0}])


# -- CSVLogger -----------------------------------------------------------------
def _read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    logs = [{"loss": 1.0, "accuracy": 0.5}, {"loss": 0.5, "accuracy": np.float32(0.75)}]
    fit([callbacks.CSVLogger(path)], logs)
    assert _read_csv(path) == [
        ["epoch", "accuracy", "loss"],
        ["0", "0.5", "1.0"],
        ["1", "0.75", "0.5"],
    ]
    fit([callbacks.CSVLogger(path, append=True)], logs[:1])
    assert _read_csv(path)[-1] == ["0", "0.5", "1.0"] and len(_read_csv(path)) == 4
    fit([callbacks.CSVLogger(path)], logs[:1])  # overwrite
    assert len(_read_csv(path)) == 2


def test_csv_logger_separator_missing_keys_and_iterables(tmp_path):
    path = tmp_path / "log.tsv"
    logs = [{"loss": 1.0, "per_class": np.array([1, 2])}, {"per_class": [3, 4]}]
    fit([callbacks.CSVLogger(str(path), separator="\t")], logs)
    rows = _read_csv(path, sep="\t")
    assert rows == [
        ["epoch", "loss", "per_class"],
        ["0", "1.0", '"[1, 2]"'],
        ["1", "NA", '"[3, 4]"'],
    ]


def test_csv_logger_only_on_coordinator(tmp_path):
    path = tmp_path / "log.csv"
    fit([callbacks.CSVLogger(path)], [{"loss": 1.0}], comm=FakeComm(1))
    assert not path.exists()


# -- ProgbarLogger -------------------------------------------------------------
STEP = r"\d+(us|ms|s)/step"


def test_progbar_logger_verbose_1(capsys):
    fit([callbacks.ProgbarLogger()], [{"loss": 0.5}, {"loss": 0.25}], steps=3, verbose=1)
    out = ANSI.sub("", capsys.readouterr().out)
    pattern = (
        rf"Epoch 1/2\n3/3 ━{{20}} \d+s {STEP} - loss: 0\.5000\n"
        rf"Epoch 2/2\n3/3 ━{{20}} \d+s {STEP} - loss: 0\.2500\n"
    )
    assert re.fullmatch(pattern, out), out


def test_progbar_logger_verbose_2_and_0(capsys):
    logs = [{"accuracy": 0.9, "loss": 0.5, "val_loss": 0.75}]
    fit([callbacks.ProgbarLogger()], logs, steps=47, verbose=2)
    out = capsys.readouterr().out
    pattern = rf"47/47 - \d+s - {STEP} - accuracy: 0\.9000 - loss: 0\.5000 - val_loss: 0\.7500\n"
    assert re.fullmatch(pattern, out), out  # one epoch: no "Epoch 1/1" header, as Keras
    fit([callbacks.ProgbarLogger()], logs * 2, steps=3, verbose=0)
    assert capsys.readouterr().out == ""


def test_progbar_logger_silent_off_coordinator(capsys):
    fit([callbacks.ProgbarLogger()], [{"loss": 0.5}] * 2, steps=3, verbose=1, comm=FakeComm(1))
    assert capsys.readouterr().out == ""


def test_progbar_logger_live_bar_and_evaluate(capsys):
    cb = callbacks.ProgbarLogger()
    cb.set_params({"epochs": 1, "steps": 2, "verbose": 1})
    cb.on_test_begin()
    cb.progbar._dynamic_display, cb.progbar.interval = True, 0
    cb.on_test_batch_end(0, {"loss": 0.75})
    cb.on_test_end({"loss": 0.5})
    out = ANSI.sub("", capsys.readouterr().out)
    assert re.fullmatch(
        rf"\r1/2 ━{{10}}━{{10}} \d+s {STEP} - loss: 0\.7500"
        rf"\r2/2 ━{{20}} \d+s {STEP} - loss: 0\.5000 *\n",
        out,
    ), out


# -- RemoteMonitor --------------------------------------------------------------
class _Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def no_proxy(monkeypatch):
    """Loopback requests must not go through a proxy configured in the environment."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def loopback_server(no_proxy):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


EPOCH_LOGS = [{"loss": np.float32(0.5), "acc": np.float64(0.25)}, {"loss": 0.125, "acc": 0.75}]


def test_remote_monitor_posts_form_encoded_json(loopback_server):
    root = f"http://127.0.0.1:{loopback_server.server_port}"
    fit([callbacks.RemoteMonitor(root=root, path="/publish/", field="payload")], EPOCH_LOGS)
    received = loopback_server.received
    assert [path for path, _, _ in received] == ["/publish/", "/publish/"]
    assert received[0][1]["Content-Type"] == "application/x-www-form-urlencoded"
    sent = [json.loads(urllib.parse.parse_qs(body.decode())["payload"][0]) for *_, body in received]
    assert sent == [
        {"epoch": 0, "loss": 0.5, "acc": 0.25},
        {"epoch": 1, "loss": 0.125, "acc": 0.75},
    ]


def test_remote_monitor_send_as_json_with_headers(loopback_server):
    root = f"http://127.0.0.1:{loopback_server.server_port}"
    cb = callbacks.RemoteMonitor(root=root, headers={"X-Run": "seven"}, send_as_json=True)
    fit([cb], EPOCH_LOGS[:1])
    ((path, headers, body),) = loopback_server.received
    assert path == "/publish/epoch/end/"
    assert headers["Content-Type"] == "application/json" and headers["X-Run"] == "seven"
    assert json.loads(body) == {"epoch": 0, "loss": 0.5, "acc": 0.25}


def test_remote_monitor_posts_only_on_the_coordinator(loopback_server):
    root = f"http://127.0.0.1:{loopback_server.server_port}"
    fit([callbacks.RemoteMonitor(root=root)], EPOCH_LOGS, comm=FakeComm(rank=1))
    assert loopback_server.received == []
    fit([callbacks.RemoteMonitor(root=root)], EPOCH_LOGS, comm=FakeComm(rank=0))
    assert len(loopback_server.received) == 2


def test_remote_monitor_unreachable_server_warns(no_proxy):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    root = f"http://127.0.0.1:{port}"
    with pytest.warns(
        UserWarning, match=re.escape(f"Could not reach RemoteMonitor root server at {root}")
    ):
        fit([callbacks.RemoteMonitor(root=root, timeout=5)], EPOCH_LOGS[:1])


# -- SwapEMAWeights -------------------------------------------------------------
class EMAModel:
    """Two variables trained by a real optimizer with `use_ema=True`."""

    def __init__(self, use_ema=True):
        self.stop_training = False
        self.trainable_variables = [Variable(np.array([1.0, -2.0])), Variable(np.array([[0.5]]))]
        self.optimizer = optimizers.SGD(learning_rate=0.1, use_ema=use_ema, ema_momentum=0.5)

    def train_step(self, scale=1.0):
        grads = [scale * np.array([1.0, 3.0]), scale * np.array([[-2.0]])]
        self.optimizer.apply(grads, self.trainable_variables)

    def values(self):
        return [v.numpy().copy() for v in self.trainable_variables]

    def averages(self):
        return [s.numpy().copy() for s in self.optimizer._ema_slots]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("phase", ["test", "predict"])
def test_swap_ema_weights_around_evaluation_and_prediction(phase):
    model = EMAModel()
    for k in range(3):
        model.train_step(scale=k + 1.0)
    raw, ema = model.values(), model.averages()
    assert not _same(raw, ema)
    cbs = callbacks.CallbackList([callbacks.SwapEMAWeights()], model=model, epochs=1)
    getattr(cbs, f"on_{phase}_begin")()
    assert _same(model.values(), ema) and _same(model.averages(), raw)
    getattr(cbs, f"on_{phase}_end")()
    assert _same(model.values(), raw) and _same(model.averages(), ema)


def test_swap_ema_weights_on_epoch_boundaries_and_final_epoch():
    model = EMAModel()
    cbs = callbacks.CallbackList([callbacks.SwapEMAWeights(swap_on_epoch=True)], model=model)
    cbs.set_params({"epochs": 2})
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    model.train_step()
    model.train_step(2.0)
    raw, ema = model.values(), model.averages()
    cbs.on_epoch_end(0)
    assert _same(model.values(), ema)  # e.g. a checkpoint here saves the averages
    cbs.on_test_begin()  # already swapped: validation keeps the averages
    assert _same(model.values(), ema)
    cbs.on_test_end()
    assert _same(model.values(), raw)
    cbs.on_epoch_begin(1)
    assert _same(model.values(), raw)
    model.train_step(3.0)
    ema = model.averages()
    cbs.on_epoch_end(1)
    # Last epoch: the model keeps the averages and the optimizer's copy agrees with them.
    assert _same(model.values(), ema) and _same(model.averages(), ema)
    model.optimizer.finalize_variable_values(model.trainable_variables)
    assert _same(model.values(), ema)


def test_swap_ema_weights_requires_use_ema():
    model = EMAModel(use_ema=False)
    model.train_step()
    cbs = callbacks.CallbackList([callbacks.SwapEMAWeights()], model=model)
    with pytest.raises(ValueError, match="use_ema=False"):
        cbs.on_test_begin()


def test_which_callbacks_decide_per_batch(tmp_path):
    """fit syncs decisions every step only for callbacks that can make them mid-epoch."""
    from distkeras import callbacks as cb

    class Mine(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    class EpochOnly(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    deciders = [
        Mine(),
        cb.TerminateOnNaN(),
        cb.LambdaCallback(on_train_batch_end=lambda b, logs: None),
        cb.LearningRateWarmup(warmup_epochs=1, steps_per_epoch=2),
    ]
    quiet = [
        EpochOnly(),
        cb.History(),
        cb.CSVLogger(str(tmp_path / "log.csv")),
        cb.ModelCheckpoint(str(tmp_path / "m.weights.dkw"), save_weights_only=True),
        cb.BackupAndRestore(str(tmp_path / "b"), save_freq=2),
        cb.EarlyStopping(),
        cb.ReduceLROnPlateau(),
    ]
    assert [c.decides_per_batch() for c in deciders] == [True] * len(deciders)
    assert [c.decides_per_batch() for c in quiet] == [False] * len(quiet)
