"""The training step: Keras 3's overridable `train_step`, and the fast built-in one.

`fit` and `train_on_batch` call `self.train_step(data)` once per batch (once
per micro-shard in deterministic mode). The built-in step is Keras's:
forward under the tape -> `compute_loss` -> gradients -> update -> metrics,
with two speed-ups a user's step does not need to know about: backward
writes the gradients straight into one fused flat buffer (`FlatBuffer`)
whose slices are the variables' gradient slots, and the update runs over
that buffer at once. Gradient sync across ranks lives in
`distkeras.distributed.data_parallel`; a user's `train_step` reaches it
through `self.optimizer.apply(grads, self.trainable_weights)`.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from distkeras.backend import current_module, to_numpy
from distkeras.backend.autodiff import GradientTape, backward, no_grad
from distkeras.backend.buffers import FlatBuffer
from distkeras.backend.random import sample_stream
from distkeras.models import data_adapter as da
from distkeras.models.loss_and_metrics import (
    _batch_size,
    pack_x_y_sample_weight,
    unpack_x_y_sample_weight,
)


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


class _Part(NamedTuple):
    """One shard's forward, kept for its backward (see `TrainStep._train_forward`)."""

    x: Any
    y: Any
    sw: Any
    y_pred: Any
    n: int
    global_bs: int
    parts: Any  # LossParts of the compiled loss, or None with a user's compute_loss
    loss: Any  # a user's compute_loss result, or None


