"""Data-parallel gradient sync: the one place where gradients cross ranks.

Every training step passes here between its backward pass and the
optimizer's update, the built-in step of `fit` and a user's `train_step`
alike: a user's `self.optimizer.apply(grads, self.trainable_weights)` lands
in `GradientSync.apply`, the built-in step calls `GradientSync.step` with its
fused gradient buffer. Depending on the run, the sync is

- the identity (one process);
- one summing all-reduce of the fused flat gradient buffer (no packing copy);
- the same, bucket by bucket while backward runs (`overlap`, built-in step);
- reduce-scatter, an optimizer update of this rank's shard only, and an
  all-gather of the parameters (ZeRO-1, `shard_update`, inside `fit`);
- in deterministic mode, every fixed micro-shard's gradient gathered by all
  ranks and summed pairwise in index order, so 1, 2 or 4 ranks produce
  bitwise-identical weights.

Scaling. Each rank's gradient is multiplied by its share of the global
batch, `share = n_rank / n_global`, before the ranks' gradients are summed.
A `train_step`'s loss is a mean over its local batch (Keras's default
reduction), so with equal shards this is the mean of the ranks' gradients
(what Horovod and PyTorch DDP users expect), and with uneven shards (the
last batch of an epoch) it is still the exact gradient of the mean over the
global batch. Outside `fit` the share is `1 / world_size`: a plain mean.
The built-in step folds the share into its loss before backward, so its
gradients arrive "prescaled" and are only summed.

This module moves arrays; it knows nothing of layers or models. The
optimizer is passed in and is used through `apply_flat`, `apply_flat_shard`,
`shardable` and `_apply_local`.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor


def _data(g: Any) -> Any:
    return g.data if isinstance(g, Tensor) else g


class GradientSync:
    """Synchronizes gradients across the ranks of `comm` before each update.

    Args:
        comm: The communicator (a local one of size 1 makes the sync the identity).
        overlap: Start each bucket's all-reduce during backward (built-in step).
        shard_update: Allow the reduce-scatter + sharded update inside `fit`.
        bucket_bytes: Target size of an overlapped bucket.
    """

    def __init__(
        self,
        comm: Any,
        *,
        overlap: bool = False,
        shard_update: bool = True,
        bucket_bytes: int = 4 << 20,
    ):
        self.comm = comm
        self.overlap = overlap
        self.shard_update = shard_update
        self.bucket_bytes = bucket_bytes
        self.reducer: Any = None  # custom in-place summing reducer of one flat array
        self.buffer: Any = None  # the model's FlatBuffer of trainable variables, when fused
        self.share: float | None = None  # this rank's share of the current global batch
        self.in_fit = False  # the sharded update is allowed (fit makes slots whole)
        self._pending: list | None = None  # deterministic mode: deferred updates
        self._micro = 0
        self._calls = 0
        self._bucket_cache: tuple | None = None

    # ------------------------------------------------------------ properties
    @property
    def deterministic(self) -> bool:
        """Whether gradients are combined in a fixed, world-size independent order."""
        return bool(getattr(self.comm, "deterministic", False))

    def _share(self) -> float:
        return self.share if self.share is not None else 1.0 / self.comm.size

    def _scale(self, flat: Any, prescaled: bool) -> None:
        if not prescaled:
            s = self._share()
            if s != 1.0:
                current_module().multiply(flat, s, out=flat)

    def reduce(self, flat: Any, prescaled: bool = True) -> None:
        """Sums `flat` across ranks in place (after scaling it by the share unless prescaled)."""
        self._scale(flat, prescaled)
        if self.reducer is not None:
            self.reducer(flat)
        elif self.comm.size > 1:
            self.comm.allreduce([flat], op="sum")

    # ------------------------------------------------------------ the boundary
    def step(self, optimizer: Any, buf: Any, prescaled: bool = True) -> None:
        """Syncs `buf.grad` and updates `buf`'s variables with `optimizer` (flat fast path)."""
        if self._pending is not None:
            self._defer(optimizer, buf.grad, prescaled, _FlatTarget(optimizer, buf))
            return
        if self._shards(optimizer, buf):
            self._scale(buf.grad, prescaled)
            lo, hi = self.comm.shard_range(buf.size)
            shard = self.comm.reduce_scatter(buf.grad, op="sum")
            optimizer.apply_flat_shard(buf, lo, hi, shard, self.comm.allgather_shards)
            return
        self.reduce(buf.grad, prescaled)
        optimizer.apply_flat(buf)

    def apply(self, optimizer: Any, grads: list, variables: list, prescaled: bool = False) -> None:
        """`optimizer.apply(grads, variables)` made data-parallel.

        When the variables are the model's fused ones, the gradients are copied
        into its flat buffer and take the fast path of `step`; otherwise the
        present gradients are packed into one array for one all-reduce.
        """
        buf = self.buffer
        if buf is not None and _matches(buf, grads, variables):
            for view, g in zip(buf.grad_views, grads):
                view[...] = _data(g)
            self.step(optimizer, buf, prescaled)
            return
        if self.comm.size == 1 and self._pending is None and self.reducer is None:
            optimizer._apply_local(grads, variables)
            return
        xp = current_module()
        present = [i for i, g in enumerate(grads) if g is not None]
        arrays = [xp.asarray(_data(grads[i])) for i in present]
        dtype = variables[present[0]].data.dtype if present else None
        flat = (
            xp.concatenate([a.astype(dtype, copy=False).ravel() for a in arrays])
            if arrays
            else xp.zeros(0, dtype="float32")
        )
        target = _ListTarget(optimizer, grads, variables, present, arrays)
        if self._pending is not None:
            self._defer(optimizer, flat, prescaled, target)
            return
        self.reduce(flat, prescaled)
        target(flat)

    def _shards(self, optimizer: Any, buf: Any) -> bool:
        """True when each rank updates only its shard of the parameters (ZeRO-1).

        The gradient is reduce-scattered instead of all-reduced, each rank
        runs the optimizer on its shard, and the parameters are all-gathered:
        the same bytes on the wire as an all-reduce, 1/N of the optimizer's
        work per rank. Only inside `fit` (which makes the slots whole at each
        epoch end, before checkpoints and when it returns), on a communicator
        with native shards, without float16 compression or a custom reducer,
        and for an optimizer whose step is elementwise over the flat buffer.
        """
        comm = self.comm
        return (
            self.shard_update
            and self.in_fit
            and comm.size > 1
            and getattr(comm, "native_shards", False)
            and not getattr(comm, "compression", None)
            and self.reducer is None
            and optimizer.shardable(buf.variables)
        )

    # ------------------------------------------------------------ overlap
    def overlapped(self, buf: Any) -> tuple[Any, Any]:
        """(hook, finish) for a backward that all-reduces buckets as soon as they are final.

        Buckets are runs of consecutive variables, taken from the last layer
        backwards (the order backward finishes them), each a contiguous slice
        of the flat gradient buffer, so a bucket is reduced with no packing.
        `hook(leaf, grad)` goes to `backward`; `finish(optimizer)` starts the
        buckets backward never completed, waits, and applies the update.
        Gradients must be prescaled (the built-in step).
        """
        comm = self.comm
        buckets = self.buckets(buf)
        remaining = [hi - lo for lo, hi in buckets]
        owner = {i: b for b, (lo, hi) in enumerate(buckets) for i in range(lo, hi)}
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

        def finish(optimizer: Any) -> None:
            for b in range(len(buckets)):
                if b not in started:
                    lo, hi = buckets[b]
                    for i in range(lo, hi):
                        if i not in seen:
                            buf.grad_views[i].fill(0)
                    start(b)
            for h in handles:
                h.wait()
            optimizer.apply_flat(buf)

        return hook, finish

    def buckets(self, buf: Any) -> list[tuple[int, int]]:
        """[lo, hi) variable ranges of about `bucket_bytes`, last variables first."""
        key = (id(buf), self.bucket_bytes)
        if self._bucket_cache is not None and self._bucket_cache[0] == key:
            return self._bucket_cache[1]
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

    # ------------------------------------------------------------ deterministic mode
    def begin_micro_shards(self, default_optimizer: Any) -> None:
        """Deterministic mode: defer every update until `end_micro_shards`.

        Between the two calls the trainer runs the step once per micro-shard
        of this rank (`next_micro_shard` before each); the n-th update of
        every micro-shard is collected as one row of a deferred update.
        """
        self._pending = []
        self._micro = -1
        self._default = default_optimizer
        self._count = 0

    def next_micro_shard(self, index: int, count: int) -> None:
        """Starts local micro-shard `index` (0-based) of `count` on this rank."""
        self._micro = index
        self._count = count
        self._calls = 0

    def _defer(self, optimizer: Any, flat: Any, prescaled: bool, target: Any) -> None:
        row = flat.copy()
        self._scale(row, prescaled)
        if self._calls == len(self._pending):
            self._pending.append([target, {}])
        self._pending[self._calls][1][self._micro] = row
        self._calls += 1

    def cancel_micro_shards(self) -> None:
        """Drops the deferred updates (the step failed)."""
        self._pending = None

    def end_micro_shards(self) -> None:
        """Gathers every deferred update's rows, sums them in index order, applies."""
        pending, self._pending = self._pending, None
        if not pending and self.buffer is not None:
            # No micro-shard of this rank had samples: take part with zero rows.
            buf = self.buffer
            pending = [[_FlatTarget(self._default, buf), {}]]
        xp = current_module()
        for target, rows in pending:
            size = target.size
            mine = xp.zeros((max(self._count, 1), size), dtype=target.dtype)
            for j, row in rows.items():
                mine[j] = row
            if self.comm.size > 1:
                parts = self.comm.allgather(mine[: self._count] if self._count else mine[:0])
                all_rows = [row for part in parts for row in part]
            else:
                all_rows = list(mine[: self._count])
            while len(all_rows) > 1:
                paired = [all_rows[i] + all_rows[i + 1] for i in range(0, len(all_rows) - 1, 2)]
                all_rows = paired + ([all_rows[-1]] if len(all_rows) % 2 else [])
            target(all_rows[0] if all_rows else xp.zeros(size, dtype=target.dtype))


