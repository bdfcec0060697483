"""Unknown identifiers, in every module family, name the closest valid ones.

The suggestion is made once, in `saving.serialization_lib.deserialize_keras_object`;
each module's `get` / `deserialize` goes through it for unknown strings and
unknown class names.
"""

from __future__ import annotations

import re

import pytest

from distkeras import (
    activations,
    constraints,
    initializers,
    losses,
    metrics,
    optimizers,
    regularizers,
)
from distkeras.optimizers import schedules
from distkeras.saving import register_keras_serializable
from distkeras.saving.serialization_lib import closest_names, deserialize_keras_object

# (module, printable name in the message, a typo, the first suggestion expected)
FAMILIES = [
    (activations, "activation function", "reluu", "relu"),
    (activations, "activation function", "sofmax", "softmax"),
    (losses, "loss", "categorical_crosentropy", "categorical_crossentropy"),
    (losses, "loss", "MeanSquaredErorr", "MeanSquaredError"),
    (metrics, "metric", "binary_acuracy", "binary_accuracy"),
    (metrics, "metric", "precison", "precision"),
    (optimizers, "optimizer", "adamm", "adam"),
    (optimizers, "optimizer", "rmsprob", "rmsprop"),
    (initializers, "initializer", "glorot_unifrom", "glorot_uniform"),
    (regularizers, "regularizer", "l1_l3", "l1_l2"),
    (constraints, "constraint", "unit_nrom", "unit_norm"),
]


@pytest.mark.parametrize("module, kind, typo, first", FAMILIES, ids=lambda x: str(x)[:24])
def test_get_lists_closest_valid_names(module, kind, typo, first):
    with pytest.raises(ValueError) as err:
        module.get(typo)
    msg = str(err.value)
    assert msg.startswith(f"Could not interpret {kind} identifier: '{typo}'")
    assert f"Received: identifier='{typo}'" in msg
    assert re.search(rf"Did you mean: '{first}'", msg), msg


@pytest.mark.parametrize("module, kind, typo, first", FAMILIES, ids=lambda x: str(x)[:24])
def test_unknown_class_name_in_a_config_lists_closest(module, kind, typo, first):
    config = {"class_name": typo, "config": {}, "module": "x", "registered_name": None}
    with pytest.raises(ValueError, match=f"Did you mean: '{first}'"):
        module.deserialize(config)


def test_schedule_names_are_suggested():
    with pytest.raises(ValueError, match="Did you mean: 'ExponentialDecay'"):
        schedules.deserialize({"class_name": "ExponentialDecai", "config": {}})


def test_nothing_close_adds_no_suggestion():
    with pytest.raises(ValueError) as err:
        losses.get("zzzzzz")
    assert "Did you mean" not in str(err.value)
    assert str(err.value).endswith("Received: identifier='zzzzzz'")


def test_unknown_function_config_lists_closest():
    config = {"class_name": "function", "config": "hing", "module": "x", "registered_name": None}
    with pytest.raises(ValueError, match="Unknown loss function: 'hing'.*Did you mean: 'hinge'"):
        losses.deserialize(config)


def test_closest_names_collapses_aliases_and_sees_custom_objects():
    table = {"glorot_uniform": 1, "GlorotUniform": 1, "glorot_normal": 2}
    assert closest_names("glorotuniform", table) == ["GlorotUniform", "glorot_normal"]
    assert closest_names("my_actvation", {}, {"my_activation": object()}) == ["my_activation"]
    assert closest_names(42, table) == []


def test_registered_objects_are_candidates():
    @register_keras_serializable(package="Suggest", name="shifted_relu")
    def shifted_relu(x):
        return activations.relu(x) + 1

    with pytest.raises(ValueError, match="Did you mean: 'Suggest>shifted_relu'"):
        deserialize_keras_object("Suggest>shifted_rel", module_objects={})
