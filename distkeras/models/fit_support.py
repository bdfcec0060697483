"""What `fit` needs around its loop: data adapters, validation, shared seeds, resuming.

A mixin of `Trainer` (trainer.py); it relies on the trainer's communicator
and training state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend.random import global_seed_generator
from distkeras.models import data_adapter as da
from distkeras.models import input_checks
from distkeras.models.library_adapters import stream_adapter
from distkeras.models.train_step import micro_shard_count


class FitSupport:
    """Mixin: data adapters, validation helpers and mid-epoch resume for `fit`."""

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
        micro = micro_shard_count(comm.size) if getattr(comm, "deterministic", False) else None
        stream = stream_adapter(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            steps=steps,
            class_weight=class_weight,
            seed=seed,
            comm=comm,
            allow_strings=strings,
            micro_shards=micro,
        )
        if stream is not None:
            return stream
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

    def _fold_rank_into_rng(self) -> None:
        """Default-mode data parallelism: gives each rank its own layer random streams.

        With the same seed on every rank, Dropout and the other random layers
        would draw the same noise for the same local row on every rank
        (correlated shards, unlike one process). Once per model and
        communicator, each layer's `SeedGenerator` is moved to the rank's own
        part of its sequence (`fold_in_rank`; rank 0 unchanged). Deterministic
        mode keys its noise by global sample instead and is left alone.
        A resumed run restores each rank's saved (folded) states afterwards.
        """
        comm = self._communicator()
        if comm.size == 1 or getattr(comm, "deterministic", False):
            return
        key = (comm.rank, comm.size)
        if self.__dict__.get("_rng_folded") == key:
            return
        gens = {id(g): g for layer in self._flatten_layers() for g in layer._seed_generators}
        for gen in gens.values():  # a generator shared by two layers moves once
            gen.fold_in_rank(comm.rank)
        object.__setattr__(self, "_rng_folded", key)

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
        meta = training_state.cursor(header, path)  # checked: a file is not trusted
        epoch, step = meta["epoch"], meta["step"]
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
        bx, by, _, _ = batch
        self._build_compiled_metrics(bx, by)

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
