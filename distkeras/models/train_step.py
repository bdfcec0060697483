"""The gradient step of `fit`: forward and backward, the gradient reducer, the update.

Gradients land in one fused flat buffer (`FlatBuffer`) whose slices are the
variables' gradient slots (backward writes the fused Dense weight gradients
straight into them). In a data-parallel run the buffer is all-reduced before
the optimizer's flat update: in one blocking call, bucket by bucket during
backward (`overlap_allreduce`), or, in deterministic mode, as fixed
micro-shards gathered and summed in a world-size independent order.
"""

from __future__ import annotations

import os
from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import GradientTape, backward, no_grad
from distkeras.backend.buffers import FlatBuffer
from distkeras.backend.random import sample_stream
from distkeras.models import data_adapter as da


def micro_shard_count(world_size: int) -> int:
    """Micro-shards per global batch in deterministic mode ($DISTKERAS_MICRO_SHARDS, default 4)."""
    k = int(os.environ.get("DISTKERAS_MICRO_SHARDS", "4"))
    if world_size > k:
        raise ValueError(
            f"Deterministic mode cuts each global batch into {k} micro-shards, fewer than the "
            f"{world_size} ranks; set DISTKERAS_MICRO_SHARDS to a multiple of the world size. "
            f"Received: world_size={world_size}"
        )
    return k


class _TrainState:
    """Fused parameters/gradients for the current set of trainable variables."""

    def __init__(self, variables: list):
        self.variables = variables
        self.key = tuple(id(v) for v in variables)
        dtypes = {v.data.dtype for v in variables}
        self.buffer = FlatBuffer(variables) if variables and len(dtypes) == 1 else None
        # Backward may write a weight's gradient straight into its slot of the buffer.
        self.sinks = (
            {id(v): view for v, view in zip(self.buffer.variables, self.buffer.grad_views)}
            if self.buffer is not None
            else None
        )

    def matches(self, variables: list) -> bool:
        return self.key == tuple(id(v) for v in variables) and (
            self.buffer is None or self.buffer.is_intact()
        )


