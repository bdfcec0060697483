"""distkeras/ops/fft.py: against numpy.fft and Keras-recorded values, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import ops
from distkeras.backend import to_numpy
from tests.harness import check_grad

R = np.random.default_rng(11)
A, B = R.normal(size=(2, 6)), R.normal(size=(2, 6))
NUMPY = {"fft": np.fft.fft, "fft2": np.fft.fft2, "ifft2": np.fft.ifft2}
# A signal and its transforms recorded from Keras 3.15.1's numpy backend.
SIGNAL = np.array([[0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.0, 1.0, -2.0, 0.5]], "float32")


def _c(pair):
    return to_numpy(pair[0]) + 1j * to_numpy(pair[1])


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_complex_transforms_match_numpy_and_differentiate(name):
    fn = getattr(ops, name)
    out = fn((A, B))
    assert out[0].dtype == out[1].dtype == "float64"
    np.testing.assert_allclose(_c(out), NUMPY[name](A + 1j * B), atol=1e-12)
    f32 = fn((A.astype("float32"), B.astype("float32")))
    assert f32[0].dtype == f32[1].dtype == "float32"
    check_grad(lambda p, q: ops.add(fn((p, q))[0], ops.multiply(fn((p, q))[1], 0.7)), A, B)


def test_rfft_and_irfft_lengths_and_gradients():
    np.testing.assert_allclose(_c(ops.rfft(A)), np.fft.rfft(A), atol=1e-12)
    for n in (4, 9):
        np.testing.assert_allclose(_c(ops.rfft(A, n)), np.fft.rfft(A, n), atol=1e-12)
    assert ops.rfft(A.astype("float32"))[0].dtype == "float32"
    assert ops.rfft(np.arange(4))[0].dtype == "float32"  # ints as floatx (Keras keeps ints)
    check_grad(lambda p: ops.add(ops.rfft(p)[0], ops.rfft(p)[1]), A)
    check_grad(lambda p: ops.add(ops.rfft(p, 4)[0], ops.rfft(p, 9)[1][:, :3]), A)
    re, im = A[:, :4], B[:, :4]
    for n in (None, 6, 7, 4, 12):
        out = ops.irfft((re, im), n)
        np.testing.assert_allclose(to_numpy(out), np.fft.irfft(re + 1j * im, n), atol=1e-12)
        check_grad(lambda p, q, n=n: ops.irfft((p, q), n), re, im)


def test_stft_and_istft_match_keras():
    # recorded from Keras 3.15.1's numpy backend
    re, im = ops.stft(SIGNAL, 4, 2, 6)
    assert re.shape == im.shape == (1, 6, 4) and re.dtype == "float32"
    np.testing.assert_allclose(
        to_numpy(re)[0, :3],
        [[-0.5, 0.0, 1.0, -1.5], [1.625, -1.8125, 2.1875, -2.375], [0.125, 0.3125, -1.1875, 1.625]],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        to_numpy(im)[0, 1:4, 1],
        [0.5412660241127014, 0.5412660241127014, -0.2165060043334961],
        atol=1e-6,
    )
    np.testing.assert_allclose(to_numpy(ops.istft((re, im), 4, 2, 6)), SIGNAL, atol=1e-6)
    re, im = ops.stft(SIGNAL, 4, 3, 4, window=None, center=False)
    np.testing.assert_allclose(
        to_numpy(re)[0], [[1.75, -1.5, 3.25], [1.0, -1.25, 2.5], [-0.5, 2.0, -3.5]], atol=1e-6
    )
    np.testing.assert_allclose(to_numpy(im)[0, :, 1], [1.25, 0.75, -0.5], atol=1e-6)
    # Keras scales an unwindowed inverse by fft_length / sequence_stride.
    back = ops.istft((re, im), 4, 3, 4, window=None, center=False)
    np.testing.assert_allclose(to_numpy(back), SIGNAL * 4 / 3, rtol=1e-5)
    assert ops.istft((re, im), 4, 3, 4, length=7, window=None, center=False).shape == (1, 7)


def test_stft_round_trip_and_gradients():
    x = R.normal(size=(2, 12))
    spec = ops.stft(x, 5, 2, 8, window="hamming")
    np.testing.assert_allclose(to_numpy(ops.istft(spec, 5, 2, 8, 12, "hamming")), x, atol=1e-10)
    check_grad(lambda p: ops.stft(p, 5, 2, 8)[1], x)
    check_grad(lambda p, q: ops.istft((p, q), 5, 2, 8), *R.normal(size=(2, 2, 4, 5)))
    window = R.uniform(size=5).tolist()
    check_grad(lambda p: ops.stft(p, 5, 2, 8, window=window)[0], x)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="tuple of two tensors"):
        ops.fft(A)
    with pytest.raises(ValueError, match=r"x\[0\].shape = \(2, 6\), x\[1\].shape = \(2, 5\)"):
        ops.fft((A, B[:, :5]))
    with pytest.raises(ValueError, match="not of type float"):
        ops.ifft2((A, np.ones((2, 6), "int32")))
    with pytest.raises(TypeError, match="Received: input type=int32"):
        ops.stft(np.ones((2, 12), "int32"), 5, 2, 8)
    with pytest.raises(ValueError, match="sequence_length=5, fft_length=4"):
        ops.stft(SIGNAL, 5, 2, 4)
    with pytest.raises(ValueError, match="Received: window=kaiser"):
        ops.stft(SIGNAL, 4, 2, 4, window="kaiser")
    with pytest.raises(ValueError, match=r"Received: window shape=\(3,\)"):
        ops.stft(SIGNAL, 4, 2, 4, window=np.ones(3))
    with pytest.raises(ValueError, match="Received: fft_length=0"):
        ops.rfft(A, 0)
