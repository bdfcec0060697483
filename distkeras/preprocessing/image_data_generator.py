"""Keras 2.15's `ImageDataGenerator`: real-time augmentation and standardization of images.

Randomness is seeded per sample: the transform of sample `j` in epoch `e` of
an iterator with seed `s` comes from `numpy.random.default_rng([s, e, j])`, so
it does not depend on how batches are split across ranks. The geometric
transform is Keras 2's matrix (rotation @ shift @ shear @ zoom about the
image centre), resampled with bilinear (`interpolation_order=1`) or nearest
(`0`) interpolation; boundaries follow `fill_mode` as in
`keras.ops.image.affine_transform`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from distkeras.backend import floatx
from distkeras.layers.preprocessing import image_ops
from distkeras.preprocessing.image_utils import array_to_img, img_to_array


def flip_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """Reverses `x` along `axis`."""
    return np.flip(np.asarray(x), axis).copy()


def transform_matrix_offset_center(matrix: np.ndarray, x: float, y: float) -> np.ndarray:
    """Conjugates `matrix` by a shift to the image centre ((x - 1) / 2, (y - 1) / 2)."""
    o_x, o_y = float(x) / 2 - 0.5, float(y) / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ matrix @ reset


def apply_affine_transform(
    x: np.ndarray,
    theta: float = 0,
    tx: float = 0,
    ty: float = 0,
    shear: float = 0,
    zx: float = 1,
    zy: float = 1,
    row_axis: int = 1,
    col_axis: int = 2,
    channel_axis: int = 0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    order: int = 1,
) -> np.ndarray:
    """Applies a rotation (degrees), shift, shear (degrees) and zoom to one 3-D image.

    Args:
        x: 3-D image.
        theta: Rotation angle in degrees.
        tx, ty: Shifts along the row and column axes (pixels).
        shear: Shear angle in degrees.
        zx, zy: Zoom factors along the row and column axes.
        row_axis, col_axis, channel_axis: Axes of `x`.
        fill_mode: 'constant', 'nearest', 'reflect' or 'wrap'.
        cval: Fill value for 'constant'.
        order: 1 (bilinear) or 0 (nearest).
    """
    if order not in (0, 1):
        raise ValueError(f"`order` (interpolation_order) must be 0 or 1. Received: order={order!r}")
    x = np.asarray(x)
    matrix = None
    if theta != 0:
        t = np.deg2rad(theta)
        matrix = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    if tx != 0 or ty != 0:
        shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        matrix = shift if matrix is None else matrix @ shift
    if shear != 0:
        s = np.deg2rad(shear)
        shear_m = np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
        matrix = shear_m if matrix is None else matrix @ shear_m
    if zx != 1 or zy != 1:
        zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        matrix = zoom if matrix is None else matrix @ zoom
    if matrix is None:
        return x
    h, w = x.shape[row_axis], x.shape[col_axis]
    matrix = transform_matrix_offset_center(matrix, h, w)
    # The matrix is in (x, y) order; swap to (row, col) as Keras 2 does.
    matrix[:, [0, 1]] = matrix[:, [1, 0]]
    matrix[[0, 1]] = matrix[[1, 0]]
    img = np.moveaxis(x, (row_axis, col_axis, channel_axis), (0, 1, 2))[None]
    out = image_ops.affine_sample(
        img.astype(x.dtype if x.dtype.kind == "f" else floatx(), copy=False),
        matrix[None, :2, :2],
        matrix[None, :2, 2],
        "bilinear" if order == 1 else "nearest",
        fill_mode,
        cval,
    )[0]
    return np.moveaxis(out, (0, 1, 2), (row_axis, col_axis, channel_axis))


def apply_channel_shift(x: np.ndarray, intensity: float, channel_axis: int = 0) -> np.ndarray:
    """Adds `intensity` to every channel, clipped to the image's [min, max]."""
    x = np.asarray(x)
    lo, hi = np.min(x), np.max(x)
    return np.clip(x + intensity, lo, hi)


