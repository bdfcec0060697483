"""distkeras.horovod in one process: API surface, argument checks, the optimizer's
local aggregation and the learning-rate callbacks (multi-rank behaviour is in
test_horovod_mpi.py)."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras as keras
import distkeras.distributed as dist
import distkeras.horovod as hvd
import distkeras.horovod.keras as hvd_keras


@pytest.fixture
def horovod():
    hvd.init()
    yield hvd
    hvd.shutdown()


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)).astype("float32"), rng.standard_normal((n, 1)).astype(
        "float32"
    )


def _model(optimizer, seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_uninitialized_calls_say_to_call_init():
    hvd.shutdown()
    with pytest.raises(ValueError, match=r"hvd\.init\(\)"):
        hvd.size()
    with pytest.raises(ValueError, match=r"hvd\.init\(\)"):
        hvd.DistributedOptimizer(keras.optimizers.SGD())


def test_keras_alias_has_horovods_names(horovod):
    for name in (
        "init rank size local_rank local_size cross_rank cross_size DistributedOptimizer "
        "allreduce broadcast allgather broadcast_object allgather_object join Average Sum "
        "Compression callbacks load_model"
    ).split():
        assert getattr(hvd_keras, name) is getattr(hvd, name), name
    assert (hvd.size(), hvd.rank(), hvd.local_rank(), hvd.local_size()) == (1, 0, 0, 1)
    for cb in (
        "BroadcastGlobalVariablesCallback",
        "MetricAverageCallback",
        "LearningRateWarmupCallback",
        "LearningRateScheduleCallback",
    ):
        assert hasattr(hvd.callbacks, cb)


def test_init_switches_models_to_per_process_and_shutdown_back(horovod):
    assert isinstance(dist.model_communicator(), dist.LocalCommunicator)
    assert dist.model_communicator() is not dist.get_communicator()
    hvd.shutdown()
    assert dist.model_communicator() is dist.get_communicator()


def test_unsupported_features_are_named(horovod):
    with pytest.raises(NotImplementedError, match="Adasum"):
        hvd.DistributedOptimizer(keras.optimizers.SGD(), op=hvd.Adasum)
    with pytest.raises(NotImplementedError, match="Adasum"):
        hvd.allreduce(np.ones(2), op=hvd.Adasum)
    with pytest.raises(ValueError, match=r"Received: op='min'"):
        hvd.DistributedOptimizer(keras.optimizers.SGD(), op=hvd.Min)
    with pytest.raises(NotImplementedError, match="process sets"):
        hvd.DistributedOptimizer(keras.optimizers.SGD(), process_set=object())
    with pytest.raises(NotImplementedError, match="sub-communicator"):
        hvd.init(comm=[0, 1])
    with pytest.raises(NotImplementedError, match="Compression"):
        hvd.allreduce(np.ones(2), compression=object())
    with pytest.raises(NotImplementedError, match="alltoall"):
        hvd.alltoall(np.ones(2))
    with pytest.raises(ValueError, match=r"Received: backward_passes_per_step=0"):
        hvd.DistributedOptimizer(keras.optimizers.SGD(), backward_passes_per_step=0)
    with pytest.raises(ValueError, match=r"op != Average"):
        hvd.DistributedOptimizer(keras.optimizers.SGD(), op=hvd.Sum, gradient_predivide_factor=2.0)
    with pytest.raises(ValueError, match="supersedes"):
        hvd.allreduce(np.ones(2), average=True, op=hvd.Sum)
    with pytest.raises(TypeError, match="numeric"):
        hvd.allreduce(np.array(["a"]))


def test_distributed_optimizer_keeps_class_name_and_config(horovod):
    base = keras.optimizers.Adam(0.003, beta_1=0.8)
    opt = hvd.DistributedOptimizer(base)
    assert isinstance(opt, keras.optimizers.Adam) and opt is not base
    assert type(opt).__name__ == "Adam"
    assert opt.get_config() == base.get_config()
    spec = keras.saving.serialize_keras_object(opt)
    assert spec["class_name"] == "Adam"
    assert hvd.DistributedOptimizer(base, name="renamed").name == "renamed"
    with pytest.raises(ValueError, match="already a DistributedOptimizer"):
        hvd.DistributedOptimizer(opt)


def test_one_process_fit_equals_plain_optimizer(horovod):
    x, y = _data()
    plain = _model(keras.optimizers.SGD(0.1, momentum=0.5))
    plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    wrapped = _model(hvd.DistributedOptimizer(keras.optimizers.SGD(0.1, momentum=0.5)))
    wrapped.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(plain.weights, wrapped.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_backward_passes_per_step_averages_like_a_double_batch(horovod):
    # Two passes of 8 averaged = one pass of 16 at the same weights (equal halves, mean loss).
    x, y = _data()
    big = _model(keras.optimizers.SGD(0.1))
    big.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    opt = hvd.DistributedOptimizer(
        keras.optimizers.SGD(0.1), backward_passes_per_step=2, average_aggregated_gradients=True
    )
    acc = _model(opt)
    acc.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(opt.iterations.numpy()) == 2  # 4 passes, 2 updates
    for a, b in zip(big.weights, acc.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_fp16_compression_rounds_gradients_in_one_process(horovod):
    g = np.array([1.0 + 2.0**-13, 0.1], dtype="float32")  # not representable in float16
    v = keras.Variable(np.zeros(2, dtype="float32"))
    opt = hvd.DistributedOptimizer(keras.optimizers.SGD(1.0), compression=hvd.Compression.fp16)
    opt.apply([g], [v])
    np.testing.assert_array_equal(v.numpy(), -g.astype(np.float16).astype(np.float32))
    assert hvd.allreduce(g, compression=hvd.Compression.fp16).dtype == np.float32


def _lr_probe(model, seen):
    return keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(float(model.optimizer.learning_rate))
    )


def test_schedule_callback_staircase_and_per_batch(horovod):
    x, y = _data()
    model = _model(keras.optimizers.SGD(0.3))
    seen = []
    cb = hvd.callbacks.LearningRateScheduleCallback(initial_lr=0.1, multiplier=0.5, start_epoch=1)
    hist = model.fit(
        x, y, batch_size=16, epochs=3, verbose=0, callbacks=[cb, _lr_probe(model, seen)]
    )
    # Epoch 0 is before start_epoch: the compiled rate; then 0.1 * 0.5 ** epoch.
    np.testing.assert_allclose(seen, [0.3, 0.3, 0.05, 0.05, 0.025, 0.025], rtol=1e-6)
    np.testing.assert_allclose(hist.history["lr"], [0.3, 0.05, 0.025], rtol=1e-6)

    model = _model(keras.optimizers.SGD(0.3))
    seen = []
    cb = hvd.callbacks.LearningRateScheduleCallback(
        initial_lr=0.2, multiplier=lambda e: 1.0 + e, staircase=False
    )
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb, _lr_probe(model, seen)])
    want = [0.2 * (1 + e + b / 4) for e in range(2) for b in range(4)]  # 4 steps per epoch
    np.testing.assert_allclose(seen, want, rtol=1e-6)


def test_warmup_in_one_process_is_the_target_rate(horovod):
    # size 1: initial_lr / 1 * (t * 0 / warmup + 1) = initial_lr on every batch.
    x, y = _data()
    model = _model(keras.optimizers.SGD(0.3))
    seen = []
    cb = hvd.callbacks.LearningRateWarmupCallback(initial_lr=0.07, warmup_epochs=1)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb, _lr_probe(model, seen)])
    np.testing.assert_allclose(seen, [0.07] * 4, rtol=1e-6)


def test_schedule_callback_needs_initial_lr():
    with pytest.raises(ValueError, match="initial_lr"):
        hvd.callbacks.LearningRateScheduleCallback(initial_lr=None, multiplier=1.0)