class TrainStep:
    """Mixin: the training step and its gradient reduction (see the module docstring)."""

    def _forward_backward(
        self, x: Any, y: Any, sw: Any, global_bs: int, hook: Any = None
    ) -> tuple[dict, Any, float]:
        """One shard's forward and backward: (leaf gradients, predictions, tracker value)."""
        local_bs = len(da.flatten_struct(x)[0])
        self._clear_losses()
        with GradientTape():
            y_pred = self(x, training=True)
            loss, tracker_value = self._loss_terms(y, y_pred, sw, global_bs, local_bs)
        state = self._train_state
        sinks = state.sinks if state is not None else None
        grads = backward(loss, hook=hook, sinks=sinks) if loss.requires_grad else {}
        return grads, y_pred, tracker_value

    def _write_flat_grads(self, grads: dict, buf: FlatBuffer) -> None:
        for view, v in zip(buf.grad_views, buf.variables):
            g = grads.get(id(v))
            if g is None:
                view.fill(0)
            elif g is not view:  # already there when backward wrote into its sink
                view[...] = g

    def _train_step(self, x: Any, y: Any, sw: Any, global_bs: int) -> None:
        state = self._train_state
        buf = state.buffer
        comm = self._communicator()
        if getattr(comm, "deterministic", False) and buf is not None:
            self._deterministic_step(x, y, sw, global_bs, buf)
            return
        local_bs = len(da.flatten_struct(x)[0])
        if buf is not None and comm.size > 1 and self.overlap_allreduce:
            y_pred, tracker_value = self._overlapped_step(x, y, sw, global_bs, buf)
        elif buf is not None:
            grads, y_pred, tracker_value = self._forward_backward(x, y, sw, global_bs)
            self._write_flat_grads(grads, buf)
            if self._shards_update(comm, buf):
                lo, hi = comm.shard_range(buf.size)
                shard = comm.reduce_scatter(buf.grad, op="sum")
                self.optimizer.apply_flat_shard(buf, lo, hi, shard, comm.allgather_shards)
            else:
                self._reduce_gradients(buf.grad)
                self.optimizer.apply_flat(buf)
        else:
            grads, y_pred, tracker_value = self._forward_backward(x, y, sw, global_bs)
            glist = [grads.get(id(v)) for v in state.variables]
            glist = [
                current_module().zeros_like(v.data) if g is None else g
                for g, v in zip(glist, state.variables)
            ]
            for g in glist:
                self._reduce_gradients(g)
            self.optimizer.apply(glist, state.variables)
        with no_grad():
            self._update_state(tracker_value, local_bs, y, y_pred, sw)

    def _shards_update(self, comm: Any, buf: FlatBuffer) -> bool:
        """True when each rank updates only its shard of the parameters (ZeRO-1).

        The gradient is reduce-scattered instead of all-reduced, each rank
        runs the optimizer on its shard, and the parameters are all-gathered:
        the same bytes on the wire as an all-reduce, 1/N of the optimizer's
        work per rank. Used inside `fit` (which makes the slots whole at each
        epoch end, before checkpoints and when it returns; `train_on_batch`
        keeps the all-reduce step) on MPI for N > 1 unless DISTKERAS_SHARD_UPDATE=0,
        float16 compression, a custom `gradient_reducer`, or an optimizer
        whose step is not elementwise over the flat buffer (norm clipping,
        gradient accumulation, weight decay sparing some variables).
        """
        return (
            self.shard_update
            and self._in_fit
            and comm.size > 1
            and comm.native_shards
            and not comm.compression
            and self.gradient_reducer is None
            and self.optimizer.shardable(buf.variables)
        )

    def _overlapped_step(self, x: Any, y: Any, sw: Any, global_bs: int, buf: FlatBuffer):
        """Backward that starts each bucket's all-reduce as soon as its gradients are final.

        Buckets are runs of consecutive variables, taken from the last layer
        backwards (the order backward finishes them), each a contiguous slice
        of the flat gradient buffer, so a bucket is reduced with no packing.
        """
        comm = self._communicator()
        buckets = self._buckets(buf)
        remaining = [hi - lo for lo, hi in buckets]
        owner = {}
        for b, (lo, hi) in enumerate(buckets):
            for i in range(lo, hi):
                owner[i] = b
        seen: set[int] = set()
        handles: list = []
        started: set[int] = set()

        def start(b: int) -> None:
            lo, hi = buckets[b]
            end = buf.offsets[hi] if hi < len(buf.offsets) else buf.size
            handles.append(comm.allreduce_async(buf.grad[buf.offsets[lo] : end], op="sum"))
            started.add(b)

        def hook(leaf: Any, g: Any) -> None:
            i = buf.index.get(id(leaf))
            if i is None:
                return
            if g is not buf.grad_views[i]:
                buf.grad_views[i][...] = g
            seen.add(i)
            b = owner[i]
            remaining[b] -= 1
            if remaining[b] == 0:
                start(b)

        _, y_pred, tracker_value = self._forward_backward(x, y, sw, global_bs, hook=hook)
        for b in range(len(buckets)):
            if b not in started:
                lo, hi = buckets[b]
                for i in range(lo, hi):
                    if i not in seen:
                        buf.grad_views[i].fill(0)
                start(b)
        for h in handles:
            h.wait()
        self.optimizer.apply_flat(buf)
        return y_pred, tracker_value

    def _buckets(self, buf: FlatBuffer) -> list[tuple[int, int]]:
        """[lo, hi) variable ranges of about `bucket_bytes`, last variables first."""
        key = (id(buf), self.bucket_bytes)
        cached = getattr(self, "_bucket_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        itemsize = buf.data.itemsize
        out: list[tuple[int, int]] = []
        hi = len(buf.variables)
        size = 0
        for i in range(len(buf.variables) - 1, -1, -1):
            size += int(buf.variables[i].data.size) * itemsize
            if size >= self.bucket_bytes or i == 0:
                out.append((i, hi))
                hi, size = i, 0
        self._bucket_cache = (key, out)
        return out

    def _deterministic_step(self, x: Any, y: Any, sw: Any, global_bs: int, buf: FlatBuffer) -> None:
        """Gradients per fixed micro-shard, summed in a fixed tree order on every rank.

        The global batch is cut into `micro_shards` pieces whatever the world
        size; rank r computes the pieces `shard_bounds(K, r, size)` one by one,
        every rank gathers all K gradients and sums them pairwise in index
        order, so 1, 2 or 4 ranks produce bitwise-identical weights. Each
        piece's forward runs in a `sample_stream` at its global offset, so
        Dropout and the other random layers draw the same noise per sample
        whichever rank computes it.
        """
        comm = self._communicator()
        seed, step = self._sample_stream_key()
        k_total = micro_shard_count(comm.size)
        k_lo, k_hi = da.shard_bounds(k_total, comm.rank, comm.size)
        start = da.shard_bounds(global_bs, k_lo, k_total)[0]
        mine = current_module().zeros((max(k_hi - k_lo, 1), buf.size), dtype=buf.dtype)
        for j, k in enumerate(range(k_lo, k_hi)):
            lo, hi = da.shard_bounds(global_bs, k, k_total)
            if hi == lo:
                continue
            px, py, psw = (
                da.map_struct(lambda a, lo=lo, hi=hi: a[lo - start : hi - start], d)
                for d in (x, y, sw)
            )
            with sample_stream(seed, step, lo, hi - lo):
                grads, y_pred, tracker_value = self._forward_backward(px, py, psw, global_bs)
            self._write_flat_grads(grads, buf)
            mine[j] = buf.grad
            with no_grad():
                self._update_state(tracker_value, hi - lo, py, y_pred, psw)
        if comm.size > 1:
            parts = comm.allgather(mine[: k_hi - k_lo] if k_hi > k_lo else mine[:0])
            rows = [row for part in parts for row in part]
        else:
            rows = list(mine[: k_hi - k_lo])
        while len(rows) > 1:
            paired = [rows[i] + rows[i + 1] for i in range(0, len(rows) - 1, 2)]
            rows = paired + ([rows[-1]] if len(rows) % 2 else [])
        buf.grad[...] = rows[0]
        self.optimizer.apply_flat(buf)

    def _sample_stream_key(self) -> tuple[int, int]:
        """(seed, step) keying the per-sample random streams of a deterministic step.

        In `fit`: fit's broadcast seed and the global step (both restored on
        resume); in `train_on_batch`: a seed broadcast once per model and a call count.
        """
        if self._in_fit:
            return int(self._fit_context["seed"]), int(self._global_step)
        if getattr(self, "_on_batch_stream", None) is None:
            self._on_batch_stream = [self._shared_seed(), 0]
        self._on_batch_stream[1] += 1
        return self._on_batch_stream[0], self._on_batch_stream[1]

    def _reduce_gradients(self, flat: Any) -> None:
        if self.gradient_reducer is not None:
            self.gradient_reducer(flat)
            return
        comm = self._communicator()
        if comm.size > 1:
            comm.allreduce([flat], op="sum")
