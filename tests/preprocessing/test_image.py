"""Image files and ImageDataGenerator on small PNG/JPEG images the tests write."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from distkeras.preprocessing import image
from distkeras.utils import array_to_img, img_to_array, load_img, save_img, smart_resize
from tests.preprocessing.helpers import check_sharded_reads

RGB = (np.arange(4 * 6 * 3).reshape(4, 6, 3) * 3).astype(np.uint8)


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(RGB, "RGB").save(path)
    return path


def test_load_png_exactly(png):
    img = load_img(png)
    assert img.size == (6, 4) and img.mode == "RGB"
    x = img_to_array(img)
    assert x.dtype == np.float32 and x.shape == (4, 6, 3)
    np.testing.assert_array_equal(x, RGB)
    np.testing.assert_array_equal(
        img_to_array(img, data_format="channels_first"), RGB.transpose(2, 0, 1)
    )
    np.testing.assert_array_equal(img_to_array(load_img(str(png)), dtype="uint8"), RGB)


def test_grayscale_and_rgba(png):
    gray = img_to_array(load_img(png, color_mode="grayscale"))
    assert gray.shape == (4, 6, 1)
    r, g, b = (RGB[..., i].astype(float) for i in range(3))
    expected = r * 299 / 1000 + g * 587 / 1000 + b * 114 / 1000  # ITU-R 601-2 luma
    np.testing.assert_allclose(gray[..., 0], expected, atol=1.0)
    rgba = img_to_array(load_img(png, color_mode="rgba"))
    assert rgba.shape == (4, 6, 4) and (rgba[..., 3] == 255).all()


def test_load_with_target_size_and_aspect_ratio(tmp_path):
    x = np.arange(4 * 8, dtype=np.uint8).reshape(4, 8) * 7
    path = tmp_path / "wide.png"
    Image.fromarray(x, "L").save(path)
    # Nearest 4x8 -> 2x4 reads the pixel under each output centre: rows 1, 3; columns 1, 3, 5, 7.
    small = img_to_array(load_img(path, color_mode="grayscale", target_size=(2, 4)))[..., 0]
    np.testing.assert_array_equal(small, x[1::2, 1::2])
    # keep_aspect_ratio: the central 4x4 box (columns 2..5), then rows/cols 1 and 3 of it.
    square = load_img(path, color_mode="grayscale", target_size=(2, 2), keep_aspect_ratio=True)
    np.testing.assert_array_equal(img_to_array(square)[..., 0], x[1::2, 2:6][:, 1::2])


def test_jpeg_round_trip_is_close(tmp_path):
    flat = np.full((8, 8, 3), (200, 100, 50), dtype=np.uint8)
    path = tmp_path / "flat.jpg"
    save_img(path, flat, scale=False)
    back = img_to_array(load_img(path))
    assert np.abs(back - flat).max() <= 3  # JPEG is lossy, a flat colour nearly survives


def test_array_to_img_scaling_and_save(tmp_path):
    x = np.array([[[0.0], [0.5], [1.0]]], dtype=np.float32)  # 1x3 grayscale
    img = array_to_img(x)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), [[0, 127, 255]])
    unscaled = array_to_img(RGB, scale=False)
    np.testing.assert_array_equal(np.asarray(unscaled), RGB)
    save_img(tmp_path / "out.png", RGB, scale=False)
    np.testing.assert_array_equal(img_to_array(load_img(tmp_path / "out.png")), RGB)
    rgba = np.zeros((2, 2, 4))
    with pytest.warns(UserWarning, match="RGBA"):
        save_img(tmp_path / "out.jpg", rgba, file_format="jpg")
    with pytest.raises(ValueError, match="rank 3"):
        array_to_img(np.zeros((2, 2)))


def test_smart_resize_channels_first():
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 4)  # (c, h, w)
    out = smart_resize(x, (2, 2), data_format="channels_first")
    np.testing.assert_allclose(out, [[[1, 2], [5, 6]]])
    with pytest.raises(ValueError, match="incorrect rank"):
        smart_resize(np.zeros((2, 2)), (1, 1))


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(ValueError, match="bad.png"):
        load_img(bad)
    with pytest.raises(FileNotFoundError):
        load_img(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="color_mode='cmyk'"):
        load_img(bad, color_mode="cmyk")


# ---------------------------------------------------------------- ImageDataGenerator
SQUARE = np.arange(9, dtype=np.float32).reshape(3, 3, 1)


def test_affine_transform_hand_values():
    rot = image.apply_affine_transform(SQUARE, theta=90, row_axis=0, col_axis=1, channel_axis=2)
    np.testing.assert_allclose(rot[..., 0], np.rot90(SQUARE[..., 0]), atol=1e-5)
    # Keras 2's matrix applies `tx` along the column axis of a channels-last image.
    shifted = image.apply_affine_transform(
        SQUARE, tx=1, row_axis=0, col_axis=1, channel_axis=2, fill_mode="constant", cval=-1
    )
    np.testing.assert_allclose(shifted[..., 0], [[1, 2, -1], [4, 5, -1], [7, 8, -1]])
    np.testing.assert_allclose(image.flip_axis(SQUARE, 1)[..., 0], SQUARE[:, ::-1, 0])
    shift = image.apply_channel_shift(SQUARE, 3.0)
    np.testing.assert_allclose(shift[..., 0], np.clip(SQUARE[..., 0] + 3, 0, 8))


def test_brightness_shift():
    x = np.array([[[0.0], [100.0], [255.0]]])
    np.testing.assert_allclose(
        image.apply_brightness_shift(x, 0.5)[..., 0], [[0, 50, 127.5]], atol=1.0
    )


def test_flow_rescale_without_augmentation_is_exact():
    x = np.random.default_rng(0).uniform(0, 255, (5, 4, 4, 3)).astype(np.float32)
    it = image.ImageDataGenerator(rescale=1 / 255).flow(
        x, np.arange(5), batch_size=2, shuffle=False
    )
    assert len(it) == 3
    bx, by = it[0]
    np.testing.assert_allclose(bx, x[:2] / 255, rtol=1e-6)
    np.testing.assert_array_equal(by, [0, 1])
    bx, by = next(it)  # Keras 2 iterator protocol
    np.testing.assert_array_equal(by, [0, 1])


def test_augmentation_is_seeded_and_per_sample():
    x = np.random.default_rng(0).normal(size=(8, 5, 5, 1)).astype(np.float32)
    gen = image.ImageDataGenerator(
        rotation_range=30,
        width_shift_range=0.2,
        height_shift_range=1,
        zoom_range=0.2,
        shear_range=10,
        horizontal_flip=True,
        channel_shift_range=0.1,
    )
    a = gen.flow(x, batch_size=4, seed=11)
    b = gen.flow(x, batch_size=4, seed=11)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], gen.flow(x, batch_size=4, seed=12)[1])
    first = a[0].copy()
    a.on_epoch_end()
    assert not np.array_equal(first, a[0])  # new order and new draws next epoch
    check_sharded_reads(gen.flow(x, np.arange(8), batch_size=3, seed=1))


def test_flips_only_produce_flipped_images():
    x = np.random.default_rng(1).normal(size=(12, 3, 4, 2)).astype(np.float32)
    gen = image.ImageDataGenerator(horizontal_flip=True, vertical_flip=True)
    out, idx = gen.flow(x, np.arange(12), batch_size=12, seed=0, shuffle=False)[0]
    variants = lambda im: [im, im[:, ::-1], im[::-1], im[::-1, ::-1]]  # noqa: E731
    for o, i in zip(out, idx):
        assert any(np.array_equal(o, v) for v in variants(x[i]))


def test_featurewise_statistics_and_zca():
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(64, 2, 2, 3)).astype(np.float32)
    gen = image.ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    gen.fit(x)
    np.testing.assert_allclose(gen.mean.reshape(-1), x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(gen.std.reshape(-1), x.std(axis=(0, 1, 2)), rtol=1e-4)
    out = gen.standardize(x.copy())
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)
    zca = image.ImageDataGenerator(featurewise_center=True, zca_whitening=True, zca_epsilon=1e-9)
    zca.fit(x.astype(np.float64))
    flat = zca.standardize(x.astype(np.float64).copy()).reshape(64, -1)
    np.testing.assert_allclose(flat.T @ flat / 64, np.eye(12), atol=1e-3)
    with pytest.raises(ValueError, match="rank 4"):
        gen.fit(x[0])


def test_validation_split_subsets():
    x = np.zeros((10, 2, 2, 1))
    y = np.array([0, 1] * 5)
    gen = image.ImageDataGenerator(validation_split=0.2)
    val = gen.flow(x, y, subset="validation", shuffle=False, batch_size=10)
    train = gen.flow(x, y, subset="training", shuffle=False, batch_size=10)
    assert val.n == 2 and train.n == 8
    np.testing.assert_array_equal(val[0][1], [0, 1])
    with pytest.raises(ValueError, match="different number of classes"):
        gen.flow(x, np.array([0] * 2 + [1] * 8), subset="training")


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: image.ImageDataGenerator(zoom_range="big"), "zoom_range='big'"),
        (lambda: image.ImageDataGenerator(brightness_range=0.5), "brightness_range=0.5"),
        (lambda: image.ImageDataGenerator(validation_split=1.5), "validation_split=1.5"),
        (lambda: image.ImageDataGenerator(fill_mode="mirror"), "fill_mode='mirror'"),
        (lambda: image.ImageDataGenerator(data_format="nhwc"), "nhwc"),
        (lambda: image.ImageDataGenerator().flow(np.zeros((2, 3, 3))), "rank 4"),
        (lambda: image.ImageDataGenerator().flow(np.zeros((2, 3, 3, 1)), [1]), "same length"),
    ],
)
def test_generator_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
