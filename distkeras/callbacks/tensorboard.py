"""`TensorBoard`: writes the event files TensorBoard shows, as `keras.callbacks.TensorBoard`.

Runs go to `log_dir/train` and `log_dir/validation`; tags, steps and formats
are Keras 3's (`epoch_loss`, `epoch_<metric>`, `epoch_learning_rate`,
`batch_<metric>`, `evaluation_<metric>_vs_iterations`, `<weight path>/histogram`,
the `keras` conceptual graph). Needs the optional `tensorboard` package
(`pip install "distkeras[tensorboard]"`), not TensorFlow. In a distributed run
only the coordinator writes.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from distkeras.backend import to_numpy
from distkeras.callbacks.callback import Callback
from distkeras.callbacks.tensorboard_events import EventWriter, tensorboard_modules
from distkeras.saving.state_schema import Int


def _scalar(value: Any) -> float | None:
    """`value` as a float when it is a real scalar, else None (it is then not logged)."""
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else to_numpy(value))
    except (TypeError, ValueError):
        return None
    if arr.ndim != 0 or arr.dtype.kind not in "biuf":
        return None
    return float(arr)


def _weight_image(weight: np.ndarray) -> np.ndarray | None:
    """A weight laid out as images `[k, h, w, 1]` the way Keras 3 draws it, or None."""
    w = np.squeeze(weight)
    if w.ndim == 1:  # a bias: one row
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:  # a dense kernel, its long side across
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.ndim == 3:  # a conv kernel (channels last): one image per output channel
        w = np.transpose(w, (2, 0, 1))
        w = w.reshape(w.shape[0], w.shape[1], w.shape[2], 1)
    if w.ndim == 4 and w.shape[-1] in (1, 3, 4):
        return w
    return None


class TensorBoard(Callback):
    """Logs losses, metrics, weight histograms and the model graph for TensorBoard.

    As `keras.callbacks.TensorBoard`: at each epoch end `epoch_<name>` scalars
    (step = epoch) go to `log_dir/train`, with `epoch_learning_rate` added, and the
    `val_` ones, unprefixed, to `log_dir/validation`. With `update_freq="batch"`
    or an integer N, `batch_<name>` scalars are written every N training batches
    (step = the global batch count, from 1). Each validation or `evaluate` pass
    writes `evaluation_<name>_vs_iterations` (step = optimizer iterations) to
    `validation`. The scalars are float32 tensor summaries, as `tf.summary`'s.
    A run resumed by `BackupAndRestore` goes on counting batches where the
    interrupted one stopped (Keras restarts from 1, overlapping the old steps).

    `write_graph` writes the model's Keras JSON (tag `keras`, step 0) for
    Functional and Sequential models: TensorBoard's Graphs dashboard draws it as
    the conceptual graph. The op-level graph Keras adds on TensorFlow is not
    written (there is no TensorFlow graph). Embeddings: `embeddings_freq` writes
    `projector_config.pbtxt` in `log_dir` and each Embedding layer's matrix as a
    TSV file beside it that the Projector reads (Keras 3 saves a weights file
    instead). Profiling (`profile_batch`) is not available.

    Args:
        log_dir: Directory of the runs (`train/`, `validation/` inside).
        histogram_freq: Every how many epochs to write weight histograms (0: never).
        write_graph: Whether to write the model graph.
        write_images: Whether to write weights as images (with the histograms).
        write_steps_per_second: Whether to log training steps per second.
        update_freq: `"epoch"`, `"batch"` (= 1) or an integer N: write batch-level
            scalars every N batches.
        profile_batch: Must be 0 (profiling is not available).
        embeddings_freq: Every how many epochs to write embeddings (0: never).
        embeddings_metadata: A metadata file for every Embedding layer, or a dict
            `{layer name: file}`.

    Raises:
        ImportError: when the `tensorboard` package is not installed.
    """

    # What BackupAndRestore carries over: the step counters, so a resumed run's
    # event steps continue the first run's.
    _state_schema = {
        "_global_train_batch": Int(),
        "_global_test_batch": Int(),
        "_previous_epoch_iterations": Int(),
    }

    batch_decisions = False  # its batch hooks never stop training or change the rate
    _state_attrs = ("_global_train_batch", "_global_test_batch")

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int | tuple | str = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: str | dict | None = None,
    ):
        super().__init__()
        tensorboard_modules()  # fail now, naming the extra, if `tensorboard` is missing
        freqs = {"histogram_freq": histogram_freq, "embeddings_freq": embeddings_freq}
        for arg, value in freqs.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(
                    f"`{arg}` must be a non-negative integer. Received: {arg}={value!r}"
                )
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (
            isinstance(update_freq, bool)
            or not isinstance(update_freq, (int, np.integer))
            or update_freq < 1
        ):
            raise ValueError(
                "`update_freq` must be 'epoch', 'batch' or a positive integer. "
                f"Received: update_freq={update_freq!r}"
            )
        if profile_batch not in (0, None, "0", (0, 0), [0, 0]):
            raise ValueError(
                "Profiling is not available in distkeras. Received: "
                f"profile_batch={profile_batch!r} (must be 0)"
            )
        if embeddings_metadata is not None and not isinstance(embeddings_metadata, (str, dict)):
            raise ValueError(
                "`embeddings_metadata` must be a file name or a dict of layer names to file "
                f"names. Received: embeddings_metadata={embeddings_metadata!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.embeddings_freq = int(embeddings_freq)
        self.embeddings_metadata = embeddings_metadata
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._global_train_batch = 0
        self._global_test_batch = 0
        self._previous_epoch_iterations = 0
        self._epoch_start_time = 0.0
        self._batch_start_time = 0.0
        self._writers: dict[str, EventWriter] = {}
        self._setup_pending = False
        self._training = False

    # ------------------------------------------------------------ writers
    def set_model(self, model: Any) -> None:
        """Stores the model; each fit/evaluate pass writes new event files."""
        if self._training and model is self.model:
            return  # a validation pass inside fit keeps fit's files
        super().set_model(model)
        self._close_writers()
        self._setup_pending = True  # graph and projector config: once the rank is known

    def _writer(self, kind: str) -> EventWriter:
        if kind not in self._writers:
            self._writers[kind] = EventWriter(self._train_dir if kind == "train" else self._val_dir)
        return self._writers[kind]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _setup(self) -> None:
        """On the coordinator, once per pass: the model graph and the projector config."""
        if not self._setup_pending or not self.is_coordinator:
            return
        self._setup_pending = False
        if self.write_graph and type(self.model).__name__ in ("Functional", "Sequential"):
            try:
                model_json = self.model.to_json()
            except Exception as e:  # as Keras: a model that cannot serialize is not drawn
                import warnings  # noqa: PLC0415

                warnings.warn(f"Model failed to serialize as JSON. Ignoring... {e}", stacklevel=2)
            else:
                self._writer("train").keras_model("keras", model_json, step=0)
        if self.embeddings_freq:
            self._write_projector_config()

    def _should_record(self, step: int) -> bool:
        return self.update_freq == "epoch" or step % self.update_freq == 0

    # ------------------------------------------------------------ hooks
    def on_train_begin(self, logs: dict | None = None) -> None:
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0
        self._training = True
        self._setup()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._training = False
        self._close_writers()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._setup()

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._setup()

    def on_predict_end(self, logs: dict | None = None) -> None:
        if not self._training:
            self._close_writers()

    def on_test_end(self, logs: dict | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        if (
            self.is_coordinator
            and logs
            and iterations is not None
            and self._should_record(self._global_test_batch)
        ):
            writer = self._writer("val")
            step = int(to_numpy(iterations))
            for name, value in logs.items():
                v = _scalar(value)
                if v is not None:
                    writer.scalar(f"evaluation_{name}_vs_iterations", v, step)
        if not self._training:  # a standalone evaluate: its files are complete
            self._close_writers()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if (
            self.update_freq == "epoch"
            or not self.is_coordinator
            or not self._should_record(self._global_train_batch)
        ):
            return
        writer = self._writer("train")
        step = self._global_train_batch
        if self.write_steps_per_second:
            elapsed = time.time() - self._batch_start_time
            writer.scalar("batch_steps_per_second", 1.0 / max(elapsed, 1e-12), step)
        for name, value in (logs or {}).items():
            v = _scalar(value)
            if v is not None:
                writer.scalar(f"batch_{name}", v, step)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._global_test_batch += 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.write_steps_per_second:
            self._previous_epoch_iterations = self._iterations()
            self._epoch_start_time = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.is_coordinator:
            return
        self._log_epoch_metrics(epoch, logs or {})
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._log_embeddings()
        for writer in self._writers.values():
            writer.flush()

    # ------------------------------------------------------------ epoch summaries
    def _iterations(self) -> int:
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        return 0 if iterations is None else int(to_numpy(iterations))

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            return None
        return _scalar(optimizer.learning_rate)

    def _log_epoch_metrics(self, epoch: int, logs: dict) -> None:
        if not logs:
            return
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        lr = self._learning_rate()
        if lr is not None:
            train_logs["learning_rate"] = lr  # the rate now, as Keras logs it
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._epoch_start_time, 1e-12)
            train_logs["steps_per_second"] = (
                self._iterations() - self._previous_epoch_iterations
            ) / elapsed
        for kind, items in (("train", train_logs), ("val", val_logs)):
            for name, value in items.items():
                v = _scalar(value)
                if v is not None:
                    self._writer(kind).scalar(f"epoch_{name}", v, epoch)

    def _log_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        for layer in self.model.layers:
            for weight in layer.weights:
                name = str(getattr(weight, "path", None) or weight.name).replace(":", "_")
                values = to_numpy(weight.numpy() if hasattr(weight, "numpy") else weight)
                writer.histogram(f"{name}/histogram", values, epoch)
                if self.write_images:
                    image = _weight_image(values)
                    if image is not None:
                        writer.image(f"{name}/image", image, epoch)

    # ------------------------------------------------------------ embeddings
    def _embedding_layers(self) -> list:
        from distkeras.layers import Embedding  # noqa: PLC0415 - layers are a floor below

        return [layer for layer in self.model.layers if isinstance(layer, Embedding)]

    def _write_projector_config(self) -> None:
        from google.protobuf import text_format  # noqa: PLC0415 - installed with tensorboard
        from tensorboard.plugins.projector import projector_config_pb2  # noqa: PLC0415

        config = projector_config_pb2.ProjectorConfig()
        metadata = self.embeddings_metadata
        remaining = dict(metadata) if isinstance(metadata, dict) else {}
        for layer in self._embedding_layers():
            embedding = config.embeddings.add()
            embedding.tensor_name = layer.name
            embedding.tensor_path = f"{layer.name}.embeddings.tsv"
            if isinstance(metadata, str):
                embedding.metadata_path = metadata
            elif layer.name in remaining:
                embedding.metadata_path = remaining.pop(layer.name)
        if remaining:
            raise ValueError(
                "Unrecognized `Embedding` layer names passed to `TensorBoard` "
                f"`embeddings_metadata` argument: {list(remaining)}. Received: "
                f"embeddings_metadata={metadata!r}"
            )
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, "projector_config.pbtxt"), "w") as f:
            f.write(text_format.MessageToString(config))

    def _log_embeddings(self) -> None:
        for layer in self._embedding_layers():
            if not layer.weights:
                continue
            matrix = to_numpy(layer.weights[0].numpy())
            path = os.path.join(self.log_dir, f"{layer.name}.embeddings.tsv")
            tmp = path + ".tmp"
            np.savetxt(tmp, matrix.reshape(matrix.shape[0], -1), delimiter="\t", fmt="%.8g")
            os.replace(tmp, path)
