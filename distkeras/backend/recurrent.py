"""Fused recurrent loops: SimpleRNN, LSTM and GRU over a whole sequence.

Each primitive runs the time loop on raw arrays: one GEMM projects the inputs
of every timestep at once, then one recurrent GEMM per step; the activations
each step produces are kept, and a hand-written vector-Jacobian product runs
back through time (BPTT), ending with one GEMM per weight gradient. The LSTM
(`lstm.py`) and GRU (`gru.py`) keep each step feature-major and pipeline their
big GEMMs; SimpleRNN is here, with the public wrappers.

Arrays are batch-major `(batch, time, features)` at the interface and
time-major inside. `mask` is None or a boolean `(batch, time)` array; a
masked step leaves every state unchanged (its output is the carried state).
Weight layouts follow Keras: LSTM gates `i, f, c, o`; GRU `z, r, h`.

`unstack_time` splits a sequence into per-step tensors for the generic
(composed-of-ops) loop without the quadratic cost of slicing in backward.
"""

from __future__ import annotations

from typing import Any

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply, is_recording
from distkeras.backend.gru import _gru
from distkeras.backend.lstm import _lstm
from distkeras.backend.primitives import column_sums
from distkeras.backend.threads import SMALL_GEMM, single_blas_thread


def _xp():
    return current_module()


def _time_major(x):
    """(B, T, D) -> contiguous (T*B, D) plus the shape (T, B, D)."""
    B, T, D = x.shape
    xt = _xp().ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D)
    return xt, (T, B, D)


def _drop_rows(mask):
    """Boolean mask (B, T) -> (T, B, 1) selector of the masked (skipped) rows, or None."""
    return None if mask is None else ~mask.T[..., None]


def _batch_major(seq):
    """(T, B, U) -> contiguous (B, T, U)."""
    return _xp().ascontiguousarray(seq.transpose(1, 0, 2))


# ---------------------------------------------------------------- SimpleRNN
_ACTS = ("tanh", "relu", "linear")


def _simple_rnn(x, h0, kernel, rkernel, bias, mask, activation="tanh"):
    xp = _xp()
    xt, (T, B, D) = _time_major(x)
    U = rkernel.shape[0]
    small = B * U * U <= SMALL_GEMM
    H = xp.empty((T + 1, B, U), dtype=x.dtype)
    H[0] = h0
    xp.matmul(xt, kernel, out=H[1:].reshape(T * B, U))
    if bias is not None:
        H[1:] += bias
    drop = _drop_rows(mask)
    tmp = xp.empty((B, U), dtype=x.dtype)
    with single_blas_thread(small):
        for t in range(T):
            a = H[t + 1]
            xp.matmul(H[t], rkernel, out=tmp)
            a += tmp
            if activation == "tanh":
                xp.tanh(a, out=a)
            elif activation == "relu":
                xp.maximum(a, 0, out=a)
            if drop is not None:
                xp.copyto(a, H[t], where=drop[t])

    def vjp(g, needs):
        gH = g.transpose(1, 0, 2)
        if activation == "tanh":
            dact = 1 - H[1:] * H[1:]
        elif activation == "relu":
            dact = (H[1:] > 0).astype(x.dtype)
        else:
            dact = None
        dA = xp.empty((T, B, U), dtype=x.dtype)
        dh = xp.zeros((B, U), dtype=x.dtype)
        rk_t = xp.ascontiguousarray(rkernel.T)
        with single_blas_thread(small):
            for t in range(T - 1, -1, -1):
                dh += gH[t]
                da = dA[t]
                if dact is None:
                    da[...] = dh
                else:
                    xp.multiply(dh, dact[t], out=da)
                if drop is not None:
                    da *= ~drop[t]
                dh_new = da @ rk_t
                if drop is not None:
                    xp.copyto(dh_new, dh, where=drop[t])
                dh = dh_new
        dA2 = dA.reshape(T * B, U)
        return (
            (dA2 @ kernel.T).reshape(T, B, D).transpose(1, 0, 2) if needs[0] else None,
            dh if needs[1] else None,
            xt.T @ dA2 if needs[2] else None,
            H[:T].reshape(T * B, U).T @ dA2 if needs[3] else None,
            column_sums(dA2) if bias is not None and needs[4] else None,
            None,
        )

    return _batch_major(H[1:]), vjp


# ---------------------------------------------------------------- public wrappers
def _mask_data(mask) -> Any:
    if mask is None:
        return None
    m = mask.data if isinstance(mask, Tensor) else mask
    return _xp().asarray(m).astype(bool, copy=False)


