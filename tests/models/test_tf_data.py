"""Real `tf.data.Dataset` input, as the Keras guides use it, in one process and under mpirun.

TensorFlow runs only in subprocesses (scripts/tf_data_cases.py, scripts/tf_data_shares.py):
its import takes seconds and starts thread pools and native libraries that have no
place in the test process. Each case compares distkeras on the tf.data pipeline with
the same training on NumPy arrays (same weights, within float tolerance). Without
TensorFlow installed these tests skip; tests/models/test_data_inputs.py covers the
adapters through a duck-typed stand-in (checked against TensorFlow here).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distkeras import layers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed
from tests.models.data_fakes import ids_regression
from tests.models.test_data_parallel import MPIRUN, _env

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).parent / "scripts"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="needs TensorFlow (pip install 'distkeras[tf]')",
)


def _tf_env() -> dict:
    return dict(_env(), TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTEROP_THREADS="1")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Runs every case of scripts/tf_data_cases.py once (one TensorFlow import)."""
    prefix = str(tmp_path_factory.mktemp("tf_data") / "cases")
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "tf_data_cases.py"), prefix],
        capture_output=True,
        text=True,
        timeout=300,
        env=_tf_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(Path(f"{prefix}.json").read_text())
    with np.load(f"{prefix}.npz") as f:
        arrays = {k: f[k] for k in f.files}
    return report, arrays


def _compare(cases, name: str) -> None:
    report, arrays = cases
    assert name not in report["errors"], report["errors"][name]
    count = sum(1 for k in arrays if k.startswith(f"{name}/tf/"))
    assert count > 0 and count == sum(1 for k in arrays if k.startswith(f"{name}/np/"))
    for i in range(count):
        got, want = arrays[f"{name}/tf/{i}"], arrays[f"{name}/np/{i}"]
        if want.dtype.kind in "USO":
            np.testing.assert_array_equal(got, want, err_msg=f"{name} value {i}")
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=f"{name} [{i}]")


@pytest.mark.parametrize(
    "name",
    [
        # shuffle(n, seed).batch(6) for fit, validation_data= another dataset; the shuffled
        # orders (read from the same pipeline) are permutations that change every epoch
        "shuffle_batch_validation",
        "evaluate_and_predict",  # evaluate; predict on a dataset of x only (and prefetched)
        "dict_inputs",  # from_tensor_slices(({"a": .., "b": ..}, y))
        "sample_weight",  # (x, y, sample_weight) elements
        "repeat_steps_per_epoch",  # .repeat() with steps_per_epoch
        "class_weight",
        "prefetch_and_unknown_cardinality",  # prefetch(AUTOTUNE), filter(), list batches
        "text_vectorization",  # strings into Input(dtype="string") + TextVectorization
        "sparse_and_ragged",  # densified / zero-padded, as Keras 3's NumPy iterator does
        "stand_in_matches_tf",  # FakeTFDataset's shard/cardinality equal tf.data's
    ],
)
def test_tf_data_trains_like_arrays(cases, name):
    _compare(cases, name)


def test_shuffled_pipeline_reshuffles_each_epoch(cases):
    report, _ = cases
    assert report["info"]["shuffle_batch_validation"]["orders_differ"] is True


def test_tf_data_refusals_name_the_argument(cases):
    refused = cases[0]["refused"]
    assert "steps_per_epoch" in refused["infinite"]
    assert refused["infinite"].endswith("Received: steps=None")
    assert "`y` should not be passed" in refused["y_given"]


def test_distkeras_never_imports_tensorflow(tmp_path):
    """Importing distkeras (and writing TensorBoard logs) loads no TensorFlow, though installed.

    TensorBoard's file I/O would import TensorFlow when it is installed; the
    callback selects TensorBoard's stub unless the user imported TensorFlow.
    """
    code = (
        "import sys, numpy as np, distkeras as keras\n"
        "assert 'tensorflow' not in sys.modules, 'import distkeras'\n"
        "m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "m.compile('sgd', 'mse')\n"
        "cb = keras.callbacks.TensorBoard(sys.argv[1])\n"
        "m.fit(np.ones((4, 2)), np.ones(4), verbose=0, epochs=2, callbacks=[cb])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorBoard callback'\n"
    )
    pytest.importorskip("tensorboard")
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "logs")],
        capture_output=True,
        text=True,
        timeout=120,
        env=_tf_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert any((tmp_path / "logs" / "train").iterdir())


# ------------------------------------------------------------------ under mpirun
N, BS = 19, 4


@pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")
def test_each_rank_reads_its_shard_under_mpirun(tmp_path):
    """2 ranks: `shard(2, rank)` of the batches (or the user's own shards, auto-shard OFF).

    Per epoch every sample is read once across ranks, none twice in a global step, the
    per-rank counts add up to the dataset, and the weights equal one process's on the
    global batches (two of the dataset's batches per step, in order).
    """
    pytest.importorskip("mpi4py")
    prefix = str(tmp_path / "tf_shares")
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", sys.executable]
    cmd += [str(SCRIPTS / "tf_data_shares.py"), prefix]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_tf_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranks = [json.loads(Path(f"{prefix}.rank{r}.json").read_text()) for r in range(2)]
    for name in ranks[0]["seen"]:
        for epoch in range(2):
            steps = [ranks[r]["seen"][name][epoch] for r in range(2)]
            assert len(steps[0]) == len(steps[1]), name  # lockstep
            every = []
            for (ids0, g0), (ids1, g1) in zip(*steps):
                assert not set(ids0) & set(ids1), (name, ids0, ids1)  # none twice in a step
                assert g0 == g1 == len(ids0) + len(ids1), name  # the agreed global batch size
                every += ids0 + ids1
            assert sorted(every) == list(range(N)), (name, epoch)  # each sample once
            counts = [sum(len(ids) for ids, _ in s) for s in steps]
            assert sum(counts) == N and min(counts) > 0, (name, counts)
    assert [ranks[r]["card"] for r in range(2)] == [3, 2]  # batches 0, 2, 4 | 1, 3
    # One process on the same global batches: the arrays in order, batch_size = 2 * BS.
    set_random_seed(1)
    m = Sequential([layers.Dense(1, input_shape=(1,))])
    m.compile("sgd", "mse")
    m.fit(*ids_regression(N), batch_size=2 * BS, shuffle=False, epochs=2, verbose=0)
    for r in range(2):
        for got, want in zip(ranks[r]["weights"], m.get_weights(), strict=True):
            np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ranks[r]["evaluate"], ranks[r]["evaluate_arrays"], rtol=1e-5)
