"""Fused recurrent primitives and the embedding lookup against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras import backend, ops
from distkeras.backend import GradientTape, Variable, to_numpy
from distkeras.backend.embedding import _scatter_rows
from tests.harness import check_grad

B, T, D, U = 2, 4, 3, 2
MASK = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=bool)


@pytest.fixture(autouse=True)
def _float64():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


@pytest.fixture(params=["compiled", "numpy"])
def lstm_loop(request):
    """The LSTM's time loops compiled (`backend/_native`) or as NumPy calls."""
    from distkeras.backend import native

    if request.param == "compiled":
        assert native.lstm_loops(np.float64) is not None, native.status()
    native.set_enabled(request.param == "compiled")
    yield request.param
    native.set_enabled(None)


def _arrays(*shapes):
    rng = np.random.default_rng(1)
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last_only"])
@pytest.mark.parametrize("mask", [None, MASK], ids=["nomask", "mask"])
def test_lstm_primitive_gradients(mask, sequences, lstm_loop):
    arrays = _arrays((B, T, D), (B, U), (B, U), (D, 4 * U), (U, 4 * U), (4 * U,))
    check_grad(
        lambda x, h, c, k, r, b: ops.lstm(x, h, c, k, r, b, mask=mask, return_sequences=sequences),
        *arrays,
    )


def test_lstm_last_only_equals_the_last_step_of_the_sequence():
    arrays = _arrays((B, T, D), (B, U), (B, U), (D, 4 * U), (U, 4 * U), (4 * U,))
    full = to_numpy(ops.lstm(*arrays, mask=MASK))
    last = to_numpy(ops.lstm(*arrays, mask=MASK, return_sequences=False))
    np.testing.assert_array_equal(last[:, 0], full[:, T - 1])
    np.testing.assert_array_equal(last[:, 1], full[:, T])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("mask", [None, MASK], ids=["nomask", "mask"])
def test_gru_primitive_gradients(reset_after, mask):
    bias = (2, 3 * U) if reset_after else (3 * U,)
    arrays = _arrays((B, T, D), (B, U), (D, 3 * U), (U, 3 * U), bias)
    check_grad(
        lambda x, h, k, r, b: ops.gru(x, h, k, r, b, mask=mask, reset_after=reset_after), *arrays
    )


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("mask", [None, MASK], ids=["nomask", "mask"])
def test_simple_rnn_primitive_gradients(activation, mask):
    arrays = _arrays((B, T, D), (B, U), (D, U), (U, U), (U,))
    check_grad(
        lambda x, h, k, r, b: ops.simple_rnn(x, h, k, r, b, mask=mask, activation=activation),
        *arrays,
    )


def test_primitives_without_bias(lstm_loop):
    x, h, c, k4, r4, k3, r3 = _arrays(
        (B, T, D), (B, U), (B, U), (D, 4 * U), (U, 4 * U), (D, 3 * U), (U, 3 * U)
    )
    check_grad(lambda x, k, r: ops.lstm(x, h, c, k, r, None), x, k4, r4)
    check_grad(lambda x, k, r: ops.gru(x, h, k, r, None, reset_after=True), x, k3, r3)


def test_simple_rnn_rejects_unknown_activation():
    x, h, k, r = _arrays((B, T, D), (B, U), (D, U), (U, U))
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        ops.simple_rnn(x, h, k, r, activation="sigmoid")


def test_unstack_time_gradient_is_each_steps_gradient():
    (x,) = _arrays((B, T, D))
    check_grad(lambda a: ops.stack(ops.unstack_time(a)[::-1], axis=1), x)
    # Steps used twice accumulate.
    check_grad(lambda a: ops.add(ops.unstack_time(a)[1], ops.unstack_time(a)[1]), x)


def test_embedding_lookup_values_and_gradient_with_repeats():
    table = np.random.default_rng(0).normal(size=(6, 3))
    idx = np.array([[0, 5, 5], [2, 5, 0]])
    out = ops.embedding_lookup(table, idx)
    np.testing.assert_array_equal(to_numpy(out), table[idx])
    tv = Variable(table)
    w = np.random.default_rng(1).normal(size=(2, 3, 3))
    with GradientTape() as tape:
        loss = ops.sum(ops.multiply(ops.embedding_lookup(tv, idx), w))
    (grad,) = tape.gradient(loss, [tv])
    expected = np.zeros_like(table)
    np.add.at(expected, idx.ravel(), w.reshape(-1, 3))
    np.testing.assert_allclose(to_numpy(grad), expected, atol=1e-12)
    check_grad(lambda t: ops.embedding_lookup(t, idx), table)


@pytest.mark.parametrize("vocab,n", [(10, 50), (1000, 300), (5, 1), (4, 4), (3, 100)])
def test_scatter_rows_matches_add_at(vocab, n):
    """Few repeats go level by level, many (vocab 3, n 100) through reduceat."""
    rng = np.random.default_rng(vocab)
    idx = rng.integers(0, vocab, n)
    rows = rng.normal(size=(n, 3))
    expected = np.zeros((vocab, 3))
    np.add.at(expected, idx, rows)
    np.testing.assert_allclose(_scatter_rows(idx, rows, vocab), expected, atol=1e-12)
    out = np.full((vocab, 3), np.nan)  # a reused buffer is zeroed first
    assert _scatter_rows(idx, rows, vocab, out=out) is out
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_scatter_rows_sums_each_index_in_input_order():
    """The same bits as `add.at`, which adds the rows of an index in input order
    (up to 8 repeats, added level by level; more go through `reduceat`)."""
    rng = np.random.default_rng(7)
    vocab = 40
    idx = rng.integers(0, vocab, 120).astype("int32")
    rows = (rng.normal(size=(120, 5)) * 10.0 ** rng.integers(-6, 6, (120, 1))).astype("float32")
    expected = np.zeros((vocab, 5), "float32")
    np.add.at(expected, idx, rows)
    np.testing.assert_array_equal(_scatter_rows(idx, rows, vocab), expected)


