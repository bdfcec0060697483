"""The sharded (ZeRO-1) optimizer step: each replica updates one shard of the flat buffer.

Replicas run in threads of one process, with a real gather between them, so
every optimizer configuration that can shard is checked bitwise against the
whole-buffer update without launching MPI (tests/models/test_data_parallel.py
runs it under mpirun).
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import optimizers
from distkeras.backend import Variable
from distkeras.backend.buffers import FlatBuffer
from tests.test_optimizers import FLAT_CASES, _data


class _Replicas:
    """`size` optimizer replicas in one process, each updating its shard (as ranks do).

    Each replica steps in its own thread; the gather is a real collective
    between them: every replica waits for all, copies the other shards from
    their owners, and waits again before going on.
    """

    def __init__(self, cls, kwargs, size, params):
        import threading

        self.size = size
        self.vars = [[Variable(p) for p in params] for _ in range(size)]
        self.opts = [cls(**kwargs) for _ in range(size)]
        self.bufs = [FlatBuffer(v) for v in self.vars]
        self.barrier = threading.Barrier(size)

    def bounds(self, r):
        n = self.bufs[0].size
        base, extra = divmod(n, self.size)
        lo = r * base + min(r, extra)
        return lo, lo + base + (1 if r < extra else 0)

    def _arrays(self, r):
        st = self.opts[r]._flat[id(self.bufs[r])]
        return [self.bufs[r].data, *st.slots]

    def gather_for(self, r):
        def gather(flat):
            k = next(i for i, a in enumerate(self._arrays(r)) if a is flat)
            self.barrier.wait()
            for q in range(self.size):
                if q != r:
                    lo, hi = self.bounds(q)
                    flat[lo:hi] = self._arrays(q)[k][lo:hi]
            self.barrier.wait()
            return flat

        return gather

    def _step_one(self, r, gs):
        buf = self.bufs[r]
        for view, g in zip(buf.views_of(buf.grad), gs):
            view[...] = g
        lo, hi = self.bounds(r)
        self.opts[r].apply_flat_shard(buf, lo, hi, buf.grad[lo:hi].copy(), self.gather_for(r))

    def run(self, fn):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.size) as pool:
            for f in [pool.submit(fn, r) for r in range(self.size)]:
                f.result(timeout=30)

    def step(self, gs):
        self.run(lambda r: self._step_one(r, gs))


SHARD_CASES = {
    k: v
    for k, v in FLAT_CASES.items()
    if not ({"clipnorm", "global_clipnorm", "gradient_accumulation_steps"} & set(v[1]))
}


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def update_threads(request, monkeypatch):
    """The shard's update on one thread, or split into blocks over two."""
    from distkeras.optimizers import _flat

    monkeypatch.setattr(_flat, "_MIN_CHUNK", 4)
    optimizers.set_update_threads(request.param)
    yield request.param
    optimizers.set_update_threads(None)


@pytest.mark.parametrize("case", sorted(SHARD_CASES))
def test_sharded_update_equals_the_flat_update_bitwise(case, update_threads):
    """Each of 3 replicas updates a third of the buffer: the same bits as the whole update."""
    cls, kwargs = SHARD_CASES[case]
    # 750 values: shards of 250, two 128-aligned blocks each on two threads.
    params, grads = _data(1, "float32", shapes=[(30, 20), (150,)])
    whole = [Variable(p) for p in params]
    opt = cls(**kwargs)
    buf = FlatBuffer(whole)
    reps = _Replicas(cls, kwargs, 3, params)
    assert reps.opts[0].shardable(reps.vars[0])
    for gs in grads:
        for view, g in zip(buf.views_of(buf.grad), gs):
            view[...] = g
        opt.apply_flat(buf)
        reps.step(gs)
        for vs in reps.vars:
            for a, b in zip(vs, whole):
                assert np.array_equal(a.numpy(), b.numpy())
    for o in reps.opts:
        with pytest.raises(RuntimeError, match="sync_shards"):
            o.variables  # noqa: B018 - the read is what is tested
    reps.run(lambda r: reps.opts[r].sync_shards())
    for r, o in enumerate(reps.opts):
        for a, b in zip(o.variables, opt.variables):
            assert np.array_equal(a.numpy(), b.numpy()), (r, a.path)


def test_shardable_excludes_what_needs_whole_variables():
    vs = [Variable(np.ones(3)), Variable(np.ones(2))]
    assert optimizers.Adam().shardable(vs)
    assert optimizers.AdamW(weight_decay=0.1).shardable(vs)
    for kwargs in ({"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"gradient_accumulation_steps": 2}):
        assert not optimizers.Adam(**kwargs).shardable(vs)
    spared = optimizers.AdamW(weight_decay=0.1)
    spared.exclude_from_weight_decay(var_list=[vs[1]])
    assert not spared.shardable(vs)