class TrainStep:
    """Mixin: `train_step` and the loop of one global batch (see the module docstring)."""

    def train_step(self, data: Any) -> dict:
        """One training step on one batch; returns the logs for the batch callbacks.

        Override it to customize training, as in Keras 3:

        ```python
        def train_step(self, data):
            x, y = data
            with distkeras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}
        ```

        In a data-parallel run `optimizer.apply` averages the ranks' gradients
        (see `distkeras.distributed.data_parallel`), so the step runs unchanged.

        Args:
            data: The batch: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

        Returns:
            A dict of metric values (`compute_metrics`' result by default).
        """
        x, y, sw = unpack_x_y_sample_weight(data)
        part = self._train_forward(x, y, sw)
        divisors = None
        sync = self._sync
        if (
            part.parts is not None
            and self._step_global_batch is not None
            and sync.comm.size > 1
            and not sync.deterministic  # there `_run_train_step` sums them for all micro-shards
        ):
            if self._can_defer_divisor(part, sw is not None):
                return self._train_backward(part, None, self._start_global_divisor(part.parts))
            divisors = self.global_divisors([(0, part.parts)], 1, sw is not None)
        return self._train_backward(part, divisors)

    def _can_defer_divisor(self, part: _Part, weighted: bool) -> bool:
        """Whether the global divisor can be summed while backward runs.

        With one compiled output and no `self.losses`, the gradient is linear
        in 1 / divisor: backward runs with the global batch size in its place
        and the gradient is rescaled once the sum arrives, so the step gets
        no extra synchronisation point (fused buffer, no overlapped buckets).
        """
        outputs = part.parts.outputs
        sync = self._sync
        return (
            self._divisor_sync(weighted) is True
            and len(outputs) == 1
            and outputs[0][0].reduction != "sum"
            and part.parts.extra is None
            and self._train_state.buffer is not None
            and not sync.overlap
        )

    def _train_forward(self, x: Any, y: Any, sw: Any) -> _Part:
        """The built-in step's first half: forward under the tape, the loss's parts."""
        n = _batch_size(x)
        global_bs = self._step_global_batch or n
        if self._train_state is None:  # called directly, outside fit / train_on_batch
            self._prepare_training(x)
        with GradientTape():
            y_pred = self(x, training=True)
            if self._overrides_compute_loss():
                loss = self._call_compute_loss(x, y, y_pred, sw, training=True)
                return _Part(x, y, sw, y_pred, n, global_bs, None, loss)
            parts = self._loss_parts(y, y_pred, sw)
        return _Part(x, y, sw, y_pred, n, global_bs, parts, None)

    def _train_backward(self, part: _Part, divisors: Any = None, deferred: Any = None) -> dict:
        """The built-in step's second half: the loss (global `divisors` when given),
        backward, gradient sync and update, metrics. With `deferred` (a divisor sum in
        flight, see `_can_defer_divisor`) the gradient is rescaled before the sync."""
        x, y, sw, y_pred, n, global_bs = part[:6]
        state = self._train_state
        sync = self._sync
        buf = state.buffer
        hook = finish = None
        if buf is not None and sync.overlap and sync.comm.size > 1 and not sync.deterministic:
            hook, finish = sync.overlapped(buf)
        with GradientTape():
            if part.parts is None:
                loss = part.loss
                value, per_output = float(to_numpy(loss.data)), []
                if global_bs != n:
                    loss = loss * (n / global_bs)  # this shard's share (prescaled)
            else:
                if deferred is not None:
                    divisors = [float(global_bs)]  # provisional: rescaled below
                loss, (value, per_output) = self._combine_loss(part.parts, global_bs, n, divisors)
            loss = self.optimizer.scale_loss(loss)
        if deferred is None:
            self._track_loss(value, per_output, n)
        grads = backward(loss, hook=hook, sinks=state.sinks) if loss.requires_grad else {}
        if finish is not None:
            finish(self.optimizer)
        elif buf is not None:
            for view, v in zip(buf.grad_views, buf.variables):
                g = grads.get(id(v))
                if g is None:
                    view.fill(0)
                elif g is not view:  # already there when backward wrote into its sink
                    view[...] = g
            if deferred is not None:
                total = deferred()
                scale = global_bs / total if total else 0.0
                current_module().multiply(buf.grad, scale, out=buf.grad)
                self._track_loss(value * scale, [v * scale for v in per_output], n)
            sync.step(self.optimizer, buf, prescaled=True)
        else:
            xp = current_module()
            glist = [grads.get(id(v)) for v in state.variables]
            glist = [
                xp.zeros_like(v.data) if g is None else g for g, v in zip(glist, state.variables)
            ]
            variables = self.optimizer._prepare_variables(glist, state.variables)
            sync.apply(self.optimizer, glist, variables, prescaled=True)
        return self.compute_metrics(x, y, y_pred, sw)

    def _run_train_step(self, x: Any, y: Any, sw: Any, global_bs: int) -> dict:
        """`train_step` on this rank's part of one global batch; returns its logs.

        Sets the share of the global batch the gradient sync weights this
        rank's gradients by. In deterministic mode, the part is cut into the
        fixed micro-shards of this rank, `train_step` runs once per
        micro-shard, and the sync applies the update after the last one.
        Each micro-shard's step runs in a `sample_stream` at its global
        offset, so Dropout and the other random layers draw the same noise
        per sample whichever rank computes it.
        """
        sync = self._sync
        if not sync.deterministic:
            n = _batch_size(x)
            sync.share = n / max(global_bs, 1)
            self._step_global_batch = global_bs
            try:
                return self.train_step(pack_x_y_sample_weight(x, y, sw))
            finally:
                sync.share = None
                self._step_global_batch = None
        comm = sync.comm
        seed, step = self._sample_stream_key()
        k_total = micro_shard_count(comm.size)
        k_lo, k_hi = da.shard_bounds(k_total, comm.rank, comm.size)
        start = da.shard_bounds(global_bs, k_lo, k_total)[0]
        logs: dict = {}
        sync.begin_micro_shards(self.optimizer)
        self._step_global_batch = global_bs
        two_phase = (
            type(self).train_step is TrainStep.train_step
            and not self._overrides_compute_loss()
            and self._divisor_sync(sw is not None) is not False
        )
        try:
            if two_phase:
                logs = self._micro_shards_two_phase(x, y, sw, global_bs, seed, step, k_total)
            else:
                for j, k in enumerate(range(k_lo, k_hi)):
                    lo, hi = da.shard_bounds(global_bs, k, k_total)
                    sync.next_micro_shard(j, k_hi - k_lo)
                    if hi == lo:
                        continue
                    px, py, psw = (
                        da.map_struct(lambda a, lo=lo, hi=hi: a[lo - start : hi - start], d)
                        for d in (x, y, sw)
                    )
                    sync.share = (hi - lo) / global_bs
                    with sample_stream(seed, step, lo, hi - lo):
                        logs = self.train_step(pack_x_y_sample_weight(px, py, psw))
        except BaseException:
            sync.cancel_micro_shards()
            raise
        finally:
            sync.share = None
            self._step_global_batch = None
        sync.end_micro_shards()
        return logs if logs else self.get_metrics_result()

    def _micro_shards_two_phase(
        self, x: Any, y: Any, sw: Any, global_bs: int, seed: int, step: int, k_total: int
    ) -> dict:
        """Deterministic mode, built-in step: every local micro-shard's forward first,
        then one sum of the loss divisors over all micro-shards of the global
        batch (masks, `ignore_class`, weights averaged by their sum), then each
        micro-shard's backward with those global divisors."""
        sync = self._sync
        comm = sync.comm
        k_lo, k_hi = da.shard_bounds(k_total, comm.rank, comm.size)
        start = da.shard_bounds(global_bs, k_lo, k_total)[0]
        forwards: list[tuple[int, int, _Part]] = []
        for j, k in enumerate(range(k_lo, k_hi)):
            lo, hi = da.shard_bounds(global_bs, k, k_total)
            if hi == lo:
                continue
            px, py, psw = (
                da.map_struct(lambda a, lo=lo, hi=hi: a[lo - start : hi - start], d)
                for d in (x, y, sw)
            )
            with sample_stream(seed, step, lo, hi - lo):
                forwards.append((j, k, self._train_forward(px, py, psw)))
        divisors = self.global_divisors(
            [(k, part.parts) for _, k, part in forwards], k_total, sw is not None
        )
        logs: dict = {}
        done = 0
        for j in range(k_hi - k_lo):
            sync.next_micro_shard(j, k_hi - k_lo)
            if done < len(forwards) and forwards[done][0] == j:
                part = forwards[done][2]
                forwards[done] = (j, 0, None)  # free the graph once used
                done += 1
                sync.share = part.n / global_bs
                logs = self._train_backward(part, divisors)
        return logs

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

    def _predict_batch(self, x: Any) -> Any:
        """`predict_step` on one batch, as NumPy arrays."""
        with no_grad():
            out = self.predict_step(pack_x_y_sample_weight(x))
        return da.map_struct(to_numpy, out)
