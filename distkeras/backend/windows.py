"""Shared machinery of the convolution, pooling and recurrent primitives.

Channels_last windows (`(batch, *spatial, channels)` arrays read through
strided slices or views), im2col/col2im, explicit `(low, high)` padding, and
the thread pool that runs memory-bound loops over batch chunks: NumPy ufuncs
and copies release the GIL, so these loops run in a few threads, as PyTorch's
CPU kernels do (see `set_threads`). `Background` and `TimePipeline` hand a
time loop's block GEMMs to the same pool while the loop goes on.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.threads import auto_threads, single_blas_thread


def _xp():
    return current_module()


# ---------------------------------------------------------------- threads
# NumPy ufuncs and copies release the GIL, so the memory-bound loops here (window
# copies, scatter-adds, pooling, bias + relu) run on batch chunks in a few threads,
# as PyTorch's CPU kernels do. GEMMs stay on the calling thread (BLAS has its own).
_THREADS: dict[str, Any] = {"n": None, "pool": None}
_MIN_PARALLEL = 1 << 17  # elements; smaller arrays are not worth a thread hand-off


def set_threads(n: int | None) -> None:
    """Sets the threads of the conv/pool loops (None: $DISTKERAS_CONV_THREADS or automatic).

    Automatic: the cores available to this process divided among the local
    ranks, at most 4 and at most $OMP_NUM_THREADS when that is set.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"The number of threads must be an integer >= 1. Received: n={n!r}")
    _THREADS["n"] = n
    if _THREADS["pool"] is not None:
        _THREADS["pool"].shutdown(wait=False)
        _THREADS["pool"] = None


def num_threads() -> int:
    """The number of threads the conv/pool loops may use."""
    if _THREADS["n"] is None:
        env = os.environ.get("DISTKERAS_CONV_THREADS", "")
        _THREADS["n"] = max(1, int(env)) if env.isdigit() else auto_threads()
    return _THREADS["n"]


