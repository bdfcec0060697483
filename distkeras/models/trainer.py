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
from distkeras.backend.autodiff import GradientTape, Tensor, backward, no_grad
from distkeras.backend.buffers import FlatBuffer
from distkeras.backend.random import global_seed_generator
from distkeras.models import data_adapter as da
from distkeras.models.compile_utils import (
    CompileMetrics,
    OutputLosses,
    align_to_outputs,
    class_weight_to_sample_weight,
)


def get_communicator() -> Any:
    """The active communicator (auto-initialized from the launch environment)."""
    from distkeras import distributed  # noqa: PLC0415

    return distributed.get_communicator()


def micro_shard_count(world_size: int) -> int:
    """Micro-shards per global batch in deterministic mode ($DISTKERAS_MICRO_SHARDS, default 4)."""
    k = int(os.environ.get("DISTKERAS_MICRO_SHARDS", "4"))
    if world_size > k:
        raise ValueError(
            f"Deterministic mode cuts each global batch into {k} micro-shards, fewer than the "
            f"{world_size} ranks; set DISTKERAS_MICRO_SHARDS to a multiple of the world size. "
            f"Received: world_size={world_size}"
        )
    return k


class _TrainState:
    """Fused parameters/gradients for the current set of trainable variables."""

    def __init__(self, variables: list):
        self.variables = variables
        self.key = tuple(id(v) for v in variables)
        dtypes = {v.data.dtype for v in variables}
        self.buffer = FlatBuffer(variables) if variables and len(dtypes) == 1 else None
        # Backward may write a weight's gradient straight into its slot of the buffer.
        self.sinks = (
            {id(v): view for v, view in zip(self.buffer.variables, self.buffer.grad_views)}
            if self.buffer is not None
            else None
        )

    def matches(self, variables: list) -> bool:
        return self.key == tuple(id(v) for v in variables) and (
            self.buffer is None or self.buffer.is_intact()
        )


