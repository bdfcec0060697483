"""Tests for distkeras.utils: to_categorical, normalize, Progbar, set_random_seed."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from distkeras import utils
from distkeras.backend import Tensor, convert_to_tensor, to_numpy
from distkeras.backend.random import SeedGenerator
from distkeras.utils import Progbar, normalize, set_random_seed, to_categorical
from tests.harness import check_grad

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- to_categorical ------------------------------------------------------------
def _one_hot_reference(labels, num_classes):
    labels = np.asarray(labels)
    out = np.zeros(labels.shape + (num_classes,))
    for idx in np.ndindex(labels.shape):
        out[idx + (int(labels[idx]),)] = 1.0
    return out


@pytest.mark.parametrize(
    "labels, num_classes, expected_shape",
    [
        (list(range(10)), None, (10, 10)),
        ([0, 1, 2, 3], 4, (4, 4)),
        ([[1], [0], [2]], None, (3, 3)),  # trailing 1 squeezed
        ([[1, 2, 0], [0, 0, 4]], 6, (2, 3, 6)),
        (np.array([3, 1], dtype=np.uint8), 5, (2, 5)),
        (np.array([2.0, 0.0]), None, (2, 3)),
        (7, 9, (9,)),
    ],
)
def test_to_categorical_table(labels, num_classes, expected_shape):
    out = to_categorical(labels, num_classes=num_classes)
    assert out.dtype == np.float64  # as Keras 3
    assert out.shape == expected_shape
    arr = np.asarray(labels)
    if arr.ndim > 1 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    np.testing.assert_array_equal(out, _one_hot_reference(arr, expected_shape[-1]))


def test_to_categorical_eye_and_guide_example():
    np.testing.assert_array_equal(to_categorical(np.arange(10)), np.eye(10))
    a = to_categorical([0, 1, 2, 3], num_classes=4)
    np.testing.assert_array_equal(a, np.eye(4))
    # The guide's follow-up: categorical crossentropy of a against b.
    b = np.array(
        [
            [0.9, 0.04, 0.03, 0.03],
            [0.3, 0.45, 0.15, 0.13],
            [0.04, 0.01, 0.94, 0.05],
            [0.12, 0.21, 0.5, 0.17],
        ]
    )
    loss = -np.sum(a * np.log(b / b.sum(-1, keepdims=True)), axis=-1)
    np.testing.assert_allclose(loss, [0.10536, 0.82807, 0.1011, 1.77196], atol=1e-5)


def test_to_categorical_accepts_tensor():
    out = to_categorical(convert_to_tensor(np.array([1, 0])), num_classes=2)
    np.testing.assert_array_equal(out, [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    "labels, num_classes, match",
    [
        ([0, 5], 3, "label=5"),
        ([0, -1], 3, "label=-1"),
        ([-2, 1], None, "label=-2"),
        ([0.5, 1.0], None, "integer"),
        ([0, 1], 0, "num_classes=0"),
        (["a", "b"], None, "integer"),
    ],
)
def test_to_categorical_errors(labels, num_classes, match):
    with pytest.raises(ValueError, match=match):
        to_categorical(labels, num_classes=num_classes)


# -- normalize -----------------------------------------------------------------
@pytest.mark.parametrize(
    "x, axis, order",
    [
        (np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]]), -1, 2),
        (np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]]), 0, 2),
        (np.array([[3.0, -4.0], [2.0, 0.0]]), -1, 1),
        (np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 10.0, 1, 2),
    ],
)
def test_normalize_formula(x, axis, order):
    out = normalize(x, axis=axis, order=order)
    assert isinstance(out, np.ndarray)
    norm = np.sum(np.abs(x) ** order, axis=axis, keepdims=True) ** (1.0 / order)
    expected = x / np.where(norm == 0, 1.0, norm)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_normalize_tensor_matches_numpy_and_gradients():
    x = np.array([[3.0, 4.0, -1.0], [0.5, -2.0, 2.0]])
    out = normalize(convert_to_tensor(x), axis=-1, order=2)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(to_numpy(out), normalize(x), rtol=1e-6)
    check_grad(lambda t: normalize(convert_to_tensor(t), axis=-1, order=2), x)


# -- Progbar -------------------------------------------------------------------
def _lines(text):
    return ANSI.sub("", text)


def test_progbar_averages_stateless_and_keeps_stateful(capsys):
    bar = Progbar(3, verbose=1, interval=0, stateful_metrics=["lr"])
    bar._dynamic_display = True
    bar.update(1, [("loss", 1.0), ("lr", 0.5)])
    bar.update(3, [("loss", 4.0), ("lr", 0.25)], finalize=False)
    out = _lines(capsys.readouterr().out)
    # Weighted by steps covered: (1*1 + 4*2) / 3 = 3.
    assert "loss: 3.0000" in out.split("\r")[-1]
    assert "lr: 0.2500" in out.split("\r")[-1]
    bar.update(3, [("loss", 2.5), ("lr", 0.25)])  # finalize shows final values as given
    out = _lines(capsys.readouterr().out)
    assert out.startswith("\r") and out.endswith("\n")
    assert "loss: 2.5000" in out


def test_progbar_live_format(capsys):
    bar = Progbar(47, verbose=1, interval=0)
    bar._dynamic_display = True
    bar.update(5, [("accuracy", 0.8123), ("loss", 0.5432)])
    raw = capsys.readouterr().out
    assert "\x1b[32m" in raw  # the done part of the bar is coloured on terminals
    text = _lines(raw)
    pattern = r"^\r 5/47 ━{20} \d+s \d+(us|ms|s)/step - accuracy: 0\.8123 - loss: 0\.5432$"
    assert re.match(pattern, text), text


def test_progbar_non_interactive_prints_only_final_line(capsys):
    bar = Progbar(4, verbose=1, interval=0)
    assert not bar._dynamic_display  # capsys stdout is not a terminal
    for step in range(1, 4):
        bar.update(step, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    bar.update(4, [("loss", 0.0001)])
    out = capsys.readouterr().out
    assert re.fullmatch(r"4/4 ━{20} \d+s \d+(us|ms|s)/step - loss: 1\.0000e-04\n", out), out


def test_progbar_verbose_2_and_0(capsys):
    bar = Progbar(10, verbose=2)
    bar.add(4, [("acc", 0.5)])
    assert capsys.readouterr().out == ""
    bar.add(6, [("acc", 0.75)])
    out = capsys.readouterr().out
    assert re.fullmatch(r"10/10 - \d+s - \d+(us|ms|s)/step - acc: 0\.7500\n", out), out
    silent = Progbar(2, verbose=0)
    silent.update(2, [("a", 1.0)])
    assert capsys.readouterr().out == ""


def test_progbar_unknown_target(capsys):
    bar = Progbar(None, verbose=1, interval=0)
    bar._dynamic_display = True
    bar.update(12)
    assert "     12/Unknown" in _lines(capsys.readouterr().out)


def test_progbar_rejects_both_metric_lists():
    with pytest.raises(ValueError, match="stateful_metrics"):
        Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


# -- set_random_seed -----------------------------------------------------------
def _draw():
    return (
        random.random(),
        float(np.random.rand()),
        to_numpy(SeedGenerator().uniform((3,))).tolist(),
    )


def test_set_random_seed_is_deterministic():
    set_random_seed(1234)
    first = _draw()
    set_random_seed(1234)
    assert _draw() == first
    set_random_seed(1235)
    assert _draw() != first


@pytest.mark.parametrize("seed", [1.5, "3", None, True, -1])
def test_set_random_seed_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match=re.escape(f"seed={seed!r}")):
        set_random_seed(seed)


def test_registry_reexports():
    from distkeras import saving

    assert utils.register_keras_serializable is saving.register_keras_serializable
    assert utils.get_registered_object is saving.get_registered_object
    assert utils.custom_object_scope is saving.custom_object_scope
