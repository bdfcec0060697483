"""compile / fit and train_on_batch, shared by all models (Keras 3's `Trainer`).

The pieces live by concept: the overridable step (`train_step.py`), loss and
metrics (`loss_and_metrics.py`), evaluate / predict (`evaluation.py`), data
adapters and resume (`fit_support.py`), and the data-parallel gradient sync
that every step passes at `optimizer.apply` (`distkeras/distributed/
data_parallel.py`). This file holds compile and the loop of `fit`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from distkeras import callbacks as callbacks_mod
from distkeras import metrics as metrics_mod
from distkeras import optimizers as optimizers_mod
from distkeras.backend import current_module
from distkeras.backend.autodiff import no_grad
from distkeras.distributed.data_parallel import GradientSync
from distkeras.models import data_adapter as da
from distkeras.models import input_checks
from distkeras.models.compile_utils import (
    CompileMetrics,
    OutputLosses,
    class_weight_to_sample_weight,
)
from distkeras.models.evaluation import Evaluation
from distkeras.models.fit_support import FitSupport
from distkeras.models.loss_and_metrics import LossesAndMetrics
from distkeras.models.train_step import TrainStep, _TrainState, micro_shard_count


def get_communicator() -> Any:
    """The communicator models train with (auto-initialized from the launch environment;
    a local one under `distkeras.horovod`, whose ranks train as independent processes)."""
    from distkeras import distributed  # noqa: PLC0415

    return distributed.model_communicator()


class Trainer(TrainStep, Evaluation, LossesAndMetrics, FitSupport):
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
        self._sync: GradientSync | None = None
        self._step_global_batch: int | None = None

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

    def _assert_compiled(self) -> None:
        if not self.compiled:
            raise ValueError(
                "You must call `compile()` before using the model. Received: compiled=False"
            )

    # ------------------------------------------------------------ steps
    def _communicator(self) -> Any:
        if self._comm is None:
            self._comm = get_communicator()
        return self._comm

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, metrics_mod.Metric):
            self._rescan_metrics()
        super().__setattr__(name, value)

    def _prepare_training(self, x_sample: Any, y_sample: Any = None) -> None:
        """Builds the model, the fused buffer, the metrics and the gradient sync; broadcasts
        rank 0's weights once."""
        self._rescan_metrics()
        if not self.built:
            self._build_from_data(x_sample)
        variables = self.trainable_variables
        if self._train_state is None or not self._train_state.matches(variables):
            self._train_state = _TrainState(variables)
            if self._train_state.buffer is not None and hasattr(self.optimizer, "build"):
                self.optimizer.build(variables)
        self._build_compiled_metrics(x_sample, y_sample)
        comm = self._communicator()
        if self._sync is None or self._sync.comm is not comm:
            self._sync = GradientSync(comm)
        sync = self._sync
        sync.overlap = self.overlap_allreduce
        sync.shard_update = self.shard_update
        sync.bucket_bytes = self.bucket_bytes
        sync.reducer = self.gradient_reducer
        sync.buffer = self._train_state.buffer
        sync.in_fit = self._in_fit
        # Every optimizer of the model syncs at `apply`: the compiled one, and those a
        # custom train_step keeps as attributes (a GAN's d_optimizer / g_optimizer).
        for value in [self.optimizer, *vars(self).values()]:
            if isinstance(value, optimizers_mod.Optimizer):
                value.gradient_sync = sync
        if comm.size > 1 and not self._broadcast_done:
            comm.broadcast([v.data for v in self.weights], root=0)
            opt_vars = [v.data for v in getattr(self.optimizer, "variables", [])]
            if opt_vars:
                comm.broadcast(opt_vars, root=0)
            self._broadcast_done = True
        self._fold_rank_into_rng()  # once per model: ranks draw their own noise

    def _build_from_data(self, x: Any) -> None:
        with no_grad():
            first = da.map_struct(lambda a: a[:1], x)
            self(first, training=False)

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
                kind = f"{type(x).__module__}.{type(x).__qualname__}".removeprefix("builtins.")
                raise ValueError(
                    "`validation_split` is only supported for tensors or NumPy arrays; "
                    f"`x` is a {kind}: pass `validation_data` instead. "
                    f"Received: validation_split={validation_split}"
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
                        self._prepare_training(bx, by)
                        prepared = True
                    cbs.on_train_batch_begin(step)
                    logs = self._run_train_step(bx, by, bsw, gbs)
                    self._global_step += 1
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
                epoch_logs = self._result_or_logs(logs, reduce=True)
                if val_adapter is not None and self._should_validate(epoch, validation_freq):
                    val_logs = self._evaluate_adapter(val_adapter, cbs=cbs)
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
            if self._sync is not None:
                self._sync.in_fit = False
        return self.history

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
        """Runs one training step on one (global) batch; returns its loss and metrics.

        The metrics are reset first (Keras 3), so the values are this batch's
        alone; in a data-parallel run they cover the whole global batch.
        """
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
        self._prepare_training(bx, by)
        self.reset_metrics()
        logs = self._run_train_step(bx, by, bsw, n)
        return self._batch_result(self._result_or_logs(logs, reduce=True), return_dict)
