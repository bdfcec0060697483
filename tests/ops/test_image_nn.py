"""distkeras.ops image_nn: pixel shuffles, adaptive pooling, unfold/fold.

Literals marked "Keras" were recorded from Keras 3.15.1's numpy backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

RNG = np.random.default_rng(11)


def close(got, want):
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-6, atol=1e-6)


def test_pixel_shuffles_match_keras():
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)
    close(ops.depth_to_space(x, 2), [[[[0.0, 1], [2, 3]], [[4, 5], [6, 7]]]])  # Keras
    y = np.arange(8, dtype="float32").reshape(1, 2, 4, 1)
    close(ops.space_to_depth(y, 2), [[[[0.0, 1, 4, 5], [2, 3, 6, 7]]]])  # Keras
    z = RNG.normal(size=(2, 4, 6, 8))
    for df in ("channels_last", "channels_first"):
        back = ops.space_to_depth(ops.depth_to_space(z, 2, data_format=df), 2, data_format=df)
        close(back, z)
        check_grad(lambda a, df=df: ops.depth_to_space(a, 2, data_format=df), z[:1, :, :2, :4])
    with pytest.raises(ValueError, match="Received: block_size=2"):
        ops.depth_to_space(np.ones((1, 2, 2, 3)), 2)
    with pytest.raises(ValueError, match="Received: block_size=0"):
        ops.space_to_depth(np.ones((1, 2, 2, 3)), 0)


def _torch_windows(x, out, reduce):
    """Reference: PyTorch's adaptive windows along axis 1, by loops."""
    length = x.shape[1]
    pieces = []
    for i in range(out):
        lo, hi = (i * length) // out, -(-(i + 1) * length // out)
        pieces.append(reduce(x[:, lo:hi], axis=1))
    return np.stack(pieces, axis=1)


def test_adaptive_pools_match_keras_and_the_window_formula():
    y = np.array([3.0, 1, 4, 1, 5, 9, 2], "float32").reshape(1, 7, 1)
    close(ops.adaptive_average_pool(y, 3)[0, :, 0], [2.666667, 3.333333, 5.333334])  # Keras
    close(ops.adaptive_max_pool(y, 3)[0, :, 0], [4.0, 5, 9])  # Keras
    close(ops.adaptive_average_pool(y, 5)[0, :, 0], [2.0, 2.5, 3.333333, 7, 5.5])  # Keras
    x = RNG.normal(size=(2, 7, 10, 3))
    want = _torch_windows(x, 3, np.mean)
    want = np.swapaxes(_torch_windows(np.swapaxes(want, 1, 2), 4, np.mean), 1, 2)
    close(ops.adaptive_average_pool(x, (3, 4)), want)
    cf = ops.adaptive_max_pool(np.moveaxis(x, -1, 1), (3, 4), data_format="channels_first")
    close(np.moveaxis(to_numpy(cf), 1, -1), to_numpy(ops.adaptive_max_pool(x, (3, 4))))
    assert ops.adaptive_max_pool(RNG.normal(size=(1, 5, 6, 7, 2)), (2, 3, 4)).shape == (
        1,
        2,
        3,
        4,
        2,
    )
    check_grad(lambda a: ops.adaptive_average_pool(a, (2, 3)), x[:1, :5, :4, :2])
    check_grad(lambda a: ops.adaptive_max_pool(a, (3, 2)), x[:1, :5, :4, :2])
    with pytest.raises(ValueError, match="Received: output_size=\\(2, 2, 2\\)"):
        ops.adaptive_average_pool(x, (2, 2, 2))
    with pytest.raises(ValueError, match="Received: inputs.shape=\\(2, 3\\)"):
        ops.adaptive_max_pool(np.ones((2, 3)), 2)


def test_unfold_and_fold_match_keras():
    z = np.arange(12, dtype="float32").reshape(1, 1, 3, 4)
    u = ops.unfold(z, 2, stride=(1, 2))
    want = [[[0.0, 2, 4, 6], [1, 3, 5, 7], [4, 6, 8, 10], [5, 7, 9, 11]]]
    close(u, want)  # Keras
    close(
        ops.fold(u, (3, 4), 2, stride=(1, 2)), [[[[0.0, 1, 2, 3], [8, 10, 12, 14], [8, 9, 10, 11]]]]
    )
    close(
        ops.fold(ops.unfold(z, 2), (3, 4), 2),
        [[[[0.0, 2, 4, 3], [8, 20, 24, 14], [8, 18, 20, 11]]]],
    )
    x = RNG.normal(size=(1, 2, 5, 6))
    check_grad(lambda a: ops.unfold(a, (3, 2), dilation=(1, 2), padding=1, stride=(2, 1)), x)
    cols = to_numpy(ops.unfold(x, 2, padding=1, stride=2))
    check_grad(lambda a: ops.fold(a, (5, 6), 2, padding=1, stride=2), cols)
    with pytest.raises(ValueError, match="Received: x.shape=\\(1, 8, 5\\)"):
        ops.fold(np.ones((1, 8, 5)), (3, 4), 2)
    with pytest.raises(ValueError, match="Received: x.shape=\\(5, 6\\)"):
        ops.unfold(np.ones((5, 6)), 2)