def simple_rnn(x, h0, kernel, recurrent_kernel, bias=None, mask=None, activation="tanh") -> Tensor:
    """Runs `h_t = act(x_t W + h_{t-1} U + b)` over a sequence.

    Args:
        x: Inputs `(batch, time, features)`.
        h0: Initial state `(batch, units)`.
        kernel, recurrent_kernel, bias: Weights `(features, units)`, `(units, units)`, `(units,)`.
        mask: Optional boolean `(batch, time)`; masked steps keep the previous state.
        activation: 'tanh', 'relu' or 'linear'.

    Returns:
        The states after every step, `(batch, time, units)`.
    """
    if activation not in _ACTS:
        raise ValueError(f"activation must be one of {_ACTS}. Received: activation={activation!r}")
    return apply(
        _simple_rnn, x, h0, kernel, recurrent_kernel, bias, _mask_data(mask), activation=activation
    )


# Every positional input of the recurrent primitives is data (see `apply`).
_simple_rnn.tensor_inputs = _lstm.tensor_inputs = _gru.tensor_inputs = True


def lstm(
    x, h0, c0, kernel, recurrent_kernel, bias=None, mask=None, return_sequences=True
) -> Tensor:
    """Runs a Keras LSTM (gates i, f, c, o; sigmoid gates, tanh candidate) over a sequence.

    Args:
        x: Inputs `(batch, time, features)`.
        h0, c0: Initial states `(batch, units)`.
        kernel, recurrent_kernel, bias: Weights `(features, 4 units)`, `(units, 4 units)`,
            `(4 units,)`.
        mask: Optional boolean `(batch, time)`; masked steps keep the previous states.

        return_sequences: False returns only the last states (no per-step outputs
            are kept for the caller, and the backward pass skips their gradients).

    Returns:
        `(batch, time + 1, units)`: the hidden state after every step, then the last
        carry state `c` at index `time`; with `return_sequences=False`,
        `(batch, 2, units)`: the last `h`, then the last `c`.
    """
    return apply(
        _lstm,
        x,
        h0,
        c0,
        kernel,
        recurrent_kernel,
        bias,
        _mask_data(mask),
        last_only=not return_sequences,
    )


def gru(x, h0, kernel, recurrent_kernel, bias=None, mask=None, reset_after=True) -> Tensor:
    """Runs a Keras GRU (gates z, r, h; `h = z h_prev + (1 - z) h~`) over a sequence.

    Args:
        x: Inputs `(batch, time, features)`.
        h0: Initial state `(batch, units)`.
        kernel, recurrent_kernel: Weights `(features, 3 units)`, `(units, 3 units)`.
        bias: `(2, 3 units)` (input and recurrent biases) when `reset_after`, else `(3 units,)`.
        mask: Optional boolean `(batch, time)`; masked steps keep the previous state.
        reset_after: Apply the reset gate after the recurrent matmul (Keras 3 default).

    Returns:
        The states after every step, `(batch, time, units)`.
    """
    return apply(
        _gru, x, h0, kernel, recurrent_kernel, bias, _mask_data(mask), reset_after=reset_after
    )


# ---------------------------------------------------------------- unstack for generic loops
class _StepGrads:
    """Gradients of the per-step slices of one sequence, gathered without dense sums."""

    __slots__ = ("parts",)

    def __init__(self, parts: dict):
        self.parts = parts

    def __add__(self, other: Any) -> _StepGrads:
        if not isinstance(other, _StepGrads):
            return NotImplemented
        for k, v in other.parts.items():
            self.parts[k] = self.parts[k] + v if k in self.parts else v
        return self

    __radd__ = __add__


def _time_major_view(x):
    xp = _xp()
    out = xp.moveaxis(x, 1, 0)

    def vjp(g, needs):
        if isinstance(g, _StepGrads):
            dense = xp.zeros(out.shape, dtype=x.dtype)
            for t, v in g.parts.items():
                dense[t] += v
            g = dense
        return (xp.moveaxis(g, 0, 1),)

    return out, vjp


def unstack_time(x) -> list[Tensor]:
    """Splits `(batch, time, ...)` into `time` tensors `(batch, ...)`, differentiably.

    Unlike slicing step by step, backward writes each step's gradient once into a
    single dense array (no full-size zeros per step).
    """
    tm = apply(_time_major_view, x)
    if not (tm.requires_grad and is_recording()):
        return [Tensor(tm.data[t]) for t in range(tm.shape[0])]

    def make_vjp(t):
        return lambda g, needs: (_StepGrads({t: g}),)

    return [Tensor(tm.data[t], True, (tm,), make_vjp(t)) for t in range(tm.shape[0])]
