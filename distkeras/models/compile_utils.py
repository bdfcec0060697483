"""Resolution of the loss and metrics given to `compile`, and their reduction."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import losses as losses_mod
from distkeras import metrics as metrics_mod
from distkeras import ops
from distkeras.backend import to_numpy as backend_to_numpy
from distkeras.backend.autodiff import Tensor

_CROSSENTROPY = ("crossentropy", "ce")


def is_binary_or_sparse_categorical(y_true_shape: Any, y_pred_shape: Any) -> tuple[bool, bool]:
    """Keras 3's reading of the shapes: (binary, sparse categorical)."""
    t, p = tuple(y_true_shape), tuple(y_pred_shape)
    t_last, p_last = (t[-1] if t else None), (p[-1] if p else None)
    is_binary = p_last == 1
    is_sparse = len(t) < len(p) or (t_last == 1 and p_last is not None and p_last > 1)
    return is_binary, is_sparse


def get_loss(identifier: Any, y_true: Any = None, y_pred: Any = None) -> losses_mod.Loss | None:
    """The `Loss` that `compile(loss=identifier)` computes, as Keras 3 resolves it.

    A loss function or a name resolving to one ('binary_crossentropy', 'mse',
    a user's function) is wrapped in `LossFunctionWrapper`, which rank-matches
    the labels to the predictions first (labels of shape (n,) against an
    output of shape (n, 1)); 'crossentropy' / 'ce' pick the binary, sparse or
    categorical crossentropy from the shapes of the first batch.

    Args:
        identifier: A loss name, function, class, config dict or `Loss` instance.
        y_true: The labels (needed only for 'crossentropy').
        y_pred: The predictions (needed only for 'crossentropy').

    Returns:
        A `Loss` instance, or None for no loss.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier.lower() in _CROSSENTROPY:
        is_binary, is_sparse = is_binary_or_sparse_categorical(np.shape(y_true), y_pred.shape)
        if is_binary:
            fn = losses_mod.binary_crossentropy
        elif is_sparse:
            fn = losses_mod.sparse_categorical_crossentropy
        else:
            fn = losses_mod.categorical_crossentropy
    else:
        fn = losses_mod.get(identifier)
    if isinstance(fn, losses_mod.Loss):
        return fn
    name = identifier if isinstance(identifier, str) else getattr(fn, "__name__", None)
    return losses_mod.LossFunctionWrapper(fn, name=name)


class CompileLoss:
    """The compiled loss of one output: Keras 3's per-sample values, weights and reduction.

    Args:
        loss: A loss name, function or `Loss` instance.
        loss_weights: Optional scalar weight.
    """

    def __init__(self, loss: Any, loss_weights: Any = None):
        self.identifier = loss
        deferred = isinstance(loss, str) and loss.lower() in _CROSSENTROPY
        self.fn: losses_mod.Loss | None = None if deferred else get_loss(loss)
        if isinstance(loss_weights, (list, tuple)):
            loss_weights = loss_weights[0] if len(loss_weights) == 1 else loss_weights
        if isinstance(loss_weights, dict):
            loss_weights = next(iter(loss_weights.values())) if len(loss_weights) == 1 else 1.0
        self.weight = 1.0 if loss_weights is None else float(loss_weights)

    @property
    def reduction(self) -> Any:
        """The reduction of the loss ('sum_over_batch_size' until 'crossentropy' resolves)."""
        return "sum_over_batch_size" if self.fn is None else self.fn.reduction

    def _resolved(self, y_true: Any, y_pred: Tensor) -> losses_mod.Loss:
        if self.fn is None:
            self.fn = get_loss(self.identifier, y_true, y_pred)
        return self.fn

    def per_sample(self, y_true: Any, y_pred: Tensor) -> Tensor:
        """Unreduced losses (batch shape), differentiable in y_pred."""
        return self._resolved(y_true, y_pred).call(y_true, y_pred)

    def weighted_sum(self, y_true: Any, y_pred: Tensor, sample_weight: Any) -> tuple[Tensor, float]:
        """Sum of the weighted per-sample losses, and what Keras divides it by.

        As `Loss.__call__` in Keras 3: the prediction's mask and the loss's own
        mask (`ignore_class`) join the sample weights, which are rank-matched
        to the losses. The sum weighs masked-out entries 0 and valid ones 1 (no
        rescaling), so that sums and divisors of shards add up to those of the
        whole batch. The divisor is the number of loss entries
        ('sum_over_batch_size'), counting only the valid ones under a mask
        (times entries per mask entry), or the sum of the merged weights
        ('mean_with_sample_weight' with weights or a mask); 'sum' ignores it.
        """
        total, divisor, _ = self.weighted_parts(y_true, y_pred, sample_weight)
        return total, divisor

    def weighted_parts(
        self, y_true: Any, y_pred: Tensor, sample_weight: Any
    ) -> tuple[Tensor, float, bool]:
        """`weighted_sum`'s (sum, divisor), and whether the divisor is proportional to
        the batch size (no mask, and no weights averaged by 'mean_with_sample_weight')."""
        values = self.per_sample(y_true, y_pred)
        in_mask = getattr(y_pred, "_keras_mask", None)
        out_mask = getattr(values, "_keras_mask", None)
        if in_mask is not None and out_mask is not None:
            mask = backend_to_numpy(in_mask).astype(bool) & backend_to_numpy(out_mask).astype(bool)
        else:
            mask = in_mask if in_mask is not None else out_mask
        reduction = self.fn.reduction
        # 'sum' merges the mask as 0/1 weights (no reweighting by size/valid).
        values, sw = losses_mod.weigh_values(values, sample_weight, mask, "sum")
        size = int(values.size)
        if reduction == "mean_with_sample_weight" and sw is not None:
            divisor = float(backend_to_numpy(sw.data).sum(dtype="float64"))
            proportional = False
        elif mask is not None and reduction != "sum":
            m = backend_to_numpy(getattr(mask, "data", mask)).astype(bool)
            valid = int(m.sum())
            divisor = float(valid) if m.size == size else valid * size / m.size
            proportional = False
        else:
            divisor, proportional = float(size), True
        return ops.sum(values), divisor, proportional

    def __call__(self, y_true: Any, y_pred: Tensor, sample_weight: Any = None) -> Tensor:
        """The reduced, weighted loss of one batch, as Keras 3's compiled loss returns it.

        The data-parallel step divides by the global divisor instead (see
        `weighted_sum`); this is the one-process value, times `loss_weights`.
        """
        total, divisor = self.weighted_sum(y_true, y_pred, sample_weight)
        if self.fn.reduction in (None, "none"):
            raise ValueError(
                "A compiled loss must reduce to a scalar. "
                f"Received: reduction={self.fn.reduction!r}"
            )
        if self.fn.reduction != "sum":
            total = ops.divide(total, divisor) if divisor else ops.multiply(total, 0.0)
        return ops.multiply(total, self.weight) if self.weight != 1.0 else total


def _flatten(x: Any) -> list:
    if isinstance(x, dict):
        return [v for k in x for v in _flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flatten(item)]
    return [x]


def align_to_outputs(data: Any, names: list[str], what: str) -> list:
    """Per-output list of `data` (targets, sample weights): from a dict by name, a list, or one."""
    n = len(names)
    if data is None:
        return [None] * n
    if isinstance(data, dict):
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ValueError(
                f"`{what}` has keys that are not output names: {unknown}. "
                f"Expected keys in {names}. Received: {what} keys {sorted(data)}"
            )
        return [data.get(name) for name in names]
    if isinstance(data, (list, tuple)) and n > 1:
        if len(data) != n:
            raise ValueError(
                f"The model has {n} outputs, but `{what}` has {len(data)} entries. "
                f"Received: {what} of length {len(data)}"
            )
        return list(data)
    if n > 1:
        raise ValueError(
            f"The model has {n} outputs {names}; `{what}` must be a list or dict with one "
            f"entry per output. Received: {what} of type {type(data).__name__}"
        )
    if isinstance(data, (list, tuple)) and len(data) == 1 and what != "sample_weight":
        return [data[0]]
    return [data]


def _per_output(spec: Any, names: list[str], what: str, broadcast_list: bool) -> list:
    """Spreads a compile argument over the outputs (dict by name, list by position, else all)."""
    n = len(names)
    if isinstance(spec, dict):
        return align_to_outputs(spec, names, what)
    if isinstance(spec, (list, tuple)) and n > 1:
        if broadcast_list and not any(isinstance(s, (list, tuple, dict)) for s in spec):
            return [list(spec)] * n
        if len(spec) != n:
            raise ValueError(
                f"The model has {n} outputs, but `{what}` has {len(spec)} entries. "
                f"Received: {what}={spec!r}"
            )
        return list(spec)
    if n > 1 and not broadcast_list and isinstance(spec, (list, tuple)):
        return list(spec)
    return [spec] * n


class OutputLosses:
    """The compiled loss of every output, resolved on the first batch.

    Args:
        loss: One loss for every output, or a list (by position) or dict (by output name).
        loss_weights: A scalar, list or dict of weights.
    """

    def __init__(self, loss: Any, loss_weights: Any = None):
        self.loss = loss
        self.loss_weights = loss_weights
        self.items: list[tuple[int, CompileLoss, str | None]] | None = None
        self.names: list[str] = []
        if not isinstance(loss, (list, tuple, dict)):
            CompileLoss(loss)  # validate the identifier at compile time

    def build(self, names: list[str]) -> None:
        self.names = names
        losses = _per_output(self.loss, names, "loss", broadcast_list=False)
        if len(names) == 1 and isinstance(losses[0], (list, tuple)):
            losses = [losses[0][0]]
        weights = (
            [None] * len(names)
            if self.loss_weights is None
            else _per_output(self.loss_weights, names, "loss_weights", broadcast_list=False)
        )
        multi = len(names) > 1
        self.items = [
            (i, CompileLoss(lo, w), names[i] if multi else None)
            for i, (lo, w) in enumerate(zip(losses, weights))
            if lo is not None
        ]
        if not self.items:
            raise ValueError(f"No output has a loss. Received: loss={self.loss!r}")
        if isinstance(self.loss, dict):  # Keras 3 tracks a dict's losses in its key order
            keys = [str(k) for k in self.loss]
            self.items.sort(key=lambda item: keys.index(names[item[0]]))


class CompileMetrics:
    """The compiled metrics of every output, created on the first batch.

    Args:
        metrics: Metric names/objects applied without sample weights (a list for
            every output, or a list of lists / dict by output name).
        weighted_metrics: Metric names/objects applied with sample weights.
        loss: The compiled loss identifier (decides what 'accuracy' means).
    """

    def __init__(self, metrics: Any, weighted_metrics: Any, loss: Any):
        self.spec = metrics
        self.weighted_spec = weighted_metrics
        self.loss = loss
        self.metrics: list[Any] = []
        self.entries: list[tuple[int, Any, bool]] = []
        self.multi_output = False
        self.built = False

    def build(self, y_true: list, y_pred: list, names: list[str]) -> None:
        """Creates the metric objects from the first batch's shapes."""
        multi = len(names) > 1
        self.multi_output = multi  # (their names then differ from Keras's sub-metrics')
        losses = _per_output(self.loss, names, "loss", broadcast_list=False)
        for spec, weighted in ((self.spec, False), (self.weighted_spec, True)):
            if spec is None:
                continue
            per = _per_output(spec, names, "metrics", broadcast_list=True)
            for i, specs in enumerate(per):
                for item in _as_list(specs):
                    m = self._make(item, y_true[i], y_pred[i], losses[i])
                    if multi:
                        m.name = f"{names[i]}_{m.name}"
                    self.entries.append((i, m, weighted))
                    self.metrics.append(m)
        self.built = True

    @staticmethod
    def _make(spec: Any, y_true: Any, y_pred: Tensor, loss: Any) -> Any:
        # 'accuracy'/'acc' become binary, sparse or categorical accuracy from the shapes.
        return metrics_mod.get_metric(spec, np.shape(y_true), y_pred.shape, loss)

    def update_state(self, y_true: list, y_pred: list, sample_weight: list, names: list) -> None:
        if not self.built:
            self.build(y_true, y_pred, names)
        for i, m, weighted in self.entries:
            if y_true[i] is None:
                continue
            m.update_state(
                y_true[i], y_pred[i], sample_weight=sample_weight[i] if weighted else None
            )

    def reset_state(self) -> None:
        for m in self.metrics:
            m.reset_state()


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def class_weight_to_sample_weight(y: Any, class_weight: dict, sample_weight: Any) -> np.ndarray:
    """Per-sample weights from a {class: weight} dict (multiplied into sample_weight)."""
    y = np.asarray(y)
    labels = (
        np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    )
    labels = np.rint(labels).astype(np.int64)
    w = np.ones(len(labels), dtype=np.float64)
    for cls, weight in class_weight.items():
        w[labels == int(cls)] = weight
    if sample_weight is not None:
        w = w * np.asarray(sample_weight, dtype=np.float64).reshape(len(w), -1)[:, 0]
    return w
