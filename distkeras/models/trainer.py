"""compile / fit / evaluate / predict and the *_on_batch methods, shared by all models.

The training step is: forward under a tape -> loss + regularization losses ->
gradients -> gradient reducer (identity in one process, a summing all-reduce
in data-parallel runs) -> optimizer update. Losses are divided by the global
number of loss elements before the reducer sums, so the gradient is the exact
mean over the global batch whatever the shards.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from distkeras import callbacks as callbacks_mod
from distkeras import metrics as metrics_mod
from distkeras import optimizers as optimizers_mod
from distkeras.backend import current_module, to_numpy
from distkeras.backend.autodiff import Tensor, no_grad
from distkeras.backend.random import global_seed_generator
from distkeras.models import data_adapter as da
from distkeras.models import input_checks
from distkeras.models.compile_utils import (
    CompileMetrics,
    OutputLosses,
    align_to_outputs,
    class_weight_to_sample_weight,
)
from distkeras.models.evaluation import Evaluation
from distkeras.models.train_step import TrainStep, _TrainState, micro_shard_count


def get_communicator() -> Any:
    """The active communicator (auto-initialized from the launch environment)."""
    from distkeras import distributed  # noqa: PLC0415

    return distributed.get_communicator()


class Trainer(TrainStep, Evaluation):
    """Mixin giving models compile/fit/evaluate/predict."""

    def _init_trainer(self) -> None:
        self.compiled = False
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        self._compile_loss: OutputLosses | None = None
        self._output_trackers: list = []
        self._compile_metrics: CompileMetrics | None = None
        self._loss_tracker = None
        self._train_state: _TrainState | None = None
        self._comm = None
        self._broadcast_done = False
        self.gradient_reducer = None
        # Start each bucket's all-reduce during backward ($DISTKERAS_OVERLAP=1). Off by
        # default: measured 0.93-0.96x of one blocking all-reduce on shared-memory MPI,
        # whose non-blocking collectives only progress inside MPI calls.
        self.overlap_allreduce = os.environ.get("DISTKERAS_OVERLAP", "0") == "1"
        self.shard_update = os.environ.get("DISTKERAS_SHARD_UPDATE", "1") != "0"
        self._in_fit = False
        self.bucket_bytes = int(os.environ.get("DISTKERAS_BUCKET_BYTES", str(4 << 20)))

    # ------------------------------------------------------------ compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configures the model for training.

        Args:
            optimizer: Optimizer name or instance.
            loss: Loss name, function or `Loss` instance.
            loss_weights: Scalar weight of the loss.
            metrics: Metrics evaluated without sample weights ('accuracy' resolves by loss).
            weighted_metrics: Metrics evaluated with sample weights.
        """
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self._compile_args = {
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }
        self._compile_loss = OutputLosses(loss, loss_weights) if loss is not None else None
        self._output_trackers: list = []
        self._compile_metrics = CompileMetrics(metrics, weighted_metrics, loss)
        self._loss_tracker = metrics_mod.Mean(name="loss")
        self._train_state = None
        self._broadcast_done = False
        self.compiled = True

    def get_compile_config(self) -> dict:
        """The compile arguments as plain data (Keras 3's `compile_config`)."""
        from distkeras.saving import serialize_keras_object  # noqa: PLC0415

        cfg = {"optimizer": serialize_keras_object(self.optimizer)}
        cfg.update({k: serialize_keras_object(v) for k, v in self._compile_args.items()})
        return cfg

    def compile_from_config(self, config: dict, custom_objects: dict | None = None) -> None:
        """Compiles from `get_compile_config` output."""
        from distkeras import losses as losses_mod  # noqa: PLC0415

        def revive(spec: Any, module: Any) -> Any:
            if isinstance(spec, dict) and "class_name" in spec:
                return module.deserialize(spec, custom_objects=custom_objects)
            if isinstance(spec, dict):
                return {k: revive(v, module) for k, v in spec.items()}
            if isinstance(spec, list):
                return [revive(v, module) for v in spec]
            return spec

        self.compile(
            optimizer=optimizers_mod.deserialize(
                config["optimizer"], custom_objects=custom_objects
            ),
            loss=revive(config.get("loss"), losses_mod),
            loss_weights=config.get("loss_weights"),
            metrics=revive(config.get("metrics"), metrics_mod),
            weighted_metrics=revive(config.get("weighted_metrics"), metrics_mod),
        )

    @property
    def metrics(self) -> list:
        """The loss tracker followed by the compiled metrics (once built)."""
        out = [self._loss_tracker] if self._loss_tracker is not None else []
        out.extend(getattr(self, "_output_trackers", []))
        if self._compile_metrics is not None:
            out.extend(self._compile_metrics.metrics)
        return out

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        """Resets the loss tracker and every compiled metric."""
        for m in self.metrics:
            m.reset_state()

    def _assert_compiled(self, need_loss: bool = True) -> None:
        if not self.compiled:
            raise ValueError(
                "You must call `compile()` before using the model. Received: compiled=False"
            )
        if need_loss and self._compile_loss is None:
            raise ValueError(
                "No loss to compute. Provide a `loss` argument in `compile()`. Received: loss=None"
            )

    # ------------------------------------------------------------ steps
    def _communicator(self) -> Any:
        if self._comm is None:
            self._comm = get_communicator()
        return self._comm

    def _prepare_training(self, x_sample: Any) -> None:
        if not self.built:
            self._build_from_data(x_sample)
        variables = self.trainable_variables
        if self._train_state is None or not self._train_state.matches(variables):
            self._train_state = _TrainState(variables)
            if self._train_state.buffer is not None and hasattr(self.optimizer, "build"):
                self.optimizer.build(variables)
        comm = self._communicator()
        if comm.size > 1 and not self._broadcast_done:
            comm.broadcast([v.data for v in self.weights], root=0)
            opt_vars = [v.data for v in getattr(self.optimizer, "variables", [])]
            if opt_vars:
                comm.broadcast(opt_vars, root=0)
            self._broadcast_done = True

    def _build_from_data(self, x: Any) -> None:
        with no_grad():
            first = da.map_struct(lambda a: a[:1], x)
            self(first, training=False)

    def _output_names(self, n: int) -> list[str]:
        names = getattr(self, "output_names", None)
        if names and len(names) == n:
            return list(names)
        return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]

    def _loss_terms(self, y: Any, y_pred: Any, sw: Any, global_bs: int, local_bs: int):
        """(loss for the gradient, (tracker value, per-output values)) of one shard.

        Each output's loss is divided by the global number of its loss elements
        (or summed, for reduction='sum'), so summing the gradients of all shards
        gives the exact global-batch gradient.
        """
        flat_pred = da.flatten_struct(y_pred) if not isinstance(y_pred, Tensor) else [y_pred]
        names = self._output_names(len(flat_pred))
        cl = self._compile_loss
        if cl.items is None:
            cl.build(names)
            self._output_trackers = [
                metrics_mod.Mean(name=f"{name}_loss") for _, _, name in cl.items if name
            ]
        ys = align_to_outputs(y, names, "y")
        sws = (
            align_to_outputs(sw, names, "sample_weight")
            if isinstance(sw, (dict, list, tuple))
            else [sw] * len(names)
        )
        grad_loss = None
        total_value = 0.0
        per_output: list[float] = []
        for idx, c, _ in cl.items:
            if ys[idx] is None:
                raise ValueError(
                    f"No target was given for output {names[idx]!r}, which has a loss. "
                    f"Received: y without {names[idx]!r}"
                )
            data_sum, elements = c.weighted_sum(ys[idx], flat_pred[idx], sws[idx])
            host_sum = float(to_numpy(data_sum.data)) * c.weight
            if c.reduction == "sum":
                term = data_sum * c.weight
                value = host_sum / max(local_bs, 1)
            else:
                per_sample_elems = elements / max(local_bs, 1)
                term = data_sum * (c.weight / max(global_bs * per_sample_elems, 1.0))
                value = host_sum / max(local_bs * per_sample_elems, 1.0)
            grad_loss = term if grad_loss is None else grad_loss + term
            total_value += value
            per_output.append(value)
        reg = self.losses
        if reg:
            total_reg = reg[0]
            for r in reg[1:]:
                total_reg = total_reg + r
            grad_loss = grad_loss + total_reg * (local_bs / max(global_bs, 1))
            total_value += float(to_numpy(total_reg.data))
        return grad_loss, (total_value, per_output)

    def _update_state(self, tracker: tuple, n: int, y: Any, y_pred: Any, sw: Any) -> None:
        """Feeds one shard's loss values and predictions to the trackers and metrics."""
        total, per_output = tracker
        self._loss_tracker.update_state(total, sample_weight=n)
        for t, v in zip(self._output_trackers, per_output):
            t.update_state(v, sample_weight=n)
        flat_pred = da.flatten_struct(y_pred) if not isinstance(y_pred, Tensor) else [y_pred]
        names = self._output_names(len(flat_pred))
        ys = align_to_outputs(y, names, "y")
        sws = (
            align_to_outputs(sw, names, "sample_weight")
            if isinstance(sw, (dict, list, tuple))
            else [sw] * len(names)
        )
        self._compile_metrics.update_state(ys, flat_pred, sws, names)

    def _test_step(self, x: Any, y: Any, sw: Any, global_bs: int) -> None:
        local_bs = len(da.flatten_struct(x)[0])
        self._clear_losses()
        with no_grad():
            y_pred = self(x, training=False)
            _, tracker_value = self._loss_terms(y, y_pred, sw, global_bs, local_bs)
            self._update_state(tracker_value, local_bs, y, y_pred, sw)

    def _logs(self, reduce: bool = False) -> dict[str, float]:
        """Current metric results; with `reduce`, metric states are summed across ranks first."""
        comm = self._communicator()
        if reduce and comm.size > 1:
            arrays = [v.data for m in self.metrics for v in m.variables]
            if arrays:
                comm.allreduce(arrays, op="sum")
        logs: dict[str, Any] = {}
        for m in self.metrics:
            r = m.result()
            items = r.items() if isinstance(r, dict) else [(m.name, r)]
            for k, v in items:
                arr = to_numpy(v)
                # Scalars as floats; per-class results (e.g. F1Score(average=None)) as arrays.
                logs[k] = float(arr) if arr.size == 1 else np.array(arr)
        return logs

    # ------------------------------------------------------------ data
    def _make_adapter(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        batch_size: int | None,
        shuffle: bool,
        steps: int | None,
        class_weight: dict | None = None,
        seed: int = 0,
        check_finite: bool = True,
    ) -> Any:
        comm = self._communicator()
        strings = input_checks.accepts_strings(self)
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size <= 0
        ):
            raise ValueError(
                f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
            )
        if steps is not None and (not isinstance(steps, (int, np.integer)) or steps <= 0):
            raise ValueError(f"steps must be a positive integer or None. Received: steps={steps!r}")
        if da.is_iterable_data(x):
            if y is not None:
                raise ValueError(
                    "`y` should not be passed when `x` is a generator or PyDataset (it yields "
                    f"(x, y) batches). Received: y of type {type(y).__name__}"
                )
            adapter = da.IterableDataAdapter(
                x, steps=steps, rank=comm.rank, size=comm.size, shuffle=shuffle, seed=seed
            )
            adapter.allow_strings = strings
            if getattr(comm, "deterministic", False):
                adapter.micro_shards = micro_shard_count(comm.size)
            return adapter
        micro = micro_shard_count(comm.size) if getattr(comm, "deterministic", False) else None
        return da.ArrayDataAdapter(
            x,
            y,
            sample_weight,
            batch_size=batch_size or 32,
            shuffle=shuffle,
            seed=seed,
            rank=comm.rank,
            size=comm.size,
            steps=steps,
            micro_shards=micro,
            check_finite=check_finite,
            allow_strings=strings,
            class_weight=class_weight,
        )

    def _shared_seed(self) -> int:
        seed = global_seed_generator().next_seed()
        comm = self._communicator()
        if comm.size > 1:
            seed = int(comm.broadcast({"seed": seed}, root=0)["seed"])
        return seed

    # ------------------------------------------------------------ fit
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: list | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: Any = 1,
        check_finite: bool = True,
    ) -> Any:
        """Trains the model; returns the `History` callback.

        In a data-parallel run `batch_size` is the global batch; each rank
        trains on its contiguous slice of every global batch. Empty or
        non-numeric data raise at once, as do NaN/inf in float arrays unless
        `check_finite=False` (Keras's silent behaviour; see `input_checks`).
        """
        self._assert_compiled()
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer. Received: epochs={epochs!r}")
        verbose = 1 if verbose == "auto" else verbose
        if validation_split and validation_data is None:
            if da.is_iterable_data(x):
                raise ValueError(
                    "`validation_split` is only supported for arrays, not generators or "
                    f"PyDatasets. Received: validation_split={validation_split}"
                )
            (x, y, sample_weight), (vx, vy, vsw) = da.train_validation_split(
                (x, y, sample_weight), validation_split
            )
            validation_data = (vx, vy, vsw)
        seed = self._shared_seed()
        args = (x, y, sample_weight, batch_size, shuffle, steps_per_epoch, class_weight, seed)
        adapter = self._make_adapter(*args, check_finite=check_finite)
        val_adapter = None
        if validation_data is not None:
            val_adapter = self._validation_adapter(
                validation_data, validation_batch_size or batch_size, validation_steps, check_finite
            )
        comm = self._communicator()
        cbs = callbacks_mod.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=adapter.steps_per_epoch,
        )
        cbs.set_communicator(comm)
        # Backups run after every other callback, so they capture the epoch's History,
        # EarlyStopping and learning-rate decisions too.
        backups = [cb for cb in cbs.callbacks if hasattr(cb, "manager") and hasattr(cb, "load")]
        cbs.callbacks = [cb for cb in cbs.callbacks if cb not in backups] + backups
        self.stop_training = False
        self._fit_context = {"callbacks": cbs.callbacks, "seed": seed}
        self._global_step = 0
        found = backups[0].load() if backups else None
        for cb in cbs.callbacks:
            cb._resuming = found is not None
        # Decisions cross ranks every step only if a callback can make them mid-epoch.
        batch_sync = any(
            cb.decides_per_batch() if hasattr(cb, "decides_per_batch") else True
            for cb in cbs.callbacks
        )
        try:
            self._in_fit = True  # the optimizer step may shard: fit makes the slots whole
            cbs.on_train_begin()
            start_epoch, start_step = initial_epoch, 0
            if found is not None:
                start_epoch, start_step = self._resume(found, cbs, adapter)
            logs: dict[str, float] = {}
            epoch_logs: dict[str, float] = {}
            prepared = False
            for epoch in range(start_epoch, epochs):
                first = start_step if epoch == start_epoch else 0
                if first == 0:
                    self.reset_metrics()
                    cbs.on_epoch_begin(epoch)
                step = first - 1
                batches = adapter.batches(epoch, first)
                for step, (bx, by, bsw, gbs) in enumerate(batches, start=first):
                    self._fit_cursor = (epoch, step)
                    if not prepared:
                        self._prepare_training(bx)
                        prepared = True
                    cbs.on_train_batch_begin(step)
                    self._train_step(bx, by, bsw, gbs)
                    self._global_step += 1
                    logs = self._logs()
                    cbs.on_train_batch_end(step, logs)
                    if batch_sync:
                        self._sync_decisions()
                    if self.stop_training:
                        break
                if step < 0:
                    raise ValueError(
                        "The training data produced no batches in epoch "
                        f"{epoch}. Received: steps_per_epoch={steps_per_epoch}"
                    )
                if hasattr(adapter, "on_epoch_end"):
                    adapter.on_epoch_end()
                epoch_logs = self._logs(reduce=True)
                if val_adapter is not None and self._should_validate(epoch, validation_freq):
                    val_logs = self._evaluate_adapter(val_adapter, cbs=None)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                self.optimizer.sync_shards()  # callbacks may save the optimizer state
                cbs.on_epoch_end(epoch, epoch_logs)
                self._sync_decisions()
                if self.stop_training:
                    break
            self.optimizer.sync_shards()
            finalize = getattr(self.optimizer, "finalize_variable_values", None)
            if finalize is not None:
                finalize(self.trainable_variables)
            cbs.on_train_end(epoch_logs)
        except BaseException:
            for cb in backups:  # a backup being written lands before the error propagates
                cb.finish_pending()
            raise
        finally:
            self._in_fit = False
        return self.history

    # ------------------------------------------------------------ resume
    def _capture_training_state(self, epoch: int, next_step: int) -> tuple[list, dict]:
        """(arrays, metadata) for a backup at cursor (epoch, next step); collective."""
        from distkeras.models import training_state  # noqa: PLC0415

        ctx = self._fit_context
        self.optimizer.sync_shards()
        arrays, meta = training_state.capture(
            self, ctx["callbacks"], epoch, next_step, ctx["seed"], self._communicator()
        )
        meta["global_step"] = int(self._global_step)
        return arrays, meta

    def _resume(self, found: tuple, cbs: Any, adapter: Any) -> tuple[int, int]:
        """Restores a backup into this fit; returns the (epoch, step) to continue from."""
        from distkeras.models import training_state  # noqa: PLC0415

        path, header, arrays = found
        meta = header.get("metadata") or {}
        epoch, step = int(meta.get("epoch", 0)), int(meta.get("step", 0))
        first = next(iter(adapter.batches(epoch, 0)), None)
        if first is not None:
            self._prepare_training(first[0])
            self._build_metrics(first)
        meta = training_state.restore(
            self, cbs.callbacks, header, arrays, self._communicator(), path
        )
        variables = [v for m in self.metrics for v in m.variables]
        flat = meta.get("metric_flat")
        if flat is not None and flat.size == sum(int(np.prod(v.shape)) for v in variables):
            offset = 0
            for v in variables:
                n = int(np.prod(v.shape))
                v.assign(flat[offset : offset + n].reshape(v.shape).astype(v.dtype))
                offset += n
        self._global_step = int(meta.get("global_step", 0))
        self._fit_context["seed"] = int(meta["seed"])
        if hasattr(adapter, "sampler"):
            adapter.sampler.seed = int(meta["seed"])
        elif hasattr(adapter, "seed"):
            adapter.seed = int(meta["seed"])
        for cb in cbs.callbacks:
            cb._resuming = False
        return epoch, step

    def _build_metrics(self, batch: tuple) -> None:
        """Creates the loss trackers and compiled metrics from one batch, updating nothing."""
        bx, by, bsw, gbs = batch
        with no_grad():
            y_pred = self(bx, training=False)
            self._loss_terms(by, y_pred, bsw, gbs, len(da.flatten_struct(bx)[0]))
            flat_pred = da.flatten_struct(y_pred) if not isinstance(y_pred, Tensor) else [y_pred]
            names = self._output_names(len(flat_pred))
            if not self._compile_metrics.built:
                self._compile_metrics.build(align_to_outputs(by, names, "y"), flat_pred, names)

    def _validation_adapter(
        self, data: Any, batch_size: int | None, steps: int | None, check_finite: bool = True
    ) -> Any:
        if da.is_iterable_data(data):
            return self._make_adapter(data, None, None, None, False, steps)
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError(
                "`validation_data` should be a tuple `(x_val, y_val)` or "
                "`(x_val, y_val, val_sample_weight)`. "
                f"Received: validation_data={type(data).__name__}"
                + (f" of length {len(data)}" if hasattr(data, "__len__") else "")
            )
        vx, vy = data[0], data[1]
        vsw = data[2] if len(data) == 3 else None
        return self._make_adapter(vx, vy, vsw, batch_size, False, steps, check_finite=check_finite)

    @staticmethod
    def _should_validate(epoch: int, freq: Any) -> bool:
        if isinstance(freq, int):
            if freq < 1:
                raise ValueError(f"validation_freq must be >= 1. Received: validation_freq={freq}")
            return (epoch + 1) % freq == 0
        return (epoch + 1) in freq

    def _sync_decisions(self) -> None:
        """Broadcasts stop_training and the learning rate from the coordinator."""
        comm = self._communicator()
        if comm.size == 1:
            return
        lr = self._current_lr()
        arr = current_module().asarray([1.0 if self.stop_training else 0.0, lr], dtype="float64")
        comm.broadcast([arr], root=0)
        self.stop_training = bool(float(arr[0]))
        if lr is not None and not math.isnan(float(arr[1])) and float(arr[1]) != lr:
            self.optimizer.learning_rate = float(arr[1])

    def _current_lr(self) -> float:
        try:
            return float(self.optimizer.learning_rate)
        except (TypeError, ValueError):
            return float("nan")

    # ------------------------------------------------------------ on_batch
    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ) -> Any:
        """Runs one training step on one (global) batch; returns loss and metrics so far."""
        self._assert_compiled()
        input_checks.check_model_data(self, x, y, sample_weight)
        if class_weight is not None and y is not None:
            sample_weight = class_weight_to_sample_weight(y, class_weight, sample_weight)
        n = da.check_cardinality(x, y, sample_weight)
        comm = self._communicator()
        micro = micro_shard_count(comm.size) if getattr(comm, "deterministic", False) else None
        lo, hi = da.rank_bounds(n, comm.rank, comm.size, micro)
        take = (lambda a: a[lo:hi]) if comm.size > 1 else (lambda a: a)
        bx, by, bsw = (da.map_struct(take, d) for d in (x, y, sample_weight))
        self._prepare_training(bx)
        self._train_step(bx, by, bsw, n)
        return self._batch_result(return_dict)