def _parallel(
    fn: Callable[[int, int], Any], batch: int, size: int, blas_single: bool = False
) -> list:
    """Runs `fn(lo, hi)` over chunks of the batch axis, in threads when `size` is large.

    Args:
        fn: Works on batch rows `lo:hi`; its results are returned in order.
        batch: Rows to split.
        size: Elements touched, to decide whether threads are worth it.
        blas_single: The chunks call BLAS themselves: pin BLAS to one thread
            while they run in several threads.

    Returns:
        The results of `fn`, one per chunk.
    """
    n = _threads_for(batch, size)
    bounds = [batch * i // n for i in range(n + 1)]
    return _run_threads([(fn, bounds[i], bounds[i + 1]) for i in range(n)], blas_single)


def _threads_for(batch: int, size: int) -> int:
    """Threads for a loop over `batch` rows touching `size` elements (1: stay on this one)."""
    if current_module() is not np or size < _MIN_PARALLEL:
        return 1
    return max(1, min(num_threads(), batch))


_POOL_PREFIX = "distkeras-compute"


def _pool() -> ThreadPoolExecutor | None:
    """The shared pool (num_threads() - 1 workers: every caller fits), or None inside it.

    A job already running in the pool never waits on the pool: with every
    worker busy, what it queued would never start.
    """
    if threading.current_thread().name.startswith(_POOL_PREFIX):
        return None
    pool = _THREADS["pool"]
    if pool is None:
        pool = _THREADS["pool"] = ThreadPoolExecutor(
            max_workers=max(1, num_threads() - 1), thread_name_prefix=_POOL_PREFIX
        )
    return pool


def _run_threads(calls: list, blas_single: bool) -> list:
    """Runs `calls[0]` here and the others in the pool; returns their results in order."""
    pool = _pool() if len(calls) > 1 else None
    if pool is None:
        return [fn(*args) for fn, *args in calls]
    with single_blas_thread(blas_single):
        futures = [pool.submit(*call) for call in calls[1:]]
        fn, *args = calls[0]
        first = fn(*args)
        return [first, *(f.result() for f in futures)]


class Background:
    """Jobs handed to the pool while the calling thread keeps working (a pipeline).

    `submit(fn, *args)` queues a job (it runs here at once when threads are
    off); `finish()` runs on this thread every queued job no pool thread has
    started yet, last first, then waits for the rest. Jobs must write disjoint
    outputs; their results are not returned. While jobs may be in flight BLAS
    must be pinned to one thread (`pinned`), since both threads call it.
    """

    def __init__(self, size: int) -> None:
        self.pool = _pool() if _threads_for(2, size) > 1 else None
        self.pending: list = []

    @property
    def pinned(self) -> bool:
        """True when jobs run in another thread (BLAS must stay on one thread meanwhile)."""
        return self.pool is not None

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Queues `fn(*args)`; returns its number for `wait`."""
        if self.pool is None:
            fn(*args)
            self.pending.append((None, fn, args))
        else:
            self.pending.append((self.pool.submit(fn, *args), fn, args))
        return len(self.pending) - 1

    def wait(self, i: int) -> None:
        """Returns once job `i` has run (running it here if no thread has started it)."""
        f, fn, args = self.pending[i]
        if f is None:
            return
        if f.cancel():
            fn(*args)
            self.pending[i] = (None, fn, args)
        else:
            f.result()

    def idle(self, first: int | None = None) -> bool:
        """True once every queued job (or the `first` ones queued) has finished."""
        return all(f is None or f.done() for f, _, _ in self.pending[:first])

    def finish(self) -> None:
        """Runs the jobs no thread has started (last first), then waits for all."""
        for i in reversed(range(len(self.pending))):
            self.wait(i)
        self.pending = []


# ---------------------------------------------------------------- time loops
BLOCK_STEPS = 8  # timesteps per pipelined GEMM block


def sum_blocks(parts: Any) -> Any:
    """Per-block partial products summed in block order (the same bits on any thread count)."""
    if parts is None:
        return None
    out = parts[0].copy()
    for p in parts[1:]:
        out += p
    return out


def step_rows(a: Any) -> Any:
    """Feature-major steps `(T, F, B)` -> contiguous batch-major rows `(T * B, F)`, for GEMMs."""
    return _xp().ascontiguousarray(a.transpose(0, 2, 1)).reshape(-1, a.shape[1])


class TimePipeline(Background):
    """Block-wise GEMMs of a time loop run in a pool thread while the loop goes on.

    Blocks are `BLOCK_STEPS` timesteps, the same on any number of threads.
    BLAS stays on one thread while jobs may run beside the loop, and goes back
    to its threads (unless `small`) once they are all done.
    """

    def __init__(self, T: int, size: int, small: bool) -> None:
        super().__init__(size)
        self.blocks = [(s, min(T, s + BLOCK_STEPS)) for s in range(0, T, BLOCK_STEPS)]
        self.small = small
        self._pin = None

    def project_inputs(self, x: Any, xt: Any, out: Any, k_t: Any, b_t: Any) -> None:
        """Queues, block by block, `out[t] = k_t @ x[:, t].T (+ b_t)`, keeping `xt[t] = x[:, t]`.

        `x` is `(batch, time, features)`, `xt` its time-major copy (kept for the
        kernel gradient), `out` the feature-major pre-activations `(time, units,
        batch)`. One batched GEMM call a block: each call of the pool thread
        takes the GIL from the loop.
        """
        xp = _xp()

        def project(s: int, e: int) -> None:
            xt[s:e] = x[:, s:e].transpose(1, 0, 2)
            xp.matmul(k_t, xt[s:e].transpose(0, 2, 1), out=out[s:e])
            if b_t is not None:
                out[s:e] += b_t

        for s, e in self.blocks:
            self.submit(project, s, e)

    def stepped_back(self, t: int, job: Callable[[int, int, int], Any]) -> None:
        """After step `t` of a backward loop: queues `job(j, s, e)` once block j = s:e is done."""
        j = t // BLOCK_STEPS
        if t == self.blocks[j][0]:
            self.submit(job, j, *self.blocks[j])

    def __enter__(self) -> TimePipeline:
        self._pin = single_blas_thread(self.small or self.pinned)
        self._pin.__enter__()
        return self

    def ready(self, t: int) -> None:
        """Before step `t` of a forward loop: waits for its block's job."""
        if t % BLOCK_STEPS == 0:
            self.wait(t // BLOCK_STEPS)
            if t and not self.small and self._pin is not None and self.idle(len(self.blocks)):
                self._unpin()

    def _unpin(self) -> None:
        pin, self._pin = self._pin, None
        pin.__exit__(None, None, None)

    def __exit__(self, *exc) -> None:
        if self._pin is not None:
            self._unpin()


def _shared_chunks(
    fn: Callable[[Callable[[], tuple | None]], Any],
    batch: int,
    chunk: int,
    size: int,
    blas_single: bool = False,
) -> list:
    """Runs `fn(take)` in each thread; `take()` hands out the next `(index, lo, hi)`.

    Chunk `index` covers batch rows `lo:hi` (at most `chunk` rows); chunks go to
    whichever thread asks next (None once all are taken), so a thread that
    finishes early takes more and none waits for a slower one: with a fixed
    split the calling thread waited about 1.8 ms a CNN step for the pool
    thread, which starts later. Which thread gets which chunk varies from run
    to run: partial sums must be kept per chunk index and added in index order
    to stay bitwise reproducible.

    Args:
        fn: Processes chunks until `take()` returns None; returns its own result.
        batch: Rows to hand out.
        chunk: Rows per chunk (>= 1).
        size: Elements touched, to decide whether threads are worth it.
        blas_single: The chunks call BLAS themselves: pin BLAS to one thread
            while they run in several threads.

    Returns:
        The results of `fn`, one per thread that ran.
    """
    counter = itertools.count()
    chunk = max(1, int(chunk))

    def take() -> tuple | None:
        i = next(counter)  # atomic under the GIL
        lo = i * chunk
        return None if lo >= batch else (i, lo, min(batch, lo + chunk))

    n = _threads_for(batch, size)
    return _run_threads([(fn, take)] * n, blas_single)


def _balanced_chunk(batch: int, chunk: int, size: int) -> int:
    """`chunk`, made small enough for at least eight chunks when threads will run.

    The same on any number of threads (so per-chunk partial sums, added in chunk
    order, give the same bits), and unchanged for work too small for threads or
    off NumPy (so small problems reduce exactly as on the other array modules).
    """
    if current_module() is not np or size < _MIN_PARALLEL:
        return max(1, chunk)
    return max(1, min(chunk, -(-batch // 8)))


# ---------------------------------------------------------------- helpers
def _window(k: tuple, out_sp: tuple, strides: tuple, dilation: tuple) -> tuple:
    """Index of the input values kernel position `k` meets at every output position."""
    return (
        slice(None),
        *(
            slice(ki * di, ki * di + (oi - 1) * si + 1, si)
            for ki, oi, si, di in zip(k, out_sp, strides, dilation)
        ),
        slice(None),
    )


def _positions(kernel: tuple) -> list[tuple]:
    return list(itertools.product(*(range(k) for k in kernel)))


def _pad(x: Any, pads: tuple, value: float = 0.0) -> Any:
    if not any(lo or hi for lo, hi in pads):
        return x
    return _xp().pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def _crop(xpad: Any, pads: tuple) -> Any:
    if not any(lo or hi for lo, hi in pads):
        return xpad
    return xpad[
        (slice(None), *(slice(lo, xpad.shape[i + 1] - hi) for i, (lo, hi) in enumerate(pads)))
    ]


def _out_size(size: int, k: int, s: int, d: int) -> int:
    return (size - d * (k - 1) - 1) // s + 1


def _window_filler(x: Any, kernel: tuple, strides: tuple, dilation: tuple, out_sp: tuple):
    """`fill(dst, lo, hi)` copies the windows of batch rows `lo:hi` of `x` into `dst`.

    `dst` has shape `(hi - lo, *out_sp, prod(kernel), channels)`.
    """
    if x.shape[-1] >= 8:
        # One strided view over all windows.
        st = x.strides
        r = len(kernel)
        view = _xp().lib.stride_tricks.as_strided(
            x,
            shape=(x.shape[0], *out_sp, *kernel, x.shape[-1]),
            strides=(
                st[0],
                *(st[1 + i] * strides[i] for i in range(r)),
                *(st[1 + i] * dilation[i] for i in range(r)),
                st[-1],
            ),
        )

        def fill(dst, lo, hi):
            dst.reshape(view[lo:hi].shape)[...] = view[lo:hi]

        return fill
    # Few channels: one strided copy per kernel position beats a view whose
    # innermost run is a handful of values.
    windows = [_window(k, out_sp, strides, dilation) for k in _positions(kernel)]

    def fill(dst, lo, hi):
        src = x[lo:hi]
        for idx, sl in enumerate(windows):
            dst[..., idx, :] = src[sl]

    return fill


def im2col(x: Any, kernel: tuple, strides: tuple, dilation: tuple, out_sp: tuple) -> Any:
    """Gathers `(batch, *out_sp, prod(kernel), channels)` windows of `x` (a contiguous copy)."""
    n, c = x.shape[0], x.shape[-1]
    cols = _xp().empty((n, *out_sp, math.prod(kernel), c), dtype=x.dtype)
    fill = _window_filler(x, kernel, strides, dilation, out_sp)
    _parallel(lambda lo, hi: fill(cols[lo:hi], lo, hi), n, cols.size)
    return cols


def col2im(
    cols: Any, shape: tuple, kernel: tuple, strides: tuple, dilation: tuple, out_sp: tuple
) -> Any:
    """Adjoint of `im2col`: scatter-adds `(batch, *out_sp, K, C)` windows into `shape`."""
    out = _xp().zeros(shape, dtype=cols.dtype)
    windows = [_window(k, out_sp, strides, dilation) for k in _positions(kernel)]

    def body(lo, hi):
        dst, src = out[lo:hi], cols[lo:hi]
        for idx, sl in enumerate(windows):
            dst[sl] += src[..., idx, :]

    _parallel(body, shape[0], cols.size)
    return out
