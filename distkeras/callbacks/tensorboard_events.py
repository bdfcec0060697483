"""TensorBoard event files without TensorFlow, through the `tensorboard` package.

`EventWriter` writes the summaries `tf.summary` would: v2 tensor summaries
tagged for TensorBoard's scalar, histogram and image plugins, and the Keras
model JSON for the graph plugin's conceptual graph. The protos, the plugin
metadata and the file writer are TensorBoard's own (`tensorboard.compat.proto`,
`tensorboard.plugins.*.metadata`, `EventFileWriter`), so what TensorBoard reads
is what it wrote. `tensorboard` is an optional extra, imported on first use.

TensorBoard's file I/O goes through `tensorboard.compat.tf`, which imports
TensorFlow when it is installed (seconds, and TensorFlow's thread pools in the
training process). Unless the user has imported TensorFlow already, the writer
selects TensorBoard's own stub instead, through the switch TensorBoard provides
for that (a `tensorboard.compat.notf` module).
"""

from __future__ import annotations

import io
import sys
import time
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

INSTALL_HINT = (
    "distkeras.callbacks.TensorBoard writes event files with the `tensorboard` package, "
    'which is not installed. Install it with `pip install "distkeras[tensorboard]"` '
    "(or `pip install tensorboard`)."
)
DEFAULT_BUCKETS = 30  # tf.summary.histogram's default bucket count
KERAS_MODEL_PLUGIN = "graph_keras_model"  # the graph plugin's conceptual-graph summaries

_TB: SimpleNamespace | None = None


def tensorboard_modules() -> SimpleNamespace:
    """The `tensorboard` modules the writer needs; ImportError naming the extra if absent."""
    global _TB
    if _TB is None:
        if "tensorflow" not in sys.modules:  # TensorBoard's stub, not a TensorFlow import
            sys.modules.setdefault("tensorboard.compat.notf", ModuleType("tensorboard.compat.notf"))
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: PLC0415
            from tensorboard.plugins.histogram import (  # noqa: PLC0415
                metadata as histogram_metadata,
            )
            from tensorboard.plugins.image import metadata as image_metadata  # noqa: PLC0415
            from tensorboard.plugins.scalar import summary_v2 as scalar_summary  # noqa: PLC0415
            from tensorboard.summary.writer.event_file_writer import (  # noqa: PLC0415
                EventFileWriter,
            )
            from tensorboard.util import tensor_util  # noqa: PLC0415
        except ImportError as e:
            raise ImportError(INSTALL_HINT) from e
        _TB = SimpleNamespace(
            event_pb2=event_pb2,
            summary_pb2=summary_pb2,
            histogram_metadata=histogram_metadata,
            image_metadata=image_metadata,
            scalar_summary=scalar_summary,
            EventFileWriter=EventFileWriter,
            tensor_util=tensor_util,
        )
    return _TB


def histogram_buckets(values: Any, buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """`[buckets, 3]` rows of (left edge, right edge, count), as TensorBoard's `histogram_pb`.

    The same equal-width buckets over [min, max] (the maximum in the last one;
    all mass in the last bucket when every value is equal), counted in O(n)
    with `bincount` instead of a one-hot matrix.

    Args:
        values: Array-like of any shape, castable to float.
        buckets: Number of buckets.

    Returns:
        A float64 array of shape `(buckets, 3)`.
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if buckets == 0 or data.size == 0:
        return np.zeros((buckets, 3))
    lo, hi = float(data.min()), float(data.max())
    if hi == lo:
        counts = np.zeros(buckets)
        counts[-1] = data.size
        return np.stack([np.full(buckets, lo), np.full(buckets, lo), counts], axis=1)
    width = (hi - lo) / buckets
    index = np.minimum(np.floor((data - lo) / width).astype(np.int64), buckets - 1)
    counts = np.bincount(index, minlength=buckets).astype(np.float64)
    edges = np.linspace(lo, hi, buckets + 1)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image  # noqa: PLC0415 - a dependency of `tensorboard`

    pixels = image[..., 0] if image.shape[-1] == 1 else image  # L, RGB or RGBA
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG")
    return buf.getvalue()


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] to uint8 as `tf.image.convert_image_dtype(saturate=True)`."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(images.astype(np.float64) * 255.5, 0, 255).astype(np.uint8)


class EventWriter:
    """One TensorBoard event file in `logdir` (a run), written by TensorBoard's writer.

    Args:
        logdir: The run directory (created if missing).
    """

    def __init__(self, logdir: str):
        self._tb = tensorboard_modules()
        # '.v2' marks files of summaries in the tensor format, as tf.summary's writer does.
        self._writer = self._tb.EventFileWriter(logdir, filename_suffix=".v2")
        self.logdir = logdir

    def _write(self, summary: Any, step: int) -> None:
        event = self._tb.event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer.add_event(event)

    def _value(self, tag: str, metadata: Any, tensor: Any, step: int) -> None:
        summary = self._tb.summary_pb2.Summary()
        summary.value.add(tag=tag, metadata=metadata, tensor=tensor)
        self._write(summary, step)

    def scalar(self, tag: str, value: Any, step: int) -> None:
        """A float32 scalar for the scalars dashboard (`tf.summary.scalar`)."""
        self._write(self._tb.scalar_summary.scalar_pb(tag, np.float32(value)), step)

    def histogram(self, tag: str, values: Any, step: int, buckets: int = DEFAULT_BUCKETS) -> None:
        """A histogram of `values` for the histograms/distributions dashboards."""
        tensor = self._tb.tensor_util.make_tensor_proto(
            histogram_buckets(values, buckets), dtype=np.float64
        )
        metadata = self._tb.histogram_metadata.create_summary_metadata(None, None)
        self._value(tag, metadata, tensor, step)

    def image(self, tag: str, images: np.ndarray, step: int, max_outputs: int = 3) -> None:
        """Images `[k, h, w, c]` (c in 1, 3, 4; floats in [0, 1] or uint8) as PNGs."""
        images = to_uint8(images)[:max_outputs]
        h, w = images.shape[1], images.shape[2]
        blobs = [str(w).encode(), str(h).encode()] + [_png(img) for img in images]
        tensor = self._tb.tensor_util.make_tensor_proto(np.array(blobs, dtype=object))
        metadata = self._tb.image_metadata.create_summary_metadata(None, None)
        self._value(tag, metadata, tensor, step)

    def keras_model(self, tag: str, model_json: str, step: int = 0) -> None:
        """The model's Keras JSON, which the graph plugin draws as a conceptual graph."""
        metadata = self._tb.summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = KERAS_MODEL_PLUGIN
        metadata.plugin_data.content = b"1"  # the plugin's data version
        tensor = self._tb.tensor_util.make_tensor_proto(
            np.array(model_json.encode("utf-8"), dtype=object)
        )
        self._value(tag, metadata, tensor, step)

    def flush(self) -> None:
        """Writes out everything queued."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the file (its writer thread ends)."""
        self._writer.close()