def apply_brightness_shift(x: np.ndarray, brightness: float, scale: bool = True) -> np.ndarray:
    """Scales brightness by `brightness` with Pillow's ImageEnhance (as Keras 2)."""
    from PIL import ImageEnhance  # noqa: PLC0415

    x = np.asarray(x)
    x_min, x_max = np.min(x), np.max(x)
    local_scale = (x_min < 0) or (x_max > 255)
    img = array_to_img(x, scale=local_scale or scale)
    img = ImageEnhance.Brightness(img).enhance(brightness)
    out = img_to_array(img)
    if not scale and local_scale:
        out = out / 255 * (x_max - x_min) + x_min
    return out


def _shift(rng: np.random.Generator, shift_range: Any, size: int) -> float:
    if not shift_range:
        return 0.0
    if isinstance(shift_range, (int, np.integer)):
        value = float(rng.integers(0, shift_range) * rng.choice([-1, 1]))
    elif isinstance(shift_range, (list, tuple, np.ndarray)):
        value = float(rng.choice(np.asarray(shift_range)) * rng.choice([-1, 1]))
    else:
        value = float(rng.uniform(-shift_range, shift_range))
    if np.max(shift_range) < 1:
        value *= size
    return value


class ImageDataGenerator:
    """Generates batches of image data with real-time augmentation (Keras 2.15 API).

    Args:
        featurewise_center: Subtract the dataset mean (computed by `fit`).
        samplewise_center: Subtract each sample's mean.
        featurewise_std_normalization: Divide by the dataset std (from `fit`).
        samplewise_std_normalization: Divide each sample by its std.
        zca_whitening: Apply ZCA whitening (matrix from `fit`).
        zca_epsilon: Epsilon of the ZCA whitening.
        rotation_range: Degree range of random rotations.
        width_shift_range: Float (fraction of width if < 1, else pixels),
            list of choices, or int (pixels in (-n, n)).
        height_shift_range: Same for the height.
        brightness_range: Pair (low, high) of brightness factors.
        shear_range: Shear angle range in degrees.
        zoom_range: Float z ([1-z, 1+z]) or pair.
        channel_shift_range: Range of random channel shifts.
        fill_mode: 'constant', 'nearest' (default), 'reflect' or 'wrap'.
        cval: Fill value for 'constant'.
        horizontal_flip: Randomly flip left-right.
        vertical_flip: Randomly flip up-down.
        rescale: Factor applied before any other transform.
        preprocessing_function: Function applied to each image first.
        data_format: 'channels_last' (default) or 'channels_first'.
        validation_split: Fraction reserved for validation (`subset=`).
        interpolation_order: 1 (bilinear) or 0 (nearest).
        dtype: Output dtype.
    """

    def __init__(
        self,
        featurewise_center: bool = False,
        samplewise_center: bool = False,
        featurewise_std_normalization: bool = False,
        samplewise_std_normalization: bool = False,
        zca_whitening: bool = False,
        zca_epsilon: float = 1e-6,
        rotation_range: float = 0,
        width_shift_range: Any = 0.0,
        height_shift_range: Any = 0.0,
        brightness_range: Any = None,
        shear_range: float = 0.0,
        zoom_range: Any = 0.0,
        channel_shift_range: float = 0.0,
        fill_mode: str = "nearest",
        cval: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        rescale: float | None = None,
        preprocessing_function: Any = None,
        data_format: str | None = None,
        validation_split: float = 0.0,
        interpolation_order: int = 1,
        dtype: Any = None,
    ):
        self.featurewise_center = featurewise_center
        self.samplewise_center = samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening = zca_whitening
        self.zca_epsilon = zca_epsilon
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.shear_range = shear_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = image_ops.check_fill_mode(fill_mode)
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.dtype = dtype or floatx()
        if interpolation_order not in (0, 1):
            raise ValueError(
                "`interpolation_order` must be 0 (nearest) or 1 (bilinear). "
                f"Received: interpolation_order={interpolation_order!r}"
            )
        self.interpolation_order = interpolation_order
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                '`data_format` should be `"channels_last"` (channel after row and column) or '
                f'`"channels_first"` (channel before row and column). Received: {data_format}'
            )
        self.data_format = data_format
        if data_format == "channels_first":
            self.channel_axis, self.row_axis, self.col_axis = 1, 2, 3
        else:
            self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        if validation_split and not 0 < validation_split < 1:
            raise ValueError(
                "`validation_split` must be strictly between 0 and 1. "
                f"Received: validation_split={validation_split}"
            )
        self._validation_split = validation_split
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.zca_whitening_matrix: np.ndarray | None = None
        if isinstance(zoom_range, (float, int)) and not isinstance(zoom_range, bool):
            self.zoom_range = [1 - zoom_range, 1 + zoom_range]
        elif isinstance(zoom_range, (list, tuple)) and len(zoom_range) == 2:
            self.zoom_range = [zoom_range[0], zoom_range[1]]
        else:
            raise ValueError(
                "`zoom_range` should be a float or a tuple or list of two floats. "
                f"Received: zoom_range={zoom_range!r}"
            )
        if brightness_range is not None and (
            not isinstance(brightness_range, (tuple, list, np.ndarray))
            or len(brightness_range) != 2
        ):
            raise ValueError(
                "`brightness_range` should be tuple or list of two floats. "
                f"Received: brightness_range={brightness_range!r}"
            )
        self.brightness_range = brightness_range
        if zca_whitening and (featurewise_std_normalization or not featurewise_center):
            if not featurewise_center:
                self.featurewise_center = True
                warnings.warn(
                    "This ImageDataGenerator specifies `zca_whitening`, which overrides setting "
                    "of `featurewise_center`.",
                    stacklevel=2,
                )
            if featurewise_std_normalization:
                self.featurewise_std_normalization = False
                warnings.warn(
                    "This ImageDataGenerator specifies `zca_whitening`, which overrides setting "
                    "of `featurewise_std_normalization`.",
                    stacklevel=2,
                )

    # ------------------------------------------------------------ iterators
    def flow(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        sample_weight: Any = None,
        seed: int | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        ignore_class_split: bool = False,
        subset: str | None = None,
    ):
        """A `NumpyArrayIterator` of augmented `(x, y[, sample_weight])` batches."""
        from distkeras.preprocessing.image_iterators import NumpyArrayIterator  # noqa: PLC0415

        return NumpyArrayIterator(
            x,
            y,
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            sample_weight=sample_weight,
            seed=seed,
            data_format=self.data_format,
            save_to_dir=save_to_dir,
            save_prefix=save_prefix,
            save_format=save_format,
            ignore_class_split=ignore_class_split,
            subset=subset,
            dtype=self.dtype,
        )

    def flow_from_directory(
        self,
        directory: str,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: list[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        follow_links: bool = False,
        subset: str | None = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
    ):
        """A `DirectoryIterator` reading (and augmenting) images from class subdirectories."""
        from distkeras.preprocessing.image_iterators import DirectoryIterator  # noqa: PLC0415

        return DirectoryIterator(
            directory,
            self,
            target_size=target_size,
            color_mode=color_mode,
            classes=classes,
            class_mode=class_mode,
            data_format=self.data_format,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            save_to_dir=save_to_dir,
            save_prefix=save_prefix,
            save_format=save_format,
            follow_links=follow_links,
            subset=subset,
            interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio,
            dtype=self.dtype,
        )

    # ------------------------------------------------------------ transforms
    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Applies the normalization configuration (in place when possible) to a batch or image."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        if self.featurewise_center:
            if self.mean is not None:
                x -= self.mean
            else:
                warnings.warn(
                    "This ImageDataGenerator specifies `featurewise_center`, but it hasn't been "
                    "fit on any training data. Fit it first by calling `.fit(numpy_data)`.",
                    stacklevel=2,
                )
        if self.featurewise_std_normalization:
            if self.std is not None:
                x /= self.std + 1e-6
            else:
                warnings.warn(
                    "This ImageDataGenerator specifies `featurewise_std_normalization`, but it "
                    "hasn't been fit on any training data. Fit it first by calling "
                    "`.fit(numpy_data)`.",
                    stacklevel=2,
                )
        if self.zca_whitening and self.zca_whitening_matrix is not None:
            flat = x.reshape(-1, int(np.prod(x.shape[-3:])))
            x = (flat @ self.zca_whitening_matrix).reshape(x.shape)
        return x

    def get_random_transform(self, img_shape: tuple, seed: Any = None) -> dict:
        """Draws the parameters of a random transform for one image of `img_shape`.

        Args:
            img_shape: Shape of the image (3-D).
            seed: Int, sequence of ints or `np.random.Generator`.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        row, col = self.row_axis - 1, self.col_axis - 1
        theta = rng.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0
        tx = _shift(rng, self.height_shift_range, img_shape[row])
        ty = _shift(rng, self.width_shift_range, img_shape[col])
        shear = rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1.0, 1.0
        else:
            zx, zy = rng.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_h = bool(rng.random() < 0.5) and self.horizontal_flip
        flip_v = bool(rng.random() < 0.5) and self.vertical_flip
        channel_shift = None
        if self.channel_shift_range != 0:
            channel_shift = rng.uniform(-self.channel_shift_range, self.channel_shift_range)
        brightness = None
        if self.brightness_range is not None:
            brightness = rng.uniform(self.brightness_range[0], self.brightness_range[1])
        return {
            "theta": theta,
            "tx": tx,
            "ty": ty,
            "shear": shear,
            "zx": zx,
            "zy": zy,
            "flip_horizontal": flip_h,
            "flip_vertical": flip_v,
            "channel_shift_intensity": channel_shift,
            "brightness": brightness,
        }

    def apply_transform(self, x: np.ndarray, transform_parameters: dict) -> np.ndarray:
        """Applies the transform described by `transform_parameters` to one 3-D image."""
        row, col, ch = self.row_axis - 1, self.col_axis - 1, self.channel_axis - 1
        p = transform_parameters
        x = apply_affine_transform(
            x,
            p.get("theta", 0),
            p.get("tx", 0),
            p.get("ty", 0),
            p.get("shear", 0),
            p.get("zx", 1),
            p.get("zy", 1),
            row_axis=row,
            col_axis=col,
            channel_axis=ch,
            fill_mode=self.fill_mode,
            cval=self.cval,
            order=self.interpolation_order,
        )
        if p.get("channel_shift_intensity") is not None:
            x = apply_channel_shift(x, p["channel_shift_intensity"], ch)
        if p.get("flip_horizontal", False):
            x = flip_axis(x, col)
        if p.get("flip_vertical", False):
            x = flip_axis(x, row)
        if p.get("brightness") is not None:
            x = apply_brightness_shift(x, p["brightness"], scale=True)
        return x

    def random_transform(self, x: np.ndarray, seed: Any = None) -> np.ndarray:
        """Applies a random transform (drawn with `seed`) to one 3-D image."""
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    def fit(self, x: Any, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Computes the featurewise mean, std and ZCA matrix of a rank-4 sample array.

        Args:
            x: Sample images (rank 4).
            augment: Fit on randomly augmented copies.
            rounds: Number of augmented copies per image.
            seed: Seed of the augmentation.
        """
        x = np.array(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(
                f"Input to `.fit()` should have rank 4. Got array with shape: {x.shape}. "
                f"Received: x.shape={x.shape}"
            )
        if self.rescale:
            x *= self.rescale
        if augment:
            ax = np.zeros((rounds * x.shape[0], *x.shape[1:]), dtype=self.dtype)
            base = 0 if seed is None else int(seed)
            for r in range(rounds):
                for i in range(x.shape[0]):
                    ax[i + r * x.shape[0]] = self.random_transform(x[i], seed=[base, r, i])
            x = ax
        shape = [1, 1, 1]
        shape[self.channel_axis - 1] = x.shape[self.channel_axis]
        axes = (0, self.row_axis, self.col_axis)
        if self.featurewise_center:
            self.mean = np.mean(x, axis=axes).reshape(shape)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=axes).reshape(shape)
            x /= self.std + 1e-6
        if self.zca_whitening:
            flat = x.reshape(x.shape[0], -1)
            sigma = flat.T @ flat / flat.shape[0]
            u, s, _ = np.linalg.svd(sigma)
            s_inv = 1.0 / np.sqrt(s[np.newaxis] + self.zca_epsilon)
            self.zca_whitening_matrix = (u * s_inv) @ u.T
