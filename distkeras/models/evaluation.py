"""evaluate / predict and the *_on_batch evaluation methods, shared by all models.

In a data-parallel run both shard the data, reduce the metrics exactly (sums
and counts across ranks) and return the full results, in the original order,
on every rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import callbacks as callbacks_mod
from distkeras.backend import to_numpy
from distkeras.backend.autodiff import no_grad
from distkeras.models import data_adapter as da
from distkeras.models import input_checks
from distkeras.models.loss_and_metrics import (
    _batch_size,
    pack_x_y_sample_weight,
    unpack_x_y_sample_weight,
)


class Evaluation:
    """Mixin: test_step, predict_step, evaluate, predict and their *_on_batch forms."""

    def test_step(self, data: Any) -> dict:
        """One evaluation step on one batch (no gradients); returns the batch logs.

        Args:
            data: The batch: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`.

        Returns:
            A dict of metric values (`compute_metrics`' result by default).
        """
        x, y, sw = unpack_x_y_sample_weight(data)
        n = _batch_size(x)
        y_pred = self(x, training=False)
        if self._overrides_compute_loss():
            loss = self._call_compute_loss(x, y, y_pred, sw, training=False)
            self._track_loss(float(to_numpy(loss.data)), [], n)
        else:
            value, per_output = self._shard_loss_values(y, y_pred, sw, n)
            self._track_loss(value, per_output, n)
        return self.compute_metrics(x, y, y_pred, sw)

    def predict_step(self, data: Any) -> Any:
        """The model's outputs on one batch (`self(x, training=False)`).

        Args:
            data: The batch; only its `x` is used.
        """
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)

    # ------------------------------------------------------------ evaluate / predict
    def _evaluate_adapter(self, adapter: Any, cbs: Any) -> dict[str, float]:
        self._rescan_metrics()
        self.reset_metrics()
        if cbs is not None:
            cbs.on_test_begin()
        logs: dict = {}
        built = False
        for step, (bx, by, bsw, gbs) in enumerate(adapter.batches(0)):
            if not built:
                if not self.built:
                    self._build_from_data(bx)
                if self.compiled:
                    self._build_compiled_metrics(bx, by)
                built = True
            if cbs is not None:
                cbs.on_test_batch_begin(step)
            self._step_global_batch = gbs  # the loss divides by the global batch's divisor
            try:
                with no_grad():
                    logs = self.test_step(pack_x_y_sample_weight(bx, by, bsw))
            finally:
                self._step_global_batch = None
            if cbs is not None:
                cbs.on_test_batch_end(step, logs)
        logs = self._result_or_logs(logs, reduce=True)
        if cbs is not None:
            cbs.on_test_end(logs)
        return logs

    def _one_pass_callbacks(self, callbacks: list | None, verbose: int, adapter: Any) -> Any:
        """The CallbackList of one evaluate/predict pass, with the communicator set."""
        cbs = callbacks_mod.CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=adapter.steps_per_epoch,
        )
        cbs.set_communicator(self._communicator())
        return cbs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: list | None = None,
        return_dict: bool = False,
        check_finite: bool = True,
    ) -> Any:
        """Returns the loss (and metrics) on the data: a scalar, a list, or a dict.

        NaN/inf in float arrays raise unless `check_finite=False` (see `fit`).
        """
        self._assert_compiled()
        verbose = 1 if verbose == "auto" else verbose
        adapter = self._make_adapter(
            x, y, sample_weight, batch_size, False, steps, check_finite=check_finite
        )
        cbs = self._one_pass_callbacks(callbacks, verbose, adapter)
        logs = self._evaluate_adapter(adapter, cbs)
        return self._batch_result(logs, return_dict)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: list | None = None,
        check_finite: bool = True,
    ) -> Any:
        """Returns the model's outputs on `x` as NumPy arrays, in the input order.

        In a data-parallel run each rank predicts its shard and every rank
        receives the full result. NaN/inf in `x` raise unless `check_finite=False`.
        """
        verbose = 1 if verbose == "auto" else verbose
        adapter = self._make_adapter(
            x, None, None, batch_size, False, steps, check_finite=check_finite
        )
        cbs = self._one_pass_callbacks(callbacks, verbose, adapter)
        comm = self._communicator()
        cbs.on_predict_begin()
        outs: list = []
        with no_grad():
            for step, (bx, _, _, _) in enumerate(adapter.batches(0)):
                cbs.on_predict_batch_begin(step)
                outs.append(self._predict_batch(bx))
                cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
        cbs.on_predict_end()
        if not outs:
            raise ValueError("predict received no batches. Received: x with 0 samples")
        result = _concat_struct(outs)
        if comm.size > 1:
            result = _gather_batches(comm, outs)
        return result

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Evaluates one batch; returns its loss and metrics (the metrics are reset first).

        Every rank evaluates the whole batch it is given.
        """
        self._assert_compiled()
        da.check_cardinality(x, y, sample_weight)
        input_checks.check_model_data(self, x, y, sample_weight)
        if not self.built:
            self._build_from_data(x)
        self._build_compiled_metrics(x, y)
        self._rescan_metrics()
        self.reset_metrics()
        with no_grad():
            logs = self.test_step(pack_x_y_sample_weight(x, y, sample_weight))
        return self._batch_result(self._result_or_logs(logs, reduce=False), return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Returns the outputs for one batch as NumPy arrays (through `predict_step`)."""
        input_checks.check_model_data(self, x)
        return self._predict_batch(x)

    def _batch_result(self, logs: dict, return_dict: bool) -> Any:
        if return_dict:
            return logs
        values = self._logs_in_order(logs)
        return values[0] if len(values) == 1 else values

    def _logs_in_order(self, logs: dict) -> list:
        """`logs` as a list, as Keras 3 orders it: the values of metrics named as in
        `metrics` in that order, then the others by sorted key. The compiled metrics of
        a multi-output model ("b_out_mse") are not named so in Keras: they come sorted."""
        cm = getattr(self, "_compile_metrics", None)
        skip = {id(m) for m in cm.metrics} if cm is not None and cm.multi_output else set()
        names = [m.name for m in self.metrics if id(m) not in skip]
        first = [n for n in dict.fromkeys(names) if n in logs]
        try:
            rest = sorted(k for k in logs if k not in first)
        except TypeError:
            rest = [k for k in logs if k not in first]
        return [logs[k] for k in first + rest]


def _sorted_keys(d: dict) -> list:
    """A dict's keys sorted, as Keras 3's `predict` returns dict outputs (else as they are)."""
    try:
        return sorted(d)
    except TypeError:
        return list(d)


def _concat_struct(outs: list) -> Any:
    first = outs[0]
    if isinstance(first, dict):
        return {k: np.concatenate([o[k] for o in outs]) for k in _sorted_keys(first)}
    if isinstance(first, (list, tuple)):
        return type(first)(np.concatenate([o[i] for o in outs]) for i in range(len(first)))
    return np.concatenate(outs)


def _gather_batches(comm: Any, outs: list) -> Any:
    """Reassembles per-rank shards of every batch into the original sample order."""

    def gather(local_batches: list) -> np.ndarray:
        per_batch = [comm.allgather(np.ascontiguousarray(b)) for b in local_batches]
        return np.concatenate([np.concatenate(parts) for parts in per_batch])

    first = outs[0]
    if isinstance(first, dict):
        return {k: gather([o[k] for o in outs]) for k in _sorted_keys(first)}
    if isinstance(first, (list, tuple)):
        return type(first)(gather([o[i] for o in outs]) for i in range(len(first)))
    return gather(outs)
