"""The loss and metric half of Keras 3's public Trainer surface.

`compute_loss`, `compute_metrics`, `metrics`, `reset_metrics` and
`get_metrics_result` behave as in Keras 3 and may be overridden in a `Model`
subclass; the built-in `train_step`/`test_step` call them. `compute_loss`
returns the loss of the local batch (a mean for the default reduction) plus
`self.losses` (regularization and `add_loss` terms), each summed to a scalar.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import numpy as np

from distkeras import metrics as metrics_mod
from distkeras import ops
from distkeras.backend import current_module, to_numpy
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.models import data_adapter as da
from distkeras.models.compile_utils import align_to_outputs

_HAS_TRAINING_ARG: dict[type, bool] = {}


class LossParts(NamedTuple):
    """One shard's compiled loss before division: per output `(CompileLoss, sum,
    divisor, proportional)`, the summed `self.losses` (or None), and whether
    sample weights were given."""

    outputs: list
    extra: Any
    weighted: bool


def _to_backend(a: np.ndarray) -> Any:
    return current_module().asarray(a)


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """Splits a batch into `(x, y, sample_weight)` as Keras does (tuples or lists).

    Args:
        data: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.
    """
    if isinstance(data, list):
        data = tuple(data)
    if isinstance(data, tuple):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data
        raise ValueError(
            "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
            f"`(x, y, sample_weight)`. Received: data of length {len(data)}"
        )
    return data, None, None


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """The batch `train_step` receives: `x` alone (or `(x,)` for a tuple/list x), `(x, y)`,
    or `(x, y, sample_weight)`, as Keras packs it."""
    if y is None:
        return (x,) if isinstance(x, (list, tuple)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def _flat_outputs(y_pred: Any) -> list:
    """The model's outputs, a dict's by sorted key (as `model.outputs`, Keras's `tree.flatten`)."""
    if isinstance(y_pred, Tensor):
        return [y_pred]
    if isinstance(y_pred, dict):
        return [a for k in sorted(y_pred) for a in _flat_outputs(y_pred[k])]
    return da.flatten_struct(y_pred)


def _batch_size(data: Any) -> int:
    first = da.flatten_struct(data)[0]
    return int(first.shape[0]) if getattr(first, "ndim", 1) else 1


def _pythonify(logs: Any) -> dict:
    """Floats for scalars, NumPy arrays otherwise; nested dicts flattened (Keras's logs)."""
    out: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        if isinstance(value, dict):
            out.update(_pythonify(value))
            continue
        arr = to_numpy(value.data if isinstance(value, Tensor) else value)
        arr = np.asarray(arr)
        out[key] = float(arr) if arr.ndim == 0 else np.array(arr)
    return out


class LossesAndMetrics:
    """Mixin: compute_loss, compute_metrics, metrics and their logs."""

    # ------------------------------------------------------------ loss
    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Tensor:
        """The total loss of one batch: the compiled loss plus `self.losses`, as a scalar.

        Override it for losses that `compile` cannot express (knowledge
        distillation, VAE): `fit`, `evaluate` and `train_on_batch` call it.
        In a data-parallel run it is the loss of this rank's shard; the
        gradients are then averaged across ranks at `optimizer.apply`, weighted
        by the shards' sizes. (The built-in `train_step` goes further: with an
        output mask, `ignore_class` or 'mean_with_sample_weight', it divides
        every shard by the divisor of the whole global batch.)

        Args:
            x: Input data (unused by the default implementation).
            y: Target data.
            y_pred: The model's predictions (`self(x)`).
            sample_weight: Sample weights for the compiled loss.
            training: Whether the loss is for training (unused by default).

        Returns:
            A scalar Tensor.
        """
        ref = y_pred if y_pred is not None else x
        n = _batch_size(ref) if ref is not None else 1
        loss, (_, per_output) = self._loss_terms(y, y_pred, sample_weight, n, n)
        for tracker, value in zip(self._output_trackers, per_output):
            tracker.update_state(value, sample_weight=n)
        return loss

    def _overrides_compute_loss(self) -> bool:
        return type(self).compute_loss is not LossesAndMetrics.compute_loss

    def _call_compute_loss(self, x: Any, y: Any, y_pred: Any, sw: Any, training: bool) -> Tensor:
        """Calls a (possibly user) `compute_loss`, with `training` when it takes it."""
        cls = type(self)
        takes = _HAS_TRAINING_ARG.get(cls)
        if takes is None:
            params = inspect.signature(self.compute_loss).parameters
            takes = "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
            _HAS_TRAINING_ARG[cls] = takes
        if takes:
            loss = self.compute_loss(x, y, y_pred, sw, training=training)
        else:
            loss = self.compute_loss(x, y, y_pred, sw)
        if not isinstance(loss, Tensor):
            loss = ops.convert_to_tensor(loss)
        if loss.ndim:
            loss = ops.sum(loss)
        return loss

    def _output_names(self, n: int) -> list[str]:
        struct = getattr(self, "_outputs_struct", None)
        if isinstance(struct, dict) and len(struct) == n:
            # dict outputs: losses/metrics/y keyed as the dict, lists matched by sorted key
            return [str(k) for k in sorted(struct)]
        names = getattr(self, "output_names", None)
        if names and len(names) == n:
            return list(names)
        return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]

    def _build_output_losses(self, names: list[str]) -> None:
        cl = self._compile_loss
        if cl is not None and cl.items is None:
            cl.build(names)
            self._output_trackers = [
                metrics_mod.Mean(name=f"{name}_loss") for _, _, name in cl.items if name
            ]

    def _loss_terms(self, y: Any, y_pred: Any, sw: Any, global_bs: int, local_bs: int):
        """(loss for the gradient, (tracker value, per-output values)) of one shard.

        With `global_bs == local_bs` this is Keras's `compute_loss`. Otherwise
        see `_combine_loss`: each output's loss is divided by the divisor of
        the whole global batch, so summing the gradients of all shards gives
        the exact global-batch gradient.
        """
        parts = self._loss_parts(y, y_pred, sw)
        return self._combine_loss(parts, global_bs, local_bs)

    def _loss_parts(self, y: Any, y_pred: Any, sw: Any) -> LossParts:
        """The compiled loss of one shard as sums and divisors, and `self.losses` summed."""
        outputs: list[tuple[Any, Tensor, float, bool]] = []
        cl = self._compile_loss
        if cl is not None:
            flat_pred = _flat_outputs(y_pred)
            names = self._output_names(len(flat_pred))
            self._build_output_losses(names)
            ys = align_to_outputs(y, names, "y")
            sws = (
                align_to_outputs(sw, names, "sample_weight")
                if isinstance(sw, (dict, list, tuple))
                else [sw] * len(names)
            )
            for idx, c, _ in cl.items:
                if ys[idx] is None:
                    raise ValueError(
                        f"No target was given for output {names[idx]!r}, which has a loss. "
                        f"Received: y without {names[idx]!r}"
                    )
                outputs.append((c, *c.weighted_parts(ys[idx], flat_pred[idx], sws[idx])))
        extra = None
        for r in self.losses:
            r = r if r.ndim == 0 else ops.sum(r)
            extra = r if extra is None else extra + r
        if not outputs and extra is None:
            raise ValueError(
                "No loss to compute. Provide a `loss` argument in `compile()`, call "
                "`add_loss()` in a layer, or override `compute_loss`. Received: loss=None"
            )
        return LossParts(outputs, extra, sw is not None)

    def _combine_loss(
        self, parts: LossParts, global_bs: int, local_bs: int, divisors: Any = None
    ) -> tuple[Tensor, tuple[float, list]]:
        """(loss for the gradient, (tracker value, per-output values)) from `parts`.

        Each output's sum is divided by the divisor of the global batch: given
        in `divisors` (the shards' divisors summed across ranks, see
        `global_divisors`), else extrapolated from this shard's, which is
        exact when the divisor is proportional to the batch size (no mask,
        no weights averaged by their sum). 'sum' losses are not divided;
        `self.losses` enter scaled by the shard's share. The tracker values
        are scaled by `global_bs / local_bs`, so the loss trackers (weighted
        by `local_bs`, then summed across ranks) hold the global batch's loss.
        """
        grad_loss = None
        total_value = 0.0
        per_output: list[float] = []
        up = global_bs / max(local_bs, 1)
        for i, (c, data_sum, divisor, _) in enumerate(parts.outputs):
            host_sum = float(to_numpy(data_sum.data))
            if c.reduction == "sum":
                term = data_sum * c.weight
                value = host_sum * up
            else:
                if divisors is not None:
                    total = float(divisors[i])
                elif global_bs == local_bs:
                    total = divisor
                else:
                    total = global_bs * (divisor / max(local_bs, 1))
                term = data_sum * (c.weight / total) if total else data_sum * 0.0
                value = host_sum / total * up if total else 0.0
            grad_loss = term if grad_loss is None else grad_loss + term
            total_value += value * c.weight
            per_output.append(value)  # "<output>_loss" is unweighted, as in Keras
        if parts.extra is not None:
            share = local_bs / max(global_bs, 1)
            term = parts.extra if share == 1.0 else parts.extra * share
            grad_loss = term if grad_loss is None else grad_loss + term
            total_value += float(to_numpy(parts.extra.data))
        return grad_loss, (total_value, per_output)

    def _shard_loss_values(self, y: Any, y_pred: Any, sw: Any, n: int) -> tuple[float, list]:
        """The loss tracker values of one evaluation shard (`test_step`).

        Inside `evaluate` of a data-parallel run the divisors of the global
        batch are summed across ranks, so the reported loss is the global
        batch's, whatever the number of ranks.
        """
        parts = self._loss_parts(y, y_pred, sw)
        global_bs = self._step_global_batch or n
        divisors = None
        if self._step_global_batch is not None and self._communicator().size > 1:
            divisors = self.global_divisors([(0, parts)], 1, sw is not None)
        return self._combine_loss(parts, global_bs, n, divisors)[1]

    def _divisor_sync(self, weighted: bool) -> bool | None:
        """Whether the compiled loss needs divisors summed across ranks: True, False,
        or None while unknown (the first data-parallel step asks every rank)."""
        known = getattr(self._compile_loss, "_divisor_sync", None)
        return None if known is None else known.get(weighted)

    def _start_global_divisor(self, parts: LossParts) -> Any:
        """Starts summing one output's divisor across ranks; returns `wait() -> float`.

        Only once the first step has decided the sum is needed (every rank
        then calls it at the same point of each step).
        """
        arr = _to_backend(np.array([parts.outputs[0][2]], dtype=np.float64))
        handle = self._communicator().allreduce_async(
            [arr], op="sum", deterministic=False, compression=None
        )

        def wait() -> float:
            out = handle.wait()
            out = out[0] if isinstance(out, list) else out
            return float(np.asarray(to_numpy(out), dtype=np.float64).reshape(-1)[0])

        return wait

    def global_divisors(self, rows: list, n_rows: int, weighted: bool) -> list | None:
        """Sums the shards' loss divisors across ranks (one tiny all-reduce), or None.

        Every rank calls it once per step with the same `n_rows` and `weighted`.

        Args:
            rows: `(index, LossParts)` of each shard this rank computed, at the
                shard's fixed position in the global batch (0 for one shard
                per rank).
            n_rows: The number of shard positions of the global batch.
            weighted: Whether the step has sample weights.

        Returns:
            The global divisor of each output, summed over the shards in
            index order (the same on every rank and for every world size), or
            None when no output needs it: decided on the first step with every
            rank's view, then remembered for this compiled loss.
        """
        cl = self._compile_loss
        if cl is None or not cl.items:
            return None
        known = self._divisor_sync(weighted)
        if known is False:
            return None
        n_out = len(cl.items)
        buf = np.zeros((n_rows, n_out + 1), dtype=np.float64)
        for i, parts in rows:
            for j, (_, _, divisor, proportional) in enumerate(parts.outputs):
                buf[i, j] = divisor
                buf[i, n_out] += 0.0 if proportional else 1.0
        if self._communicator().size > 1:
            # Deterministic mode gives each micro-shard its own row, so every entry has
            # one nonzero contributor and any summing order is exact (x + 0 == x).
            # In default mode a rounding difference in float64 could only rescale a
            # rank's own share, before the gradients are summed: no drift.
            out = self._communicator().allreduce(
                [_to_backend(buf)], op="sum", deterministic=False, compression=None
            )
            buf = np.asarray(to_numpy(out[0] if isinstance(out, list) else out), np.float64)
        if known is None:
            table = getattr(cl, "_divisor_sync", None) or {}
            table[weighted] = bool(buf[:, n_out].sum() > 0)
            cl._divisor_sync = table
            if not table[weighted]:
                return None
        total = np.zeros(n_out, dtype=np.float64)
        for row in buf[:, :n_out]:  # in index order: the same sums for every world size
            total += row
        return [float(t) for t in total]

    def _track_loss(self, value: float, per_output: list, n: int) -> None:
        """Feeds one shard's loss values to the loss trackers."""
        if self._loss_tracker is not None:
            self._loss_tracker.update_state(value, sample_weight=n)
        for t, v in zip(self._output_trackers, per_output):
            t.update_state(v, sample_weight=n)

    # ------------------------------------------------------------ metrics
    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> dict:
        """Updates the compiled metrics with one batch; returns `get_metrics_result()`.

        Args:
            x: Input data (unused by the default implementation).
            y: Target data.
            y_pred: The model's predictions.
            sample_weight: Sample weights (used by `weighted_metrics`).

        Returns:
            A dict of metric names to values, passed to the batch callbacks.
        """
        cm = self._compile_metrics
        if cm is not None and y is not None:
            with no_grad():
                flat_pred = _flat_outputs(y_pred)
                names = self._output_names(len(flat_pred))
                ys = align_to_outputs(y, names, "y")
                sws = (
                    align_to_outputs(sample_weight, names, "sample_weight")
                    if isinstance(sample_weight, (dict, list, tuple))
                    else [sample_weight] * len(names)
                )
                cm.update_state(ys, flat_pred, sws, names)
        return self.get_metrics_result()

    def _build_compiled_metrics(self, x: Any, y: Any) -> None:
        """Creates the compiled metric objects from one sample, so `metrics` lists them at once.

        A custom `train_step` that updates `self.metrics` by hand then sees
        them from the first batch on, as in Keras.
        """
        cm = self._compile_metrics
        need_metrics = cm is not None and not cm.built and y is not None
        need_losses = self._compile_loss is not None and self._compile_loss.items is None
        if not (need_metrics or need_losses):
            return
        with no_grad():
            first = da.map_struct(lambda a: a[:1], x)
            flat_pred = _flat_outputs(self(first, training=False))
        names = self._output_names(len(flat_pred))
        self._build_output_losses(names)
        if need_metrics:
            y1 = da.map_struct(lambda a: np.asarray(a)[:1], y)
            cm.build(align_to_outputs(y1, names, "y"), flat_pred, names)

    @property
    def metrics(self) -> list:
        """The loss tracker, per-output loss trackers, compiled metrics, then the
        metrics set as attributes of the model and of its layers (Keras 3's order)."""
        out = []
        if self.compiled:
            if self._loss_tracker is not None:
                out.append(self._loss_tracker)
            out.extend(self._output_trackers)
            if self._compile_metrics is not None:
                out.extend(self._compile_metrics.metrics)
        seen = {id(m) for m in out}
        found = self.__dict__.get("_attribute_metrics_cache")
        if found is None:
            found = self._attribute_metrics()
            object.__setattr__(self, "_attribute_metrics_cache", found)
        for m in found:
            if id(m) not in seen:
                seen.add(id(m))
                out.append(m)
        return out

    def _rescan_metrics(self) -> None:
        """Forgets the attribute metrics found so far (fit, evaluate and *_on_batch start so)."""
        object.__setattr__(self, "_attribute_metrics_cache", None)

    def _attribute_metrics(self) -> list:
        """Metrics assigned as attributes of the model or its (non-model) layers."""
        found: list = []
        metric, containers = metrics_mod.Metric, (list, tuple)
        for layer in self._flatten_layers():
            if layer is not self and isinstance(layer, LossesAndMetrics):
                continue
            for key, value in vars(layer).items():  # runs at every train_on_batch: kept tight
                if isinstance(value, metric):
                    if not key.startswith("_"):
                        found.append(value)
                elif isinstance(value, containers) and value and not key.startswith("_"):
                    found.extend(m for m in value if isinstance(m, metric))
        return found

    @property
    def metrics_names(self) -> list[str]:
        """Names of `metrics`."""
        return [m.name for m in self.metrics]

    @property
    def metrics_variables(self) -> list:
        """The state variables of every metric in `metrics`."""
        return [v for m in self.metrics for v in m.variables]

    def reset_metrics(self) -> None:
        """Resets the state of every metric in `metrics`."""
        for m in self.metrics:
            m.reset_state()

    def get_metrics_result(self) -> dict:
        """The current value of every metric in `metrics`, as a dict.

        A metric whose result is a dict contributes its items; scalars come
        back as floats, vector results (e.g. `F1Score(average=None)`) as arrays.
        """
        out: dict[str, Any] = {}
        for m in self.metrics:
            r = m.result()
            if isinstance(r, dict):
                out.update(r)
            else:
                out[m.name] = r
        return _pythonify(out)

    def _reduce_metrics(self) -> None:
        """Sums every metric's state across the ranks (exact: states are totals and counts)."""
        comm = self._communicator()
        if comm.size > 1:
            arrays = [v.data for m in self.metrics for v in m.variables]
            if arrays:
                comm.allreduce(arrays, op="sum")

    def _logs(self, reduce: bool = False) -> dict[str, Any]:
        """Current metric results; with `reduce`, metric states are summed across ranks first."""
        if reduce:
            self._reduce_metrics()
        return self.get_metrics_result()

    def _result_or_logs(self, logs: Any, reduce: bool) -> dict:
        """Keras's end-of-epoch logs: the metrics' results when the step returned
        them (reduced across ranks), else what the last step returned."""
        logs = _pythonify(logs) if isinstance(logs, dict) else {}
        if reduce:
            self._reduce_metrics()
        results = self.get_metrics_result()
        if not logs or set(logs) == set(results):
            return results
        return logs