class Trainer:
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

    def _forward_backward(
        self, x: Any, y: Any, sw: Any, global_bs: int, hook: Any = None
    ) -> tuple[dict, Any, float]:
        """One shard's forward and backward: (leaf gradients, predictions, tracker value)."""
        local_bs = len(da.flatten_struct(x)[0])
        self._clear_losses()
        with GradientTape():
            y_pred = self(x, training=True)
            loss, tracker_value = self._loss_terms(y, y_pred, sw, global_bs, local_bs)
        state = self._train_state
        sinks = state.sinks if state is not None else None
        grads = backward(loss, hook=hook, sinks=sinks) if loss.requires_grad else {}
        return grads, y_pred, tracker_value

    def _write_flat_grads(self, grads: dict, buf: FlatBuffer) -> None:
        for view, v in zip(buf.grad_views, buf.variables):
            g = grads.get(id(v))
            if g is None:
                view.fill(0)
            elif g is not view:  # already there when backward wrote into its sink
                view[...] = g

    def _train_step(self, x: Any, y: Any, sw: Any, global_bs: int) -> None:
        state = self._train_state
        buf = state.buffer
        comm = self._communicator()
        if getattr(comm, "deterministic", False) and buf is not None:
            self._deterministic_step(x, y, sw, global_bs, buf)
            return
        local_bs = len(da.flatten_struct(x)[0])
        if buf is not None and comm.size > 1 and self.overlap_allreduce:
            y_pred, tracker_value = self._overlapped_step(x, y, sw, global_bs, buf)
        elif buf is not None:
            grads, y_pred, tracker_value = self._forward_backward(x, y, sw, global_bs)
            self._write_flat_grads(grads, buf)
            self._reduce_gradients(buf.grad)
            self.optimizer.apply_flat(buf)
        else:
            grads, y_pred, tracker_value = self._forward_backward(x, y, sw, global_bs)
            glist = [grads.get(id(v)) for v in state.variables]
            glist = [
                current_module().zeros_like(v.data) if g is None else g
                for g, v in zip(glist, state.variables)
            ]
            for g in glist:
                self._reduce_gradients(g)
            self.optimizer.apply(glist, state.variables)
        with no_grad():
            self._update_state(tracker_value, local_bs, y, y_pred, sw)

    def _overlapped_step(self, x: Any, y: Any, sw: Any, global_bs: int, buf: FlatBuffer):
        """Backward that starts each bucket's all-reduce as soon as its gradients are final.

        Buckets are runs of consecutive variables, taken from the last layer
        backwards (the order backward finishes them), each a contiguous slice
        of the flat gradient buffer, so a bucket is reduced with no packing.
        """
        comm = self._communicator()
        buckets = self._buckets(buf)
        remaining = [hi - lo for lo, hi in buckets]
        owner = {}
        for b, (lo, hi) in enumerate(buckets):
            for i in range(lo, hi):
                owner[i] = b
        seen: set[int] = set()
        handles: list = []
        started: set[int] = set()

        def start(b: int) -> None:
            lo, hi = buckets[b]
            end = buf.offsets[hi] if hi < len(buf.offsets) else buf.size
            handles.append(comm.allreduce_async(buf.grad[buf.offsets[lo] : end], op="sum"))
            started.add(b)

        def hook(leaf: Any, g: Any) -> None:
            i = buf.index.get(id(leaf))
            if i is None:
                return
            if g is not buf.grad_views[i]:
                buf.grad_views[i][...] = g
            seen.add(i)
            b = owner[i]
            remaining[b] -= 1
            if remaining[b] == 0:
                start(b)

        _, y_pred, tracker_value = self._forward_backward(x, y, sw, global_bs, hook=hook)
        for b in range(len(buckets)):
            if b not in started:
                lo, hi = buckets[b]
                for i in range(lo, hi):
                    if i not in seen:
                        buf.grad_views[i].fill(0)
                start(b)
        for h in handles:
            h.wait()
        self.optimizer.apply_flat(buf)
        return y_pred, tracker_value

    def _buckets(self, buf: FlatBuffer) -> list[tuple[int, int]]:
        """[lo, hi) variable ranges of about `bucket_bytes`, last variables first."""
        key = (id(buf), self.bucket_bytes)
        cached = getattr(self, "_bucket_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        itemsize = buf.data.itemsize
        out: list[tuple[int, int]] = []
        hi = len(buf.variables)
        size = 0
        for i in range(len(buf.variables) - 1, -1, -1):
            size += int(buf.variables[i].data.size) * itemsize
            if size >= self.bucket_bytes or i == 0:
                out.append((i, hi))
                hi, size = i, 0
        self._bucket_cache = (key, out)
        return out

    def _deterministic_step(self, x: Any, y: Any, sw: Any, global_bs: int, buf: FlatBuffer) -> None:
        """Gradients per fixed micro-shard, summed in a fixed tree order on every rank.

        The global batch is cut into `micro_shards` pieces whatever the world
        size; rank r computes the pieces `shard_bounds(K, r, size)` one by one,
        every rank gathers all K gradients and sums them pairwise in index
        order, so 1, 2 or 4 ranks produce bitwise-identical weights.
        """
        comm = self._communicator()
        k_total = micro_shard_count(comm.size)
        k_lo, k_hi = da.shard_bounds(k_total, comm.rank, comm.size)
        start = da.shard_bounds(global_bs, k_lo, k_total)[0]
        mine = current_module().zeros((max(k_hi - k_lo, 1), buf.size), dtype=buf.dtype)
        for j, k in enumerate(range(k_lo, k_hi)):
            lo, hi = da.shard_bounds(global_bs, k, k_total)
            if hi == lo:
                continue
            px, py, psw = (
                da.map_struct(lambda a, lo=lo, hi=hi: a[lo - start : hi - start], d)
                for d in (x, y, sw)
            )
            grads, y_pred, tracker_value = self._forward_backward(px, py, psw, global_bs)
            self._write_flat_grads(grads, buf)
            mine[j] = buf.grad
            with no_grad():
                self._update_state(tracker_value, hi - lo, py, y_pred, psw)
        if comm.size > 1:
            parts = comm.allgather(mine[: k_hi - k_lo] if k_hi > k_lo else mine[:0])
            rows = [row for part in parts for row in part]
        else:
            rows = list(mine[: k_hi - k_lo])
        while len(rows) > 1:
            paired = [rows[i] + rows[i + 1] for i in range(0, len(rows) - 1, 2)]
            rows = paired + ([rows[-1]] if len(rows) % 2 else [])
        buf.grad[...] = rows[0]
        self.optimizer.apply_flat(buf)

    def _reduce_gradients(self, flat: Any) -> None:
        if self.gradient_reducer is not None:
            self.gradient_reducer(flat)
            return
        comm = self._communicator()
        if comm.size > 1:
            comm.allreduce([flat], op="sum")

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
    ) -> Any:
        comm = self._communicator()
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
            if getattr(comm, "deterministic", False):
                adapter.micro_shards = micro_shard_count(comm.size)
            return adapter
        if class_weight is not None and y is not None:
            sample_weight = class_weight_to_sample_weight(y, class_weight, sample_weight)
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
    ) -> Any:
        """Trains the model; returns the `History` callback.

        In a data-parallel run `batch_size` is the global batch; each rank
        trains on its contiguous slice of every global batch.
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
        adapter = self._make_adapter(
            x, y, sample_weight, batch_size, shuffle, steps_per_epoch, class_weight, seed
        )
        val_adapter = None
        if validation_data is not None:
            val_adapter = self._validation_adapter(
                validation_data, validation_batch_size or batch_size, validation_steps
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
                cbs.on_epoch_end(epoch, epoch_logs)
                self._sync_decisions()
                if self.stop_training:
                    break
            finalize = getattr(self.optimizer, "finalize_variable_values", None)
            if finalize is not None:
                finalize(self.trainable_variables)
            cbs.on_train_end(epoch_logs)
        except BaseException:
            for cb in backups:  # a backup being written lands before the error propagates
                cb.finish_pending()
            raise
        return self.history

    # ------------------------------------------------------------ resume
    def _capture_training_state(self, epoch: int, next_step: int) -> tuple[list, dict]:
        """(arrays, metadata) for a backup at cursor (epoch, next step); collective."""
        from distkeras.models import training_state  # noqa: PLC0415

        ctx = self._fit_context
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

    def _validation_adapter(self, data: Any, batch_size: int | None, steps: int | None) -> Any:
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
        return self._make_adapter(vx, vy, vsw, batch_size, False, steps)

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

    # ------------------------------------------------------------ evaluate / predict
    def _evaluate_adapter(self, adapter: Any, cbs: Any) -> dict[str, float]:
        self.reset_metrics()
        if cbs is not None:
            cbs.on_test_begin()
        for step, (bx, by, bsw, gbs) in enumerate(adapter.batches(0)):
            if not self.built:
                self._build_from_data(bx)
            if cbs is not None:
                cbs.on_test_batch_begin(step)
            self._test_step(bx, by, bsw, gbs)
            if cbs is not None:
                cbs.on_test_batch_end(step, self._logs())
        logs = self._logs(reduce=True)
        if cbs is not None:
            cbs.on_test_end(logs)
        return logs

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
    ) -> Any:
        """Returns the loss (and metrics) on the data: a scalar, a list, or a dict."""
        self._assert_compiled()
        verbose = 1 if verbose == "auto" else verbose
        adapter = self._make_adapter(x, y, sample_weight, batch_size, False, steps)
        cbs = callbacks_mod.CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=adapter.steps_per_epoch,
        )
        cbs.set_communicator(self._communicator())
        logs = self._evaluate_adapter(adapter, cbs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: list | None = None,
    ) -> Any:
        """Returns the model's outputs on `x` as NumPy arrays, in the input order.

        In a data-parallel run each rank predicts its shard and every rank
        receives the full result.
        """
        verbose = 1 if verbose == "auto" else verbose
        adapter = self._make_adapter(x, None, None, batch_size, False, steps)
        cbs = callbacks_mod.CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=adapter.steps_per_epoch,
        )
        comm = self._communicator()
        cbs.set_communicator(comm)
        cbs.on_predict_begin()
        outs: list = []
        with no_grad():
            for step, (bx, _, _, _) in enumerate(adapter.batches(0)):
                cbs.on_predict_batch_begin(step)
                y = self(bx, training=False)
                outs.append(da.map_struct(lambda t: to_numpy(t.data), y))
                cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
        cbs.on_predict_end()
        if not outs:
            raise ValueError("predict received no batches. Received: x with 0 samples")
        result = _concat_struct(outs)
        if comm.size > 1:
            result = _gather_batches(comm, outs)
        return result

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

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Evaluates one batch; returns loss and metrics so far."""
        self._assert_compiled()
        n = da.check_cardinality(x, y, sample_weight)
        if not self.built:
            self._build_from_data(x)
        self._test_step(x, y, sample_weight, n)
        return self._batch_result(return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Returns the outputs for one batch as NumPy arrays."""
        with no_grad():
            y = self(x, training=False)
        return da.map_struct(lambda t: to_numpy(t.data), y)

    def _batch_result(self, return_dict: bool) -> Any:
        logs = self._logs(reduce=False)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


def _concat_struct(outs: list) -> Any:
    first = outs[0]
    if isinstance(first, dict):
        return {k: np.concatenate([o[k] for o in outs]) for k in first}
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
        return {k: gather([o[k] for o in outs]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(gather([o[i] for o in outs]) for i in range(len(first)))
    return gather(outs)
