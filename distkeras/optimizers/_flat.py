"""The optimizer's update pipeline, written once, and its flat-buffer fast path.

Every update, per variable (`Optimizer.apply`), over whole fused buffers
(`apply_flat`) or over this rank's shard of one (`apply_flat_shard`), runs
the same pipeline, `UpdatePipeline._pipeline`: scale (loss scaling) ->
accumulate (gradient accumulation) -> clip -> decay -> update -> finish
(EMA, iteration counter, constraints). The three entry points only differ in
the `Segment`s they hand it: one per variable, one per fused buffer (with
cache-sized chunks for threads), or one shard. The pipeline works in place
on each segment's gradient, so a segment's gradient must be owned by the
optimizer (a fused buffer's, or a copy).

The mixin relies on the optimizer's attributes and hooks defined in
`base.py` (`_update`, `_prepare_step`, `_use_weight_decay`, the slot lists).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.fpenv import flush_denormals
from distkeras.backend.threads import auto_threads

_THREADS: dict[str, Any] = {"n": None, "pool": None}
# Elements per block: 2**17 (512 KiB a float32 operand). Blocks go to whichever
# thread asks next (`run_chunked`). Smaller, L2-sized blocks (2**15) take less CPU in
# one thread, but in the two-thread update every ufunc call hands the GIL over, and
# the MLP step got 5-15% slower with them; one block per thread (2**20) made the
# calling thread wait for the pool thread to wake. 2**17: 1.48-1.55 ms for Adam over
# the MLP's 670k parameters, against 1.65-1.70 ms with 2**20 (issue 21, bench/README.md).
_BLOCK = int(os.environ.get("DISTKERAS_OPTIMIZER_BLOCK", str(1 << 17)))
_MIN_CHUNK = 1 << 16  # elements; below this a thread hand-off costs more than it saves


def set_threads(n: int | None) -> None:
    """Sets the number of threads for flat updates (None: $DISTKERAS_OPTIMIZER_THREADS or auto)."""
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"The number of threads must be an integer >= 1. Received: n={n}")
    _THREADS["n"] = n
    pool = _THREADS["pool"]
    if pool is not None:
        pool.shutdown(wait=False)
        _THREADS["pool"] = None


def num_threads() -> int:
    """The number of threads a flat update may use."""
    n = _THREADS["n"]
    if n is None:
        env = os.environ.get("DISTKERAS_OPTIMIZER_THREADS")
        n = int(env) if env else auto_threads()
        _THREADS["n"] = max(1, n)
        n = _THREADS["n"]
    return n


def run_chunked(update, chunks: tuple, coef: Any) -> None:
    """Runs `update(*block, coef)` for every block of `chunks = (threads, blocks)`.

    Blocks are cache-sized, so the dozen whole-array ufuncs of an update run
    while their operands are still in cache instead of streaming the whole
    buffer from memory a dozen times. Blocks go to whichever thread asks next
    (the update is elementwise: which thread runs a block changes no bit), so
    the calling thread starts at once and the pool thread, which needs a
    moment to wake, takes fewer. The caller runs inside `flush_denormals()`
    (the pipeline does); pool threads enter it themselves.
    """
    threads, blocks = chunks
    counter = itertools.count()  # next() is atomic under the GIL

    def run() -> None:
        while (i := next(counter)) < len(blocks):
            update(*blocks[i], coef)

    if threads == 1:
        run()
        return

    def pooled() -> None:
        with flush_denormals():  # a pool thread's own floating-point environment
            run()

    pool = _THREADS["pool"]
    if pool is None:
        pool = _THREADS["pool"] = ThreadPoolExecutor(max_workers=num_threads() - 1)
    futures = [pool.submit(pooled) for _ in range(threads - 1)]
    run()
    for f in futures:
        f.result()


class FlatState:
    """An optimizer's state for one `FlatBuffer`.

    On creation, every slot list of the optimizer gets one flat array laid out
    like the buffer; the existing per-variable values are copied in and each
    slot Variable's `.data` is rebound (once) to its view, so both paths share
    memory. Scratch arrays are flat too, and the per-variable path uses views
    of them.
    """

    def __init__(self, buffer: Any, indices: list[int], opt: Any):
        self.buffer = buffer
        self.slots = [self._fuse(lst, indices) for lst in opt._slot_lists]
        self.ema = self._fuse(opt._ema_slots, indices) if opt._ema_slots else None
        self.accum = self._fuse(opt._accum_slots, indices) if opt._accum_slots else None
        n = opt._n_scratch()
        self.scratch = [buffer.slot_like() for _ in range(n)]
        views = [buffer.views_of(s) for s in self.scratch]
        for j, i in enumerate(indices):
            opt._scratch[i] = [v[j] for v in views]
        self.grad_views = buffer.views_of(buffer.grad)
        self.scratch0_views = views[0] if views else [None] * len(indices)
        use = [opt._use_weight_decay(v) for v in buffer.variables]
        self.decay_all = all(use)
        param_views = buffer.views_of(buffer.data)
        self.decay_views = [(p, t) for p, t, u in zip(param_views, self.scratch0_views, use) if u]
        self.norm_terms = list(zip(self.grad_views, self.scratch0_views))
        self.decay = [(buffer.data, self.scratch[0])] if self.decay_all and n else self.decay_views
        self._chunk_key: int | None = None
        self._segment: Segment | None = None
        self._chunks: tuple | None = None
        # Set by a sharded step: refills the slots' shards of the other ranks.
        self.stale_gather: Any = None

    def _fuse(self, slot_vars: list, indices: list[int]):
        flat = self.buffer.slot_like()
        for view, i in zip(self.buffer.views_of(flat), indices):
            var = slot_vars[i]
            view[...] = var.data
            var.data = view
        return flat

    def segment(self) -> Segment:
        """The whole buffer as one pipeline `Segment` (rebuilt when the thread count changes)."""
        chunks = self.chunks
        seg = self._segment
        if seg is None or seg.chunks is not chunks:
            b = self.buffer
            seg = Segment(
                b.data, b.grad, self.slots, self.scratch, self.accum,
                self.norm_terms, self.decay, chunks,
            )  # fmt: skip
            self._segment = seg
        return seg

    @property
    def chunks(self) -> tuple | None:
        """`(threads, blocks)` of `(param, grad, slots, scratch)` slices for a threaded update."""
        n = num_threads()
        if n != self._chunk_key:
            self._chunk_key = n
            self._chunks = self.make_chunks(n, 0, self.buffer.size, self.buffer.grad)
        return self._chunks

    def make_chunks(self, n: int, lo: int, hi: int, grad: Any) -> tuple | None:
        """`(threads, blocks)`: equal cache-sized blocks of elements `lo:hi` for `run_chunked`.

        `grad` holds the gradient of those elements (`grad[0]` is element `lo`).
        None when one whole-range call is best.
        """
        size = hi - lo
        if current_module() is not np or (size <= _BLOCK and (n <= 1 or size < 2 * _MIN_CHUNK)):
            return None
        n = max(1, min(n, size // _MIN_CHUNK))
        k = max(n, -(-size // _BLOCK))  # blocks: one per thread at least, at most _BLOCK long
        step = -(-size // k)
        step = -(-step // 64) * 64  # keep block starts 256-byte aligned
        blocks = []
        for a in range(0, size, step):
            b = min(size, a + step)
            part = slice(lo + a, lo + b)
            blocks.append(
                (
                    self.buffer.data[part],
                    grad[a:b],
                    [s[part] for s in self.slots],
                    [s[part] for s in self.scratch],
                )
            )
        return min(n, len(blocks)), blocks


class Segment:
    """One contiguous piece of an update: the arrays the pipeline changes in place.

    Args:
        param: The parameters.
        grad: Their gradient (owned by the optimizer: changed in place).
        slots: One array per slot list of the optimizer, laid out like `param`.
        scratch: Scratch arrays laid out like `param`.
        accum: The gradient accumulator, or None.
        norm_terms: `(grad view, scratch view)` per variable, for norm clipping.
        decay: `(param view, scratch view)` pairs that weight decay applies to.
        chunks: `(threads, blocks)` for a threaded update (`run_chunked`), or None.
    """

    __slots__ = ("param", "grad", "slots", "scratch", "accum", "norm_terms", "decay", "chunks")

    def __init__(
        self, param, grad, slots, scratch, accum=None, norm_terms=(), decay=(), chunks=None
    ):
        self.param, self.grad, self.slots, self.scratch = param, grad, slots, scratch
        self.accum, self.norm_terms, self.decay, self.chunks = accum, norm_terms, decay, chunks


class UpdatePipeline:
    """Adds the update pipeline and its entry points `apply_flat`/`apply_flat_shard`."""

    def _pipeline(self, segments: list, variables: list, flat: list | None = None, after=None):
        """scale -> accumulate -> clip -> decay -> update -> `after()` -> finish, in place.

        Runs with subnormal floats flushed to zero (`backend.fpenv`), as
        TensorFlow runs its ops: momentums decaying towards zero would
        otherwise slow every later update pass many times over.

        Args:
            segments: The `Segment`s of this update.
            variables: The variables updated (for constraints).
            flat: The `FlatState`s involved (EMA runs over them), or None.
            after: Called after the update, before the finish (a sharded step's gather).
        """
        with flush_denormals():
            self._run_pipeline(segments, variables, flat, after)

    def _run_pipeline(self, segments: list, variables: list, flat: list | None, after) -> None:
        xp = current_module()
        scale = self.loss_scale_factor
        if scale is not None:
            for sg in segments:
                xp.divide(sg.grad, scale, out=sg.grad)
        step = int(self._iterations.data) + 1
        n = self.gradient_accumulation_steps
        if n:
            for sg in segments:
                g, a = sg.grad, sg.accum
                if step % n:
                    xp.add(a, g, out=a)
                else:
                    xp.add(g, a, out=g)
                    xp.divide(g, n, out=g)
                    a.fill(0)
            if step % n:
                self._finish_step(variables, flat)
                return
        if self.clipnorm or self.global_clipnorm:
            terms = [t for sg in segments for t in sg.norm_terms]
            for (g, _), f in zip(terms, self._clip_factors(terms)):
                self._scale_grad(g, f, g)
        elif self.clipvalue:
            c = float(self.clipvalue)
            for sg in segments:
                xp.clip(sg.grad, -c, c, out=sg.grad)
        lr = self._current_lr()
        if self.weight_decay is not None:
            for sg in segments:
                for p, tmp in sg.decay:
                    self._decay(p, tmp, lr)
        coef = self._prepare_step(lr, step)
        for sg in segments:
            if sg.chunks:
                run_chunked(self._update, sg.chunks, coef)
            else:
                self._update(sg.param, sg.grad, sg.slots, sg.scratch, coef)
        if after is not None:
            after()
        self._finish_step(variables, flat)

    def _clip_factors(self, terms: list) -> list | None:
        """Per-gradient `(multiplier, divisor)` for clipnorm / global_clipnorm, else None.

        `terms` holds `(grad, scratch)` pairs; each squared norm is summed over
        a C-contiguous scratch of the variable's shape, so the per-variable and
        flat paths compute identical norms.
        """
        if not (self.clipnorm or self.global_clipnorm):
            return None
        xp = current_module()
        sums = []
        for g, s in terms:
            sq = xp.square(g) if s is None else xp.square(g, out=s)
            sums.append(float(xp.sum(sq)))
        if self.clipnorm:
            c = float(self.clipnorm)
            return [(c, max(math.sqrt(s), c)) for s in sums]
        c = float(self.global_clipnorm)
        norm = math.sqrt(math.fsum(sums))
        inv = math.inf if norm == 0 else 1.0 / norm
        scale = c * min(inv, 1.0 / c) + (norm - norm)
        return [(scale, 1.0)] * len(sums)

    @staticmethod
    def _scale_grad(g, factor: tuple, out):
        xp = current_module()
        mul, div = factor
        if out is None:
            out = xp.multiply(g, mul)
        elif mul != 1.0:
            xp.multiply(g, mul, out=out)
        if div != 1.0:
            xp.divide(out, div, out=out)
        return out

    def _decay(self, p, tmp, lr: float) -> None:
        xp = current_module()
        xp.multiply(p, self.weight_decay, out=tmp)
        xp.multiply(tmp, lr, out=tmp)
        xp.subtract(p, tmp, out=p)

    def _finish_step(self, variables: list, flat: list | None = None) -> None:
        """EMA, iteration counter, then variable constraints."""
        if self.use_ema:
            self._ema_step(flat)
        self._iterations.data += 1
        for v in variables:
            if v.constraint is not None:
                v.assign(v.constraint(v))

    def _ema_step(self, flat: list | None) -> None:
        xp = current_module()
        mom = float(self.ema_momentum) if int(self._iterations.data) != 0 else 0.0
        if flat is not None:
            groups = [(st.buffer.data, st.ema, st.scratch[0]) for st in flat]
        else:
            groups = [
                (v.data, a.data, self._scratch_for(i)[0])
                for i, (v, a) in enumerate(zip(self._trainable_variables, self._ema_slots))
            ]
        freq = self.ema_overwrite_frequency
        overwrite = freq and (int(self._iterations.data) + 1) % freq == 0
        for p, avg, tmp in groups:
            xp.multiply(avg, mom, out=avg)
            xp.multiply(p, 1.0 - mom, out=tmp)
            xp.add(avg, tmp, out=avg)
            if overwrite:
                p[...] = avg

    def apply_flat(self, buffer: Any) -> None:
        """Updates every variable of one or more `FlatBuffer`s from their `.grad` arrays.

        The update runs as a few whole-buffer ufunc calls. Gradient
        preprocessing (loss scaling, accumulation, clipping) happens in place
        in `buffer.grad`. The first call builds the optimizer (if needed) and
        moves its slots into flat arrays laid out like the buffer.

        Args:
            buffer: A `FlatBuffer`, or a list of them (one per dtype); the
                iteration counter advances once per call.
        """
        buffers = buffer if isinstance(buffer, (list, tuple)) else [buffer]
        states = []
        for b in buffers:
            st = self._flat.get(id(b))
            if st is None or st.buffer is not b:
                st = self._build_flat(b)
            states.append(st)
        variables = [v for st in states for v in st.buffer.variables]
        self._pipeline([st.segment() for st in states], variables, states)

    # ---------------------------------------------------------- sharded update
    def shardable(self, variables: Any) -> bool:
        """True when an update of `variables` can run on one contiguous shard of them per rank.

        `_update` is elementwise by contract; what is not: norm clipping (it
        needs whole-variable norms), gradient accumulation (its skipped steps)
        and weight decay that spares some variables.
        """
        if self.clipnorm or self.global_clipnorm or self.gradient_accumulation_steps:
            return False
        if self.weight_decay is not None and not all(self._use_weight_decay(v) for v in variables):
            return False
        return True

    def apply_flat_shard(
        self, buffer: Any, lo: int, hi: int, grad: Any, gather: Callable[[Any], Any]
    ) -> None:
        """One step in which this rank updates only elements `lo:hi` of `buffer` (ZeRO-1).

        `grad` is the reduced gradient of those elements (a `reduce_scatter`
        result); `gather(flat)` must fill every rank's shard of a flat array
        from its owner (`allgather_shards`). The parameters are gathered at
        once, so every rank holds them whole; the slots (momentums, ...) only
        in this rank's shard until `sync_shards()`, which `fit` calls at each
        epoch end, before checkpoints and at the end.

        Args:
            buffer: The `FlatBuffer` whose `.data` holds the parameters.
            lo, hi: This rank's shard of the flat buffer.
            grad: The reduced gradient of elements `lo:hi`.
            gather: Collective that completes a flat array from every rank's shard.
        """
        st = self._flat.get(id(buffer))
        if st is None or st.buffer is not buffer:
            st = self._build_flat(buffer)
        part = slice(lo, hi)
        seg = Segment(
            buffer.data[part],
            grad,
            [a[part] for a in st.slots],
            [a[part] for a in st.scratch],
            decay=[(buffer.data[part], st.scratch[0][part])] if st.scratch else (),
            chunks=st.make_chunks(num_threads(), lo, hi, grad),
        )

        def gather_params() -> None:
            gather(buffer.data)
            st.stale_gather = gather

        self._pipeline([seg], buffer.variables, [st], after=gather_params)

    def sync_shards(self) -> None:
        """Completes the slots `apply_flat_shard` left sharded (collective: every rank calls it)."""
        for st in self._flat.values():
            if st.stale_gather is not None:
                gather, st.stale_gather = st.stale_gather, None
                for slot in st.slots:
                    gather(slot)

    def _check_not_sharded(self) -> None:
        """Raises while slots are sharded across ranks (other ranks' parts would be stale here)."""
        if any(st.stale_gather is not None for st in self._flat.values()):
            raise RuntimeError(
                f"The slots of optimizer '{self.name}' are sharded across the ranks of this "
                "data-parallel run: each rank updates its own part of them, and holds only that "
                "part mid-epoch. Call `optimizer.sync_shards()` on every rank first (fit does it "
                "at each epoch end, before checkpoints and when it returns), or train with "
                "DISTKERAS_SHARD_UPDATE=0."
            )

    def _build_flat(self, buffer: Any) -> FlatState:
        if not self.built:
            self.build(list(buffer.variables))
        self._check_known(buffer.variables)
        ids = {id(v) for v in buffer.variables}
        for key, old in list(self._flat.items()):  # a rebuilt buffer replaces the old one
            if ids & {id(v) for v in old.buffer.variables}:
                del self._flat[key]
        indices = [self._index[id(v)] for v in buffer.variables]
        st = FlatState(buffer, indices, self)
        self._flat[id(buffer)] = st
        return st
