"""Every-op symbolic cases for `distkeras.ops.image` (merged into test_keras_tensor.py).

Format: name -> (function of symbolic-or-eager inputs, input specs without the batch axis).
"""

from __future__ import annotations

import numpy as np

from distkeras import ops

RGB = ((5, 6, 3),)
POS_RGB = ((5, 6, 3), "float32", "pos")
IMG = ((6, 6, 2),)
COORDS = np.random.default_rng(4).uniform(-1, 5, size=(4, 2, 5)).astype("float32")
COORDS[0] = 1.0  # the batch index (every trial batch has a second image)
COORDS[3] = np.round(COORDS[3]) % 2

OP_CASES = {
    "affine_transform": (ops.image.affine_transform, [IMG, ((8,),)]),
    "crop_images": (
        lambda a: ops.image.crop_images(a, 1, 2, target_height=3, target_width=3),
        [IMG],
    ),
    "extract_patches": (lambda a: ops.image.extract_patches(a, 2, strides=(1, 2)), [IMG]),
    "gaussian_blur": (lambda a: ops.image.gaussian_blur(a, (3, 5), (0.8, 1.2)), [IMG]),
    "hsv_to_rgb": (ops.image.hsv_to_rgb, [POS_RGB]),
    "map_coordinates": (lambda a: ops.image.map_coordinates(a, COORDS, 1, "reflect"), [IMG]),
    "pad_images": (lambda a: ops.image.pad_images(a, 1, 0, target_height=8, target_width=7), [IMG]),
    "resize": (lambda a: ops.image.resize(a, (4, 9), interpolation="bicubic"), [IMG]),
    "rgb_to_grayscale": (ops.image.rgb_to_grayscale, [RGB]),
    "rgb_to_hsv": (ops.image.rgb_to_hsv, [POS_RGB]),
}
