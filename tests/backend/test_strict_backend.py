"""The strict stand-in backend: its arrays refuse NumPy, and training runs on it.

The training paths run in subprocesses with DISTKERAS_BACKEND=numpy and
DISTKERAS_BACKEND=strict (tests/backend/scripts/strict_training.py); any plain
NumPy array reaching a compute path under 'strict' raises TypeError, which is
what a CuPy run would do on a GPU. Both runs must give the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import distkeras as keras
from distkeras import backend, layers
from distkeras.backend.strict import StrictArray, strict

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "strict_training.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------ the array itself
HOST = np.ones((2, 3))
MIXING = [
    ("operator", lambda a: a + HOST),
    ("reflected operator", lambda a: HOST * a),
    ("in-place operator", lambda a: a.__iadd__(HOST)),
    ("numpy ufunc", lambda a: np.maximum(a, HOST)),
    ("numpy function", lambda a: np.concatenate([a, HOST])),
    ("module ufunc", lambda a: strict.exp(HOST)),
    ("module function", lambda a: strict.where(a > 0, a, HOST)),
    ("module reduction", lambda a: strict.sum(HOST)),
    ("list operand", lambda a: a + [1.0, 2.0, 3.0]),
    ("out= host array", lambda a: np.add(a, a, out=np.empty((2, 3)))),
    ("implicit conversion", lambda a: np.asarray(a)),
    ("implicit conversion in a list", lambda a: np.array([a, a])),
    ("data is a pointer, not the array", lambda a: float(a.data)),
]


@pytest.mark.parametrize("name,fn", MIXING, ids=[m[0] for m in MIXING])
def test_strict_array_refuses_to_mix_with_numpy(name, fn):
    a = strict.ones((2, 3))
    with pytest.raises(TypeError):
        fn(a)


def test_strict_error_names_the_operation_and_the_caller():
    with pytest.raises(TypeError, match=r"numpy\.add .*test_strict_backend\.py"):
        strict.ones(3) + np.ones(3)


def test_strict_array_computes_like_numpy():
    host = np.arange(6.0).reshape(2, 3)
    a = strict.asarray(host)
    assert type(a) is StrictArray and isinstance(a, strict.ndarray)
    host[0, 0] = 100.0  # asarray from the host is a transfer: no aliasing
    assert float(a[0, 0]) == 0.0
    out = np.exp(a) * 2.0 + np.float32(1) + np.array(3.0) - strict.sum(a, axis=0)
    ref = np.exp(np.arange(6.0).reshape(2, 3)) * 2 + 4 - np.arange(6.0).reshape(2, 3).sum(0)
    assert type(out) is StrictArray
    np.testing.assert_array_equal(out.get(), ref)
    np.testing.assert_array_equal(backend.to_numpy(out), ref)
    s = a.sum()  # reductions and scalar indexing give 0-d arrays, as CuPy does
    assert type(s) is StrictArray and s.shape == () and float(s) == 15.0
    assert type(a[1, 2]) is StrictArray
    q, r = strict.linalg.qr(a.T)
    assert type(q) is StrictArray and type(r) is StrictArray
    b = strict.zeros(3)
    strict.add.at(b, np.array([0, 0, 2]), 1.0)  # host index arrays are fine (CuPy copies them)
    np.testing.assert_array_equal(b.get(), [2.0, 0.0, 1.0])
    b[np.array([1])] = np.array([5.0])
    np.testing.assert_array_equal(b.get(), [2.0, 5.0, 1.0])
    assert backend.get_array_module(b) is strict
    assert backend.get_array_module(np.ones(1)) is np


@pytest.fixture
def strict_backend():
    previous = backend.backend()
    backend.set_backend("strict")
    try:
        yield
    finally:
        backend.set_backend(previous)


class _HiddenNumpy(layers.Layer):
    """A layer with the bug the strict backend exists to catch."""

    def call(self, inputs):
        return keras.ops.add(inputs, backend.Tensor(np.ones(inputs.shape, "float32")))


def test_hidden_numpy_in_a_compute_path_fails_under_strict(strict_backend):
    dense = layers.Dense(2)
    dense.build((None, 3))
    assert type(dense.kernel.data) is StrictArray
    with pytest.raises(TypeError, match="strict backend"):
        model = keras.models.Sequential([keras.Input((3,)), dense, _HiddenNumpy()])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    # The same model without the hidden NumPy array trains on the strict backend.
    model = keras.models.Sequential([keras.Input((3,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)


def test_set_backend_rejects_unknown_names():
    with pytest.raises(ValueError, match="strict"):
        backend.set_backend("tpu")


# ------------------------------------------------------------ training paths
def _run(name: str, out_dir: str) -> dict:
    env = dict(os.environ, DISTKERAS_BACKEND=name, OMP_NUM_THREADS="1")
    env["OPENBLAS_NUM_THREADS"] = "1"
    # The compiled LSTM loops are NumPy-only (CuPy runs the array-module loops, as
    # strict does); compared bit for bit, both runs take the array-module code.
    # tests/backend/test_native.py compares the compiled loops with it.
    env["DISTKERAS_NATIVE"] = "0"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, SCRIPT, out_dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"{name} run failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    with open(os.path.join(out_dir, f"results_{name}.json")) as f:
        data = json.load(f)
    assert data["backend"] == name
    return data["results"]


def test_training_paths_run_on_strict_and_match_numpy(tmp_path):
    ref = _run("numpy", str(tmp_path))
    got = _run("strict", str(tmp_path))  # also loads the file the numpy run saved
    assert set(got) == set(ref) | {"cross_loaded_predict"}
    for key, values in ref.items():
        np.testing.assert_array_equal(got[key], values, err_msg=key)
    np.testing.assert_array_equal(got["cross_loaded_predict"], ref["loaded_predict"])
    # A file saved by the strict ("GPU") run loads on the host backend of this process.
    loaded = keras.models.load_model(tmp_path / "mlp_strict.dkm")
    x = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(loaded.predict(x[:5], verbose=0)).ravel(), got["loaded_predict"], rtol=1e-6
    )
