"""The Fourier functions of `keras.ops.math`: fft, fft2, ifft2, rfft, irfft, stft, istft.

As in Keras, complex values travel as `(real, imag)` pairs of float tensors.
Each transform is a primitive whose VJP is the adjoint transform, so every
function here is differentiable with respect to both parts.
"""

from __future__ import annotations

from typing import Any

import numpy as _np

from distkeras.backend import current_module as _xp
from distkeras.backend import floatx as _floatx
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, apply
from distkeras.backend.autodiff import convert_to_tensor as _tensor

__all__ = ["fft", "fft2", "ifft2", "irfft", "istft", "rfft", "stft"]


def _complex_pair(x: Any) -> tuple[Tensor, Tensor]:
    """Checks and converts Keras's (real, imag) argument."""
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(
            f"Input `x` should be a tuple of two tensors - real and imaginary. Received: x={x}"
        )
    real, imag = _tensor(x[0]), _tensor(x[1])
    if real.shape != imag.shape:
        raise ValueError(
            "Input `x` should be a tuple of two tensors - real and imaginary. Both the real "
            "and imaginary parts should have the same shape. "
            f"Received: x[0].shape = {real.shape}, x[1].shape = {imag.shape}"
        )
    if real.data.dtype.kind != "f" or imag.data.dtype.kind != "f":
        raise ValueError(
            "At least one tensor in input `x` is not of type float. "
            f"Received: x[0].dtype={real.dtype}, x[1].dtype={imag.dtype}"
        )
    if real.dtype != imag.dtype:
        dtype = _np.result_type(real.data.dtype, imag.data.dtype).name
        real, imag = P.cast(real, dtype), P.cast(imag, dtype)
    return real, imag


def _split(z: Any, dtype: Any) -> tuple[Any, Any]:
    return z.real.astype(dtype), z.imag.astype(dtype)


def _stacked(z: Any, dtype: Any) -> Any:
    """A complex array as one real array (2, ...): the primitives' single output."""
    return _xp().stack([z.real.astype(dtype), z.imag.astype(dtype)])


def _pair(out: Tensor) -> tuple[Tensor, Tensor]:
    return P.getitem(out, 0), P.getitem(out, 1)


def _fftn(re, im, axes, inverse):
    """Primitive: the complex DFT (or its inverse) over `axes` of re + i im."""
    xp = _xp()
    forward, backward = (xp.fft.ifftn, xp.fft.fftn) if inverse else (xp.fft.fftn, xp.fft.ifftn)
    out = forward(re + 1j * im, axes=axes)
    size = int(_np.prod([re.shape[a] for a in axes]))
    # The adjoint of the DFT F is conj(F)^T = n * F^-1; of F^-1 it is F / n.
    scale = 1.0 / size if inverse else float(size)

    def vjp(g, needs):
        gz = backward(g[0] + 1j * g[1], axes=axes) * scale
        return _split(gz, re.dtype)

    return _stacked(out, re.dtype), vjp


def fft(x: tuple[Any, Any]) -> tuple[Tensor, Tensor]:
    """Complex FFT along the last axis of a (real, imag) pair."""
    real, imag = _complex_pair(x)
    return _pair(apply(_fftn, real, imag, (-1,), False))


def fft2(x: tuple[Any, Any]) -> tuple[Tensor, Tensor]:
    """Complex 2D FFT over the last two axes of a (real, imag) pair."""
    real, imag = _complex_pair(x)
    return _pair(apply(_fftn, real, imag, (-2, -1), False))


def ifft2(x: tuple[Any, Any]) -> tuple[Tensor, Tensor]:
    """Inverse complex 2D FFT over the last two axes of a (real, imag) pair."""
    real, imag = _complex_pair(x)
    return _pair(apply(_fftn, real, imag, (-2, -1), True))


def _fit_last(a: Any, n: int) -> Any:
    """`a` cropped or zero-padded to length n along the last axis."""
    m = a.shape[-1]
    if m >= n:
        return a[..., :n]
    pad = [(0, 0)] * (a.ndim - 1) + [(0, n - m)]
    return _xp().pad(a, pad)


