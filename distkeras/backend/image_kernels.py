"""Resampling kernels for image resizing, shared by `ops.image.resize` and the
preprocessing layers (`layers/preprocessing/image_ops.py`).

`resize_weights` is the matrix that resizes one axis, as
`jax.image.scale_and_translate` builds it (which Keras 3's NumPy backend uses):
output sample `i` sits at input coordinate `(i + 0.5) / scale - 0.5`; the kernel
(triangle for bilinear, Keys cubic with a = -0.5 for bicubic, Lanczos with
radius 3 or 5) is evaluated at the distance to every input pixel, widened by
`1 / scale` when shrinking with antialiasing, and normalized per output. For
bilinear without antialiasing this is `tf.image.resize` (half-pixel centers,
edges clamped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RESIZE_KERNELS = ("bilinear", "bicubic", "lanczos3", "lanczos5")


def _triangle(x: Any) -> Any:
    return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x: Any) -> Any:
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


def _lanczos(radius: float) -> Any:
    def kernel(x: Any) -> Any:
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / np.where(x != 0, np.pi**2 * x**2, 1.0), 1.0)
        return np.where(x > radius, 0.0, out)

    return kernel


_KERNELS = {
    "bilinear": _triangle,
    "bicubic": _keys_cubic,
    "lanczos3": _lanczos(3.0),
    "lanczos5": _lanczos(5.0),
}


def resize_weights(
    in_size: int, out_size: int, interpolation: str = "bilinear", antialias: bool = False
) -> np.ndarray:
    """The (in_size, out_size) float64 matrix that resizes one axis.

    Args:
        in_size: Input length.
        out_size: Output length.
        interpolation: One of `RESIZE_KERNELS`.
        antialias: Widen the kernel when shrinking.
    """
    scale = out_size / in_size
    kernel_scale = max(1.0 / scale, 1.0) if antialias else 1.0
    sample = (np.arange(out_size) + 0.5) / scale - 0.5
    x = np.abs(sample[None, :] - np.arange(in_size)[:, None]) / kernel_scale
    w = _KERNELS[interpolation](x)
    total = w.sum(axis=0, keepdims=True)
    ok = np.abs(total) > 1000.0 * float(np.finfo(np.float32).eps)
    w = np.where(ok, w / np.where(total != 0, total, 1.0), 0.0)
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return np.where(inside[None, :], w, 0.0)
