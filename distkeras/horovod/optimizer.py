"""`hvd.DistributedOptimizer`: an optimizer whose update averages the ranks' gradients.

As in Horovod, `DistributedOptimizer(opt)` returns a new optimizer of a
subclass of `type(opt)` (same class name and config, so a saved model
reloads as the plain optimizer). Every update path of distkeras ends in one
of two methods, and the subclass reduces the gradients there, just before
the update:

- `apply_flat(buffer)`: the built-in `fit` step, over the model's fused
  gradient buffer (one all-reduce, no packing);
- `_apply_local(grads, variables)`: `optimizer.apply(grads, variables)`
  from a custom `train_step` or a custom training loop (the present
  gradients are packed into one array per dtype).

Under `hvd.init()` the model's `GradientSync` (distkeras/distributed/
data_parallel.py) runs on a single-process communicator, so it is the
identity and routes every step here; the reduction is the all-reduce of
`distkeras.horovod._ops` on the job's communicator, join-aware.

`backward_passes_per_step=k` sums the gradients of k calls locally and
reduces and applies them on the k-th call (divided by k when
`average_aggregated_gradients=True`); the other calls change nothing, not
even `iterations`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.horovod import _ops

_SUBCLASSES: dict[type, type] = {}


def _data(g: Any) -> Any:
    return getattr(g, "data", g)


class _Settings:
    """How a distributed optimizer reduces: op, wire compression, local aggregation."""

    def __init__(self, op: str, wire: str | None, passes: int, average_passes: bool, pre: float):
        self.op = op
        self.wire = wire
        self.passes = passes
        self.average_passes = average_passes
        self.predivide = pre
        self._acc: list | None = None
        self._count = 0

    def ready(self, flats: list) -> bool:
        """Accumulates `flats`; True (with the aggregate written into them) on the k-th call."""
        if self.passes == 1:
            return True
        if self._acc is None or [a.shape for a in self._acc] != [f.shape for f in flats]:
            self._acc = [np.zeros_like(f) for f in flats]
            self._count = 0
        for a, f in zip(self._acc, flats):
            np.add(a, f, out=a)
        self._count += 1
        if self._count < self.passes:
            return False
        for a, f in zip(self._acc, flats):
            f[...] = a / self.passes if self.average_passes else a
            a.fill(0)
        self._count = 0
        return True

    def reduce(self, flat: Any) -> None:
        if self.predivide != 1.0:
            np.multiply(flat, 1.0 / self.predivide, out=flat)
        _ops.reduce_flat(flat, self.op, self.wire)
        if self.predivide != 1.0:
            np.multiply(flat, self.predivide, out=flat)


class _DistributedMixin:
    """Reduces gradients across ranks at the two update entry points (module docstring)."""

    _hvd: _Settings

    def apply_flat(self, buffer: Any) -> None:
        buffers = buffer if isinstance(buffer, (list, tuple)) else [buffer]
        grads = [b.grad for b in buffers]
        if not self._hvd.ready(grads):
            return
        for g in grads:
            self._hvd.reduce(g)
        super().apply_flat(buffer)

    def _apply_local(self, grads: list, variables: list) -> None:
        present = [i for i, g in enumerate(grads) if g is not None]
        groups: dict[str, list[int]] = {}
        for i in present:
            groups.setdefault(np.dtype(variables[i].data.dtype).name, []).append(i)
        keys = sorted(groups)
        flats = []
        for k in keys:
            parts = [np.asarray(_data(grads[i]), dtype=k).ravel() for i in groups[k]]
            flats.append(np.concatenate(parts) if parts else np.zeros(0, dtype=k))
        if not self._hvd.ready(flats):
            return
        out = list(grads)
        for k, flat in zip(keys, flats):
            self._hvd.reduce(flat)
            offset = 0
            for i in groups[k]:
                shape = variables[i].data.shape
                n = int(np.prod(shape))
                out[i] = flat[offset : offset + n].reshape(shape)
                offset += n
        super()._apply_local(out, variables)


def _subclass(cls: type) -> type:
    sub = _SUBCLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (_DistributedMixin, cls), {"__module__": cls.__module__})
        _SUBCLASSES[cls] = sub
    return sub


def _settings(
    compression: Any,
    op: Any,
    backward_passes_per_step: Any,
    average_aggregated_gradients: bool,
    gradient_predivide_factor: float,
) -> _Settings:
    if op not in (_ops.Average, _ops.Sum):
        _ops._check_op(op)  # names Adasum / unknown ops
        raise ValueError(
            f"DistributedOptimizer reduces with hvd.Average or hvd.Sum. Received: op={op!r}"
        )
    if (
        isinstance(backward_passes_per_step, bool)
        or not isinstance(backward_passes_per_step, (int, np.integer))
        or backward_passes_per_step < 1
    ):
        raise ValueError(
            "backward_passes_per_step must be a positive integer. "
            f"Received: backward_passes_per_step={backward_passes_per_step!r}"
        )
    if not isinstance(gradient_predivide_factor, (int, float)) or gradient_predivide_factor <= 0:
        raise ValueError(
            "gradient_predivide_factor must be a positive number. "
            f"Received: gradient_predivide_factor={gradient_predivide_factor!r}"
        )
    if gradient_predivide_factor != 1.0 and op != _ops.Average:
        raise ValueError(
            "gradient_predivide_factor not supported with op != Average. "
            f"Received: gradient_predivide_factor={gradient_predivide_factor}, op={op!r}"
        )
    return _Settings(
        _ops._OPS[op],
        _ops._wire(compression),
        int(backward_passes_per_step),
        bool(average_aggregated_gradients),
        float(gradient_predivide_factor),
    )


def DistributedOptimizer(  # noqa: N802 - Horovod's name
    optimizer: Any,
    name: str | None = None,
    device_dense: str = "",
    device_sparse: str = "",
    compression: Any = _ops.Compression.none,
    sparse_as_dense: bool = False,
    gradient_predivide_factor: float = 1.0,
    op: Any = _ops.Average,
    backward_passes_per_step: int = 1,
    average_aggregated_gradients: bool = False,
    num_groups: int = 0,
    groups: Any = None,
    process_set: Any = None,
    scale_local_gradients: bool = True,
) -> Any:
    """Wraps `optimizer` so that each update uses the ranks' reduced gradients.

    Args:
        optimizer: A distkeras optimizer (instance or name).
        name: A new name for the wrapped optimizer (default: the original's).
        device_dense: Accepted for compatibility (no effect).
        device_sparse: Accepted for compatibility (no effect).
        compression: `hvd.Compression.none` or `hvd.Compression.fp16` (gradients
            travel as float16 and are summed in float32).
        sparse_as_dense: Accepted (distkeras gradients are always dense).
        gradient_predivide_factor: Divides gradients by this before the sum
            and multiplies the average by it after (op must be Average).
        op: `hvd.Average` (default) or `hvd.Sum`; `hvd.Adasum` is refused.
        backward_passes_per_step: Calls aggregated locally per reduction and update.
        average_aggregated_gradients: Divide the aggregate of those calls by their number.
        num_groups: Accepted (fusion grouping only; every reduction is already one call).
        groups: Accepted, as `num_groups`.
        process_set: Only None (the whole job).
        scale_local_gradients: Accepted (no local variables are registered).

    Returns:
        A new optimizer of the same class and config that reduces gradients.
    """
    from distkeras import optimizers  # noqa: PLC0415

    if process_set is not None:
        raise NotImplementedError(
            f"Horovod process sets are not offered. Received: process_set={process_set!r}"
        )
    _ops._comm()  # hvd.init() first, as in Horovod
    settings = _settings(
        compression,
        op,
        backward_passes_per_step,
        average_aggregated_gradients,
        gradient_predivide_factor,
    )
    opt = optimizers.get(optimizer)
    if isinstance(opt, _DistributedMixin):
        raise ValueError(
            "The optimizer is already a DistributedOptimizer. "
            f"Received: optimizer={type(opt).__name__}"
        )
    config = opt.get_config()
    if name is not None:
        config["name"] = name
    new = _subclass(type(opt)).from_config(config)
    new._hvd = settings
    return new


def distribute_in_place(optimizer: Any, compression: Any = _ops.Compression.none) -> Any:
    """Makes an existing optimizer (with its state) a DistributedOptimizer (Average)."""
    if not isinstance(optimizer, _DistributedMixin):
        optimizer.__class__ = _subclass(type(optimizer))
    optimizer._hvd = _settings(compression, _ops.Average, 1, False, 1.0)
    return optimizer


def is_distributed(optimizer: Any) -> bool:
    """True for an optimizer made by `DistributedOptimizer`."""
    return isinstance(optimizer, _DistributedMixin)
