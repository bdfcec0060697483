"""Symbolic-op cases for `distkeras/ops/fft.py`, merged by test_keras_tensor.py."""

from __future__ import annotations

from distkeras import ops

V = ((8,),)
M = ((4, 4),)
SIG = ((12,),)

OP_CASES = {
    "fft": (lambda a, b: ops.fft((a, b)), [V, V]),
    "fft2": (lambda a, b: ops.fft2((a, b)), [M, M]),
    "ifft2": (lambda a, b: ops.ifft2((a, b)), [M, M]),
    "irfft": (lambda a, b: ops.irfft((a, b), 6), [((4,),), ((4,),)]),
    "istft": (lambda a, b: ops.istft((a, b), 5, 2, 8), [((4, 5),), ((4, 5),)]),
    "rfft": (lambda a: ops.rfft(a, 6), [V]),
    "stft": (lambda a: ops.stft(a, 5, 2, 8), [SIG]),
}
