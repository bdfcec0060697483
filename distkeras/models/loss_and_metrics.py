"""The loss and metric half of Keras 3's public Trainer surface.

`compute_loss`, `compute_metrics`, `metrics`, `reset_metrics` and
`get_metrics_result` behave as in Keras 3 and may be overridden in a `Model`
subclass; the built-in `train_step`/`test_step` call them. `compute_loss`
returns the loss of the local batch (a mean for the default reduction) plus
`self.losses` (regularization and `add_loss` terms), each summed to a scalar.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from distkeras import metrics as metrics_mod
from distkeras import ops
from distkeras.backend import to_numpy
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.models import data_adapter as da
from distkeras.models.compile_utils import align_to_outputs

_HAS_TRAINING_ARG: dict[type, bool] = {}


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
    return [y_pred] if isinstance(y_pred, Tensor) else da.flatten_struct(y_pred)


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
        gradients are then averaged across ranks at `optimizer.apply`.

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
            return [str(k) for k in struct]  # dict outputs: losses/metrics/y keyed as the dict
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

        Each output's loss is divided by the global number of its loss elements
        (or summed, for reduction='sum'), so summing the gradients of all shards
        gives the exact global-batch gradient; `self.losses` enter scaled by
        the shard's share. With `global_bs == local_bs` this is Keras's
        `compute_loss`.
        """
        grad_loss = None
        total_value = 0.0
        per_output: list[float] = []
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
                data_sum, elements = c.weighted_sum(ys[idx], flat_pred[idx], sws[idx])
                host_sum = float(to_numpy(data_sum.data))
                if c.reduction == "sum":
                    term = data_sum * c.weight
                    # Keras reports the batch's sum; the tracker weighs each shard by local_bs.
                    value = host_sum * global_bs / max(local_bs, 1)
                else:
                    per_sample_elems = elements / max(local_bs, 1)
                    term = data_sum * (c.weight / max(global_bs * per_sample_elems, 1.0))
                    value = host_sum / max(local_bs * per_sample_elems, 1.0)
                grad_loss = term if grad_loss is None else grad_loss + term
                total_value += value * c.weight
                per_output.append(value)  # Keras 3 reports each output's loss unweighted
        extra = self.losses
        if extra:
            total = None
            for r in extra:
                r = r if r.ndim == 0 else ops.sum(r)
                total = r if total is None else total + r
            share = local_bs / max(global_bs, 1)
            term = total if share == 1.0 else total * share
            grad_loss = term if grad_loss is None else grad_loss + term
            total_value += float(to_numpy(total.data))
        if grad_loss is None:
            raise ValueError(
                "No loss to compute. Provide a `loss` argument in `compile()`, call "
                "`add_loss()` in a layer, or override `compute_loss`. Received: loss=None"
            )
        return grad_loss, (total_value, per_output)

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
        for layer in self._flatten_layers():
            if layer is not self and isinstance(layer, LossesAndMetrics):
                continue
            for key, value in vars(layer).items():
                if key.startswith("_"):
                    continue
                items = value if isinstance(value, (list, tuple)) else [value]
                found.extend(m for m in items if isinstance(m, metrics_mod.Metric))
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