def _rfft(x, n):
    xp = _xp()
    m = x.shape[-1]
    out = xp.fft.rfft(x, n=n, axis=-1)

    def vjp(g, needs):
        full = _fit_last(g[0] + 1j * g[1], n)  # the bins rfft drops get no gradient
        return (_fit_last((xp.fft.ifft(full, axis=-1) * n).real, m).astype(x.dtype),)

    return _stacked(out, x.dtype), vjp


def _irfft_weights(n: int, bins: int) -> Any:
    """How often each one-sided bin counts in a length-n inverse: 1 for DC and Nyquist, else 2."""
    w = _np.full(bins, 2.0)
    w[0] = 1.0
    if n % 2 == 0 and n // 2 < bins:
        w[n // 2] = 1.0
    return w


def _irfft(re, im, n):
    xp = _xp()
    m = re.shape[-1]
    out = xp.fft.irfft(re + 1j * im, n=n, axis=-1)
    bins = n // 2 + 1

    def vjp(g, needs):
        w = xp.asarray(_irfft_weights(n, bins)) / n
        spec = xp.fft.rfft(g, axis=-1) * w
        gre, gim = spec.real.copy(), spec.imag.copy()
        gim[..., 0] = 0  # the imaginary parts of DC (and an even length's Nyquist) are unused
        if n % 2 == 0:
            gim[..., n // 2] = 0
        return _fit_last(gre, m).astype(re.dtype), _fit_last(gim, m).astype(re.dtype)

    return out.astype(re.dtype), vjp


def _fft_length(fft_length: Any, default: int) -> int:
    if fft_length is None:
        return default
    if not isinstance(fft_length, (int, _np.integer)) or fft_length < 1:
        raise ValueError(
            f"Argument `fft_length` must be a positive int. Received: fft_length={fft_length}"
        )
    return int(fft_length)


def _real_float(x: Any) -> Tensor:
    x = _tensor(x)
    return P.cast(x, _floatx()) if x.data.dtype.kind != "f" else x


def rfft(x: Any, fft_length: int | None = None) -> tuple[Tensor, Tensor]:
    """FFT of a real signal along the last axis: the fft_length // 2 + 1 bins, (real, imag)."""
    x = _real_float(x)
    return _pair(apply(_rfft, x, _fft_length(fft_length, x.shape[-1])))


def irfft(x: tuple[Any, Any], fft_length: int | None = None) -> Tensor:
    """Inverse of `rfft`: a real signal of fft_length (default 2 * (bins - 1)) samples."""
    real, imag = _complex_pair(x)
    return apply(_irfft, real, imag, _fft_length(fft_length, 2 * (real.shape[-1] - 1)))


# ---------------------------------------------------------------- short-time transforms
def _window(window: Any, sequence_length: int, fft_length: int, dtype: str) -> Any:
    """The window as a host array, centred in fft_length samples (None: all ones)."""
    if window is None:
        return _np.ones(fft_length, dtype=dtype)
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(
                'If a string is passed to `window`, it must be one of `"hann"`, `"hamming"`. '
                f"Received: window={window}"
            )
        a = 0.5 if window == "hann" else 0.54
        k = _np.arange(sequence_length)  # periodic, as scipy.signal.get_window
        win = a - (1 - a) * _np.cos(2 * _np.pi * k / sequence_length)
    else:
        win = _np.asarray(window.get() if hasattr(window, "get") else window)
        win = _np.asarray(win.data if isinstance(win, Tensor) else win, dtype="float64")
        if win.ndim != 1 or win.shape[0] != sequence_length:
            raise ValueError(
                "The shape of `window` must be equal to [sequence_length]. "
                f"Received: window shape={win.shape}"
            )
    left = (fft_length - sequence_length) // 2
    return _np.pad(win, (left, fft_length - sequence_length - left)).astype(dtype)


def _check_lengths(sequence_length: int, sequence_stride: int, fft_length: int) -> None:
    for name, v in (
        ("sequence_length", sequence_length),
        ("sequence_stride", sequence_stride),
        ("fft_length", fft_length),
    ):
        if not isinstance(v, (int, _np.integer)) or v < 1:
            raise ValueError(f"Argument `{name}` must be a positive int. Received: {name}={v}")
    if fft_length < sequence_length:
        raise ValueError(
            "`fft_length` must equal or larger than `sequence_length`. "
            f"Received: sequence_length={sequence_length}, fft_length={fft_length}"
        )


def _frames(x: Tensor, length: int, stride: int) -> Tensor:
    num = max((x.shape[-1] - length) // stride + 1, 0)
    xp = _xp()
    idx = xp.arange(num)[:, None] * stride + xp.arange(length)[None, :]
    return P.take(x, idx, axis=x.ndim - 1)


def stft(
    x: Any,
    sequence_length: int,
    sequence_stride: int,
    fft_length: int,
    window: Any = "hann",
    center: bool = True,
) -> tuple[Tensor, Tensor]:
    """Short-time Fourier transform along the last axis: (..., frames, fft_length // 2 + 1)."""
    x = _tensor(x)
    if x.dtype not in ("float32", "float64"):
        raise TypeError(
            f"Invalid input type. Expected `float32` or `float64`. Received: input type={x.dtype}"
        )
    _check_lengths(sequence_length, sequence_stride, fft_length)
    win = _window(window, sequence_length, fft_length, x.dtype)
    if center:  # reflect-pad fft_length // 2 samples each side, as a differentiable gather
        half, m = fft_length // 2, x.shape[-1]
        if m <= half:
            raise ValueError(
                f"With `center=True` the signal must be longer than fft_length // 2 = {half}. "
                f"Received: x.shape={x.shape}"
            )
        idx = _np.abs(_np.arange(-half, m + half))
        idx = _np.where(idx >= m, 2 * (m - 1) - idx, idx)
        x = P.take(x, _xp().asarray(idx), axis=x.ndim - 1)
    frames = P.multiply(_frames(x, fft_length, sequence_stride), _xp().asarray(win))
    return _pair(apply(_rfft, frames, fft_length))


def _overlap_add(frames, stride):
    """Primitive: sums (..., num, n) frames placed `stride` apart into one signal."""
    xp = _xp()
    num, n = frames.shape[-2:]
    total = n + stride * (num - 1) if num else 0
    idx = xp.arange(num)[:, None] * stride + xp.arange(n)[None, :]
    out = xp.zeros((*frames.shape[:-2], total), dtype=frames.dtype)
    for i in range(num):
        out[..., i * stride : i * stride + n] += frames[..., i, :]

    def vjp(g, needs):
        return (g[..., idx],)

    return out, vjp


def istft(
    x: tuple[Any, Any],
    sequence_length: int,
    sequence_stride: int,
    fft_length: int,
    length: int | None = None,
    window: Any = "hann",
    center: bool = True,
) -> Tensor:
    """Inverse of `stft` by windowed overlap-add of a (real, imag) spectrogram."""
    real, imag = _complex_pair(x)
    _check_lengths(sequence_length, sequence_stride, fft_length)
    dtype = real.dtype
    win = _window(window, sequence_length, fft_length, dtype)
    frames = P.multiply(apply(_irfft, real, imag, fft_length), _xp().asarray(win))
    signal = apply(_overlap_add, frames, sequence_stride)
    num = real.shape[-2]
    norm = _np.zeros(fft_length + sequence_stride * (num - 1) if num else 0)
    for i in range(num):
        norm[i * sequence_stride : i * sequence_stride + fft_length] += win.astype("float64") ** 2
    norm = _np.where(norm > 1e-10, norm, 1.0)
    if window is None:  # Keras divides by the stride here, after scipy scaled by the window sum
        norm = norm * sequence_stride / fft_length
    signal = P.divide(signal, _xp().asarray(norm.astype(dtype)))
    start = fft_length // 2 if center else 0
    if length is not None:
        end = start + int(length)
    elif center:
        end = signal.shape[-1] - fft_length // 2
    else:
        end = signal.shape[-1]
    return P.getitem(signal, (Ellipsis, slice(start, max(end, start))))