def _matches(buf: Any, grads: list, variables: list) -> bool:
    if len(variables) != len(buf.variables):
        return False
    for g, v, bv, view in zip(grads, variables, buf.variables, buf.grad_views):
        if g is None or v is not bv:
            return False
        shape = getattr(_data(g), "shape", None)
        if shape is None or tuple(shape) != view.shape:
            return False
    return True


class _FlatTarget:
    """A deferred flat update: the summed gradient goes into `buf.grad`, then `apply_flat`."""

    def __init__(self, optimizer: Any, buf: Any):
        self.optimizer, self.buf = optimizer, buf
        self.size, self.dtype = buf.size, buf.dtype

    def __call__(self, total: Any) -> None:
        self.buf.grad[...] = total
        self.optimizer.apply_flat(self.buf)


class _ListTarget:
    """A per-variable update: the summed packed gradient is split back into arrays."""

    def __init__(self, optimizer: Any, grads: list, variables: list, present: list, arrays: list):
        self.optimizer, self.grads, self.variables = optimizer, grads, variables
        self.present, self.shapes = present, [a.shape for a in arrays]
        self.size = sum(int(a.size) for a in arrays)
        self.dtype = variables[present[0]].data.dtype if present else "float32"

    def __call__(self, total: Any) -> None:
        out = list(self.grads)
        offset = 0
        for i, shape in zip(self.present, self.shapes):
            n = 1
            for d in shape:
                n *= int(d)
            out[i] = total[offset : offset + n].reshape(shape)
            offset += n
        self.optimizer._apply_local(out, self.variables)