def test_embedding_gradient_goes_into_its_sink():
    from distkeras.backend.autodiff import backward

    rng = np.random.default_rng(4)
    table = Variable(rng.normal(size=(7, 3)), dtype="float64")
    idx = rng.integers(0, 7, (4, 5))
    w = rng.normal(size=(4, 5, 3))
    sink = np.full((7, 3), np.nan)
    with GradientTape():
        loss = ops.sum(ops.multiply(ops.embedding_lookup(table, idx), w))
    plain = backward(loss)
    with GradientTape():
        loss = ops.sum(ops.multiply(ops.embedding_lookup(table, idx), w))
    sunk = backward(loss, sinks={id(table): sink})
    assert sunk[id(table)] is sink
    np.testing.assert_allclose(sink, plain[id(table)], atol=1e-12)


@pytest.fixture
def pipelined(monkeypatch):
    """Any size runs the time loops' block GEMMs in the pool (3 threads), as big ones do."""
    from distkeras.backend import windows

    monkeypatch.setattr(windows, "_MIN_PARALLEL", 1)
    windows.set_threads(3)
    yield windows
    windows.set_threads(None)


def _loop_case(kind, steps, batch=B):
    """(function of arrays, arrays) for one fused loop over `steps` steps."""
    if kind == "gru_before":
        arrays = _arrays((batch, steps, D), (batch, U), (D, 3 * U), (U, 3 * U), (3 * U,))
        return (lambda x, h, k, r, b: ops.gru(x, h, k, r, b, reset_after=False)), arrays
    if kind == "gru_after":
        arrays = _arrays((batch, steps, D), (batch, U), (D, 3 * U), (U, 3 * U), (2, 3 * U))
        return (lambda x, h, k, r, b: ops.gru(x, h, k, r, b, reset_after=True)), arrays
    arrays = _arrays((batch, steps, D), (batch, U), (batch, U), (D, 4 * U), (U, 4 * U), (4 * U,))
    return (lambda *a: ops.lstm(*a, return_sequences=kind == "lstm")), arrays


LOOP_KINDS = ["lstm", "lstm_last_only", "gru_after", "gru_before"]


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_pipelined_loop_gradients_over_several_blocks(pipelined, kind, lstm_loop):
    """19 steps: blocks of 8, 8 and 3, projected and differentiated in the pool thread."""
    fn, arrays = _loop_case(kind, 19)
    check_grad(fn, *arrays)


def test_pipelined_lstm_gradients_with_a_mask(pipelined, lstm_loop):
    mask = np.random.default_rng(3).random((B, 19)) > 0.3
    arrays = _arrays((B, 19, D), (B, U), (B, U), (D, 4 * U), (U, 4 * U), (4 * U,))
    check_grad(lambda x, h, c, k, r, b: ops.lstm(x, h, c, k, r, b, mask=mask), *arrays)


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_pipelined_loop_is_bitwise_the_same_on_one_thread(pipelined, kind, lstm_loop):
    """The blocks do not depend on the thread count, so neither do the bits."""
    fn, arrays = _loop_case(kind, 21, batch=3)

    def run():
        vs = [Variable(a) for a in arrays]
        with GradientTape() as tape:
            y = fn(*vs)
            total = ops.sum(ops.multiply(y, y))
        return [to_numpy(y), *(to_numpy(g) for g in tape.gradient(total, vs))]

    threaded = run()
    pipelined.set_threads(1)
    for a, b in zip(run(), threaded):
        np.testing.assert_array_equal(a, b)


def test_background_jobs_run_once_in_order_of_need(pipelined):
    """`wait` runs a job no thread has started; `finish` leaves none behind."""
    import threading

    gate = threading.Event()
    done = []
    bg = pipelined.Background(1 << 20)
    assert bg.pinned
    bg.submit(gate.wait)  # holds the pool's threads busy
    bg.submit(gate.wait)
    jobs = [bg.submit(done.append, i) for i in range(4)]
    bg.wait(jobs[2])  # not started by any thread: runs here, now
    assert done == [2]
    assert not bg.idle()
    gate.set()
    bg.finish()
    assert sorted(done) == [0, 1, 2, 3] and len(done) == 4


def test_a_pool_job_that_runs_a_threaded_loop_does_not_wait_on_the_pool(pipelined):
    """With every worker busy, a job that queued work for the pool would wait forever."""
    import threading

    pipelined.set_threads(2)  # one worker: the job below occupies it
    x = np.random.default_rng(0).normal(size=(4, 5, 5, 3))
    want = pipelined.im2col(x, (2, 2), (1, 1), (1, 1), (4, 4))
    got, started = {}, threading.Event()

    def job():
        started.set()
        got["cols"] = pipelined.im2col(x, (2, 2), (1, 1), (1, 1), (4, 4))

    def run():
        bg = pipelined.Background(1 << 20)
        bg.submit(job)
        started.wait(10)  # running in the worker, not taken back by finish
        bg.finish()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "the pool job deadlocked"
    np.testing.assert_array_equal(got["cols"], want)
