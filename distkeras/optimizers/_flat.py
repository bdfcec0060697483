"""Flat-buffer optimizer state: slots fused like a `FlatBuffer`, and threaded chunking."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from distkeras.backend import current_module

_THREADS: dict[str, Any] = {"n": None, "pool": None}
_MIN_CHUNK = 1 << 16  # elements; below this a thread hand-off costs more than it saves


def set_threads(n: int | None) -> None:
    """Sets the number of threads for flat updates (None: $DISTKERAS_OPTIMIZER_THREADS or 1)."""
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
        n = int(os.environ.get("DISTKERAS_OPTIMIZER_THREADS", "1") or 1)
        _THREADS["n"] = max(1, n)
        n = _THREADS["n"]
    return n


def run_chunked(update, chunks: list, coef: Any) -> None:
    """Runs `update(*chunk, coef)` for every chunk, the first on this thread."""
    pool = _THREADS["pool"]
    if pool is None:
        pool = _THREADS["pool"] = ThreadPoolExecutor(max_workers=num_threads() - 1)
    futures = [pool.submit(update, *c, coef) for c in chunks[1:]]
    update(*chunks[0], coef)
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
        self._chunk_key: int | None = None
        self._chunks: list | None = None

    def _fuse(self, slot_vars: list, indices: list[int]):
        flat = self.buffer.slot_like()
        for view, i in zip(self.buffer.views_of(flat), indices):
            var = slot_vars[i]
            view[...] = var.data
            var.data = view
        return flat

    @property
    def chunks(self) -> list | None:
        """`(param, grad, slots, scratch)` slices for a threaded update, or None."""
        n = num_threads()
        if n != self._chunk_key:
            self._chunk_key = n
            self._chunks = self._make_chunks(n)
        return self._chunks

    def _make_chunks(self, n: int) -> list | None:
        size = self.buffer.size
        if n <= 1 or current_module() is not np or size < 2 * _MIN_CHUNK:
            return None
        n = min(n, size // _MIN_CHUNK)
        step = -(-size // n)
        step = -(-step // 64) * 64  # keep chunk starts 256-byte aligned
        out = []
        for a in range(0, size, step):
            b = min(size, a + step)
            out.append(
                (
                    self.buffer.data[a:b],
                    self.buffer.grad[a:b],
                    [s[a:b] for s in self.slots],
                    [s[a:b] for s in self.scratch],
                )
            )
        return out
