"""distkeras.ops.image: values recorded from Keras 3.15.1, shapes, dtypes, errors, gradients.

Literals marked "Keras" were recorded from Keras 3.15.1's numpy backend
(`KERAS_BACKEND=numpy`) on the same inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

IM = ops.image
SMALL = np.arange(6, dtype="float32").reshape(2, 3, 1)
IMG = np.arange(12, dtype="float32").reshape(3, 4, 1)
PIXELS = np.array(
    [
        [
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [0.5, 0.5, 0.5],
            [0, 0, 0],
            [0.2, 0.1, 0.9],
            [0.9, 0.8, 0.1],
        ]
    ],
    "float32",
)

# Keras: ops.image.resize(SMALL, (3, 4), interpolation=...)[..., 0]
RESIZED = {
    "bilinear": [[0.0, 0.625, 1.375, 2.0], [1.5, 2.125, 2.875, 3.5], [3.0, 3.625, 4.375, 5.0]],
    "nearest": [[0.0, 1.0, 1.0, 2.0], [3.0, 4.0, 4.0, 5.0], [3.0, 4.0, 4.0, 5.0]],
    "bicubic": [
        [-0.249607, 0.359227, 1.246037, 1.85487],
        [1.447761, 2.056595, 2.943405, 3.552239],
        [3.14513, 3.753963, 4.640773, 5.249607],
    ],
    "lanczos3": [
        [-0.420989, 0.07292, 1.182185, 1.676095],
        [1.451458, 1.945368, 3.054633, 3.548542],
        [3.323905, 3.817815, 4.92708, 5.42099],
    ],
    "lanczos5": [
        [-0.46828, -0.068406, 1.166768, 1.566641],
        [1.48254, 1.882413, 3.117587, 3.51746],
        [3.433359, 3.833232, 5.068406, 5.468279],
    ],
}


def close(got, want, atol=2e-6):
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("interpolation", sorted(RESIZED))
def test_resize_matches_keras(interpolation):
    out = IM.resize(SMALL, (3, 4), interpolation=interpolation)
    assert out.shape == (3, 4, 1) and out.dtype == "float32"
    close(out[..., 0], RESIZED[interpolation])
    cf = IM.resize(
        np.transpose(SMALL, (2, 0, 1)), (3, 4), interpolation, data_format="channels_first"
    )
    close(cf[0], RESIZED[interpolation])


def test_resize_antialias_integers_and_aspect_ratio():
    big = np.arange(16, dtype="float32").reshape(4, 4, 1) ** 1.5
    # Keras
    close(
        IM.resize(big, (2, 3), antialias=True)[..., 0],
        [[7.385928, 10.55285, 14.371734], [30.035999, 35.679405, 41.655949]],
        atol=1e-5,
    )
    close(
        IM.resize(big, (2, 3))[..., 0],
        [[4.348361, 7.426426, 11.342285], [32.904613, 39.469536, 46.407841]],
        atol=1e-5,
    )
    out = IM.resize(np.array([[[0], [255]], [[255], [0]]], "uint8"), (3, 3))
    assert out.dtype == "uint8"  # Keras: rounded, clipped to the input's range
    assert to_numpy(out)[..., 0].tolist() == [[0, 128, 255], [128, 128, 128], [255, 128, 0]]
    x = np.random.default_rng(0).uniform(size=(2, 5, 7, 3)).astype("float32")
    assert IM.resize(x, (4, 4), crop_to_aspect_ratio=True).shape == (2, 4, 4, 3)
    padded = to_numpy(IM.resize(x, (4, 4), pad_to_aspect_ratio=True, fill_value=0.5))
    by_hand = np.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)), constant_values=0.5)  # 5x7 -> 7x7
    np.testing.assert_allclose(padded, to_numpy(IM.resize(by_hand, (4, 4))), rtol=1e-6)


def test_resize_errors():
    with pytest.raises(ValueError, match="Received: interpolation=area"):
        IM.resize(SMALL, (2, 2), interpolation="area")
    with pytest.raises(ValueError, match="Received: fill_mode=wrap"):
        IM.resize(SMALL, (2, 2), fill_mode="wrap")
    with pytest.raises(ValueError, match=r"Received: size=\(2,\)"):
        IM.resize(SMALL, (2,))
    with pytest.raises(ValueError, match=r"images.shape=\(2, 3\)"):
        IM.resize(SMALL[..., 0], (2, 2))
    with pytest.raises(ValueError, match="Only one of"):
        IM.resize(SMALL, (2, 2), crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)


def test_colour_conversions_match_keras():
    # Keras
    hsv = [
        [0.0, 1.0, 1.0],
        [0.333333, 1.0, 1.0],
        [0.666667, 1.0, 1.0],
        [0.0, 0.0, 0.5],
        [0.0, 0.0, 0.0],
        [0.6875, 0.888889, 0.9],
        [0.145833, 0.888889, 0.9],
    ]
    close(IM.rgb_to_hsv(PIXELS)[0], hsv)
    close(IM.hsv_to_rgb(IM.rgb_to_hsv(PIXELS))[0], PIXELS[0])
    close(
        IM.rgb_to_grayscale(PIXELS)[0, :, 0], [0.2989, 0.587, 0.114, 0.49995, 0, 0.22108, 0.75001]
    )
    cf = np.transpose(PIXELS, (2, 0, 1))
    close(IM.rgb_to_hsv(cf, data_format="channels_first")[:, 0].T, hsv)
    assert IM.rgb_to_grayscale(PIXELS[..., :1]).shape == (1, 7, 1)
    with pytest.raises(ValueError, match="Received: images.dtype=int32"):
        IM.rgb_to_hsv(PIXELS.astype("int32"))
    with pytest.raises(ValueError, match=r"images.shape=\(1, 7, 2\)"):
        IM.rgb_to_grayscale(PIXELS[..., :2])


def test_crop_and_pad():
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype("float32")
    out = to_numpy(IM.pad_images(x, 1, 2, target_height=8, target_width=10))
    assert out.shape == (2, 8, 10, 3)
    np.testing.assert_array_equal(out[:, 1:6, 2:9], x)
    assert out[:, 0].sum() == 0 and out[:, 6:].sum() == 0 and out[:, :, 9].sum() == 0
    out = IM.crop_images(x, 1, 2, target_height=3, target_width=4)
    np.testing.assert_array_equal(to_numpy(out), x[:, 1:4, 2:6])
    out = IM.crop_images(x, bottom_cropping=1, right_cropping=2, target_height=3, target_width=4)
    np.testing.assert_array_equal(to_numpy(out), x[:, 1:4, 1:5])
    cf = np.transpose(x, (0, 3, 1, 2))
    out = IM.pad_images(cf, 0, 0, bottom_padding=1, right_padding=1, data_format="channels_first")
    assert out.shape == (2, 3, 6, 8)
    with pytest.raises(ValueError, match="Must specify exactly two of top_padding"):
        IM.pad_images(x, 1, 1)
    with pytest.raises(ValueError, match="top_cropping must be >= 0. Received: top_cropping=-1"):
        IM.crop_images(x, -1, 0, target_height=2, target_width=2)
    with pytest.raises(ValueError, match="top_padding must be >= 0. Received: top_padding=-2"):
        IM.pad_images(x, bottom_padding=0, left_padding=0, target_height=3, target_width=7)
    check_grad(lambda a: IM.pad_images(a, 1, 0, target_height=4, target_width=3), x[:1, :2, :2])
    check_grad(lambda a: IM.crop_images(a, 1, 0, target_height=2, target_width=3), x[:1, :4, :4])


MAP_COORDS = np.array([[-1.5, -0.25, 0.5, 1.75, 3.2, 4.6]], "float32")
# Keras: map_coordinates([1, 4, 2, 8], MAP_COORDS, order, fill_mode, fill_value=9)
MAPPED = {
    "constant": ([9.0, 3.0, 2.5, 2.5, 8.2, 9.0], [9.0, 1.0, 4.0, 2.0, 8.0, 9.0]),
    "nearest": ([1.0, 1.0, 2.5, 2.5, 8.0, 8.0], [1.0, 1.0, 4.0, 2.0, 8.0, 8.0]),
    "wrap": ([5.0, 2.75, 2.5, 2.5, 6.599999, 2.8], [8.0, 1.0, 4.0, 2.0, 8.0, 4.0]),
    "mirror": ([3.0, 1.75, 2.5, 2.5, 6.8, 3.2], [4.0, 1.0, 4.0, 2.0, 8.0, 4.0]),
    "reflect": ([2.5, 1.0, 2.5, 2.5, 8.0, 4.400001], [1.0, 1.0, 4.0, 2.0, 8.0, 2.0]),
}


@pytest.mark.parametrize("fill_mode", sorted(MAPPED))
def test_map_coordinates_matches_keras(fill_mode):
    x = np.array([1.0, 4, 2, 8], "float32")
    linear, nearest = MAPPED[fill_mode]
    close(IM.map_coordinates(x, MAP_COORDS, 1, fill_mode, 9.0), linear, atol=1e-5)
    close(IM.map_coordinates(x, MAP_COORDS, 0, fill_mode, 9.0), nearest)
    coords = np.random.default_rng(2).uniform(-2, 5, size=(2, 3, 4))
    check_grad(lambda a: IM.map_coordinates(a, coords, 1, fill_mode, 9.0), IMG[..., 0])


def test_map_coordinates_errors():
    with pytest.raises(ValueError, match="leading dim of 2"):
        IM.map_coordinates(np.ones(4), np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="Received: order=3"):
        IM.map_coordinates(np.ones(4), np.zeros((1, 3)), 3)
    with pytest.raises(ValueError, match="Received: fill_mode=edge"):
        IM.map_coordinates(np.ones(4), np.zeros((1, 3)), 1, fill_mode="edge")


def test_affine_transform_matches_keras():
    t = np.array([0.9, 0.3, 0.4, -0.2, 1.1, 0.5, 0, 0], "float32")
    out = IM.affine_transform(IMG, t, fill_mode="constant", fill_value=-1)
    want = [[2.4, 2.5, 2.6, 2.24], [7.1, 7.2, 7.3, 3.800001], [2.0, 4.45, 7.260001, 2.239999]]
    close(out[..., 0], want, atol=1e-5)  # Keras
    out = IM.affine_transform(IMG, t, interpolation="nearest", fill_mode="wrap")
    close(out[..., 0], [[4.0, 1, 2, 3], [9, 6, 7, 7], [1, 2, 11, 8]])  # Keras
    # the projective terms divide, as documented (identity scaled by 1 / k)
    proj = to_numpy(IM.affine_transform(IMG, [2, 0, 0, 0, 2, 0, 1, 0], interpolation="nearest"))
    assert proj[0, 0, 0] == 0 and proj[2, 1, 0] == IMG[2, 1, 0]  # k = 2 at x = 1: (1, 2) -> (1, 2)
    check_grad(lambda a: IM.affine_transform(a, t, fill_mode="reflect"), IMG)
    with pytest.raises(ValueError, match="Received: interpolation=bicubic"):
        IM.affine_transform(IMG, t, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"transform.shape=\(1, 1, 8\)"):
        IM.affine_transform(IMG, t[None, None])


def test_gaussian_blur_and_extract_patches_match_keras():
    want = [[0.994775, 1.822206, 2.548137, 2.177794], [3.177794, 5.0, 6.0, 4.807451]]
    want.append([3.618946, 5.437108, 6.16304, 4.801965])
    close(IM.gaussian_blur(IMG)[..., 0], want)  # Keras
    x = np.random.default_rng(3).normal(size=(1, 5, 6, 2))
    check_grad(lambda a: IM.gaussian_blur(a, (3, 5), (0.7, 1.5)), x)
    close(IM.extract_patches(IMG, 2), [[[0.0, 1, 4, 5], [2, 3, 6, 7]]])  # Keras
    out = IM.extract_patches(x.astype("float32"), (2, 3), strides=(1, 2), padding="same")
    assert out.shape == (1, 5, 3, 12)
    check_grad(lambda a: IM.extract_patches(a, 2), x)


def test_colour_and_resize_gradients():
    x = np.random.default_rng(4).uniform(0.05, 0.95, size=(2, 3, 3))
    check_grad(IM.rgb_to_grayscale, x)
    check_grad(IM.hsv_to_rgb, x)
    check_grad(IM.rgb_to_hsv, x, atol=1e-5)
    check_grad(lambda a: IM.resize(a, (4, 5), interpolation="bilinear"), x)
    check_grad(lambda a: IM.resize(a, (2, 5), interpolation="bicubic", antialias=True), x)
    check_grad(lambda a: IM.resize(a, (4, 2), interpolation="nearest"), x)


def test_affine_transform_batches_and_channels_first():
    x = np.random.default_rng(5).normal(size=(2, 4, 5, 3)).astype("float32")
    t = np.array([[1, 0.2, -0.5, 0.1, 0.9, 0.3, 0, 0], [0.8, 0, 1, 0, 1.1, -0.4, 0, 0]], "float32")
    out = to_numpy(IM.affine_transform(x, t))
    for i in range(2):
        close(out[i], to_numpy(IM.affine_transform(x[i], t[i])))
    cf = IM.affine_transform(np.moveaxis(x, -1, 1), t, data_format="channels_first")
    close(np.moveaxis(to_numpy(cf), 1, -1), out)
    assert IM.affine_transform(x, t[0]).shape == x.shape  # one transform for the batch
