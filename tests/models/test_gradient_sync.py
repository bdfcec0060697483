"""distkeras.distributed.data_parallel.GradientSync in one process: what reaches the wire
and the update (the multi-rank behaviour is in test_custom_step_parallel.py)."""

from __future__ import annotations

import numpy as np

from distkeras import optimizers
from distkeras.backend import Variable
from distkeras.distributed import LocalCommunicator
from distkeras.distributed.data_parallel import GradientSync


def _vars():
    return [Variable(np.ones((2, 3), "float32")), Variable(np.zeros(4, "float32"))]


def _grads():
    return [np.full((2, 3), 2.0, "float32"), np.arange(4, dtype="float32")]


def test_apply_weights_local_gradients_by_the_batch_share_before_one_reduce():
    sent = []
    sync = GradientSync(LocalCommunicator())
    sync.reducer = lambda flat: sent.append(flat.copy())
    sync.share = 0.25  # this rank's 5 of a global batch of 20
    opt = optimizers.SGD(1.0)
    opt.gradient_sync = sync
    variables = _vars()
    opt.apply(_grads(), variables)
    assert len(sent) == 1  # every gradient packed into one array, one reduction
    want = 0.25 * np.concatenate([g.ravel() for g in _grads()])
    np.testing.assert_array_equal(sent[0], want)
    np.testing.assert_array_equal(variables[0].numpy(), 1.0 - 0.25 * 2.0)
    np.testing.assert_array_equal(variables[1].numpy(), -0.25 * np.arange(4))


def test_without_a_share_the_reduction_is_a_plain_mean_over_ranks():
    class TwoRanks(LocalCommunicator):
        size = 2  # the sum of two identical replicas' gradients, as a 2-rank run would see

        def allreduce(self, arrays, op="sum", **kwargs):
            for a in arrays:
                a *= 2
            return arrays

    opt = optimizers.SGD(1.0)
    opt.gradient_sync = GradientSync(TwoRanks())
    variables = _vars()
    opt.apply(_grads(), variables)
    np.testing.assert_allclose(variables[0].numpy(), 1.0 - 2.0)  # mean of (2, 2) is 2
    np.testing.assert_allclose(variables[1].numpy(), -np.arange(4))


def test_deterministic_mode_defers_the_update_and_sums_micro_shards_in_order():
    comm = LocalCommunicator(deterministic=True)
    sync = GradientSync(comm)
    opt = optimizers.SGD(1.0)
    opt.gradient_sync = sync
    variables = _vars()
    sync.begin_micro_shards(opt)
    for j, share in enumerate((0.5, 0.5)):
        sync.next_micro_shard(j, 2)
        sync.share = share
        opt.apply([g * (j + 1) for g in _grads()], variables)
        np.testing.assert_array_equal(variables[0].numpy(), 1.0)  # nothing applied yet
    sync.end_micro_shards()
    assert int(opt.iterations.numpy()) == 1  # one update for the global batch
    # 0.5 * g + 0.5 * 2g = 1.5 g
    np.testing.assert_allclose(variables[0].numpy(), 1.0 - 1.5 * 2.0)
    np.testing.assert_allclose(variables[1].numpy(), -1.5 * np.arange(4))
