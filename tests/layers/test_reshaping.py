"""Cropping, UpSampling and ZeroPadding layers against NumPy slicing, repeat and pad."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import layers
from tests.layers.harness import run_layer_test

X1 = np.random.default_rng(0).normal(size=(2, 6, 3))
X2 = np.random.default_rng(1).normal(size=(2, 5, 4, 3))
X3 = np.random.default_rng(2).normal(size=(2, 4, 3, 5, 2))


def _lerp_matrix(n, s):
    """Half-pixel-centre bilinear weights, written independently of the layer."""
    w = np.zeros((n * s, n))
    for o in range(n * s):
        c = min(max((o + 0.5) / s - 0.5, 0.0), n - 1.0)
        lo = int(np.floor(c))
        hi = min(lo + 1, n - 1)
        w[o, lo] += 1 - (c - lo)
        w[o, hi] += c - lo
    return w


def _bilinear(x, sh, sw):
    wh, ww = _lerp_matrix(x.shape[1], sh), _lerp_matrix(x.shape[2], sw)
    return np.einsum("oh,bhwc,pw->bopc", wh, x, ww)


CASES = [
    # name, cls, kwargs, input, expected output
    ("crop1d", layers.Cropping1D, {"cropping": (1, 2)}, X1, X1[:, 1:4]),
    ("crop1d_int", layers.Cropping1D, {"cropping": 2}, X1, X1[:, 2:4]),
    ("crop2d", layers.Cropping2D, {"cropping": ((1, 0), (1, 2))}, X2, X2[:, 1:, 1:2]),
    ("crop2d_sym", layers.Cropping2D, {"cropping": (1, 1)}, X2, X2[:, 1:4, 1:3]),
    (
        "crop2d_cf",
        layers.Cropping2D,
        {"cropping": 1, "data_format": "channels_first"},
        X2,
        X2[:, :, 1:3, 1:2],
    ),
    ("crop3d", layers.Cropping3D, {"cropping": 1}, X3, X3[:, 1:3, 1:2, 1:4]),
    (
        "crop3d_pairs",
        layers.Cropping3D,
        {"cropping": ((0, 1), (1, 0), (2, 1))},
        X3,
        X3[:, 0:3, 1:3, 2:4],
    ),
    ("pad1d", layers.ZeroPadding1D, {"padding": (1, 2)}, X1, np.pad(X1, ((0, 0), (1, 2), (0, 0)))),
    ("pad1d_int", layers.ZeroPadding1D, {}, X1, np.pad(X1, ((0, 0), (1, 1), (0, 0)))),
    (
        "pad2d",
        layers.ZeroPadding2D,
        {"padding": ((1, 0), (2, 1))},
        X2,
        np.pad(X2, ((0, 0), (1, 0), (2, 1), (0, 0))),
    ),
    (
        "pad2d_cf",
        layers.ZeroPadding2D,
        {"padding": 1, "data_format": "channels_first"},
        X2,
        np.pad(X2, ((0, 0), (0, 0), (1, 1), (1, 1))),
    ),
    (
        "pad3d",
        layers.ZeroPadding3D,
        {"padding": (1, 0, 2)},
        X3,
        np.pad(X3, ((0, 0), (1, 1), (0, 0), (2, 2), (0, 0))),
    ),
    ("up1d", layers.UpSampling1D, {"size": 3}, X1, np.repeat(X1, 3, axis=1)),
    ("up2d", layers.UpSampling2D, {}, X2, np.repeat(np.repeat(X2, 2, 1), 2, 2)),
    (
        "up2d_cf",
        layers.UpSampling2D,
        {"size": (1, 3), "data_format": "channels_first"},
        X2,
        np.repeat(X2, 3, 3),
    ),
    (
        "up2d_bilinear",
        layers.UpSampling2D,
        {"size": (2, 3), "interpolation": "bilinear"},
        X2,
        _bilinear(X2, 2, 3),
    ),
    (
        "up3d",
        layers.UpSampling3D,
        {"size": (2, 1, 2)},
        X3,
        np.repeat(np.repeat(X3, 2, 1), 2, 3),
    ),
]


@pytest.mark.parametrize("name,cls,kwargs,x,expected", CASES, ids=[c[0] for c in CASES])
def test_reshaping_layer(name, cls, kwargs, x, expected):
    run_layer_test(
        cls,
        kwargs,
        input_shape=x.shape,
        input_data=x,
        expected_output_shape=expected.shape,
        expected_output=expected,
        expected_num_trainable_weights=0,
    )


def test_bilinear_reference_keeps_constants_and_interpolates():
    x = np.arange(3.0).reshape(1, 3, 1, 1)
    out = np.asarray(layers.UpSampling2D((2, 1), interpolation="bilinear")(x)).ravel()
    np.testing.assert_allclose(out, [0, 0.25, 0.75, 1.25, 1.75, 2.0])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layers.Cropping2D(cropping=((1, 2), (3,))), "cropping"),
        (lambda: layers.Cropping1D(cropping=-1), "cropping=-1"),
        (lambda: layers.ZeroPadding2D(padding=(1, 2, 3)), "padding"),
        (lambda: layers.UpSampling2D(size=0), "size=0"),
        (lambda: layers.UpSampling2D(interpolation="cubic"), "interpolation='cubic'"),
        (lambda: layers.ZeroPadding2D(data_format="nhwc"), "data_format='nhwc'"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cropping_more_than_the_input_raises():
    with pytest.raises(ValueError, match="must be smaller than the input length"):
        layers.Cropping1D((3, 3))(np.zeros((1, 6, 2), "float32"))


def test_wrong_rank_raises():
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.ZeroPadding2D()(np.zeros((1, 6, 2), "float32"))
