"""FeatureSet: every column's preprocessing together, the model it implies, and errors that point at the cell."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deepwright.config import PASSTHROUGH_KEY, load_config
from deepwright.errors import DataError
from deepwright.features.base import value_key, value_keys
from deepwright.features.featureset import FeatureSet

CONFIG = {
    "input_features": [
        {"name": "a.b", "type": "number"},
        {"name": "flag", "type": "binary", "missing": {"indicator": True}},
        {"name": "city.name", "type": "category"},
        {"name": "colour", "type": "category", "encoder": {"type": "onehot"}},
    ],
    "output_features": [
        {"name": "y.class", "type": "category"},
        {"name": "z", "type": "number", "weight": 0.5},
    ],
    "combiner": {"dims": [8]},
}


def columns(rows: int = 6) -> dict[str, np.ndarray]:
    return {
        "a.b": np.linspace(0, 1, rows),
        "flag": np.array((["yes", "no"] * rows)[:rows], dtype=object),
        "city.name": np.array((["Lyon", "Nice", "Paris"] * rows)[:rows], dtype=object),
        "colour": np.array((["red", "blue"] * rows)[:rows], dtype=object),
        "y.class": np.array(([1, 2, 3] * rows)[:rows], dtype=object),
        "z": np.arange(rows, dtype=np.float64) * 100,
    }


@pytest.fixture
def features() -> FeatureSet:
    features = FeatureSet(load_config(CONFIG))
    features.fit(columns(), row_numbers=np.arange(1, 7), source="t.csv")
    return features


def test_names(features: FeatureSet) -> None:
    assert features.input_names == ["a.b", "flag", "city.name", "colour"]
    assert features.output_names == ["y.class", "z"]


def test_passthrough_inputs_are_stacked(features: FeatureSet) -> None:
    arrays = features.transform_inputs(columns(), row_numbers=np.arange(1, 7), source="t.csv")
    assert set(arrays) == {PASSTHROUGH_KEY, "city.name", "colour"}
    assert arrays[PASSTHROUGH_KEY].shape == (6, 3)  # a.b, flag and flag's missing indicator
    assert arrays[PASSTHROUGH_KEY].dtype == np.float32
    assert arrays["city.name"].dtype == np.int64
    outputs = features.transform_outputs(columns(), row_numbers=np.arange(1, 7), source="t.csv")
    assert outputs["y.class"].tolist() == [0, 1, 2, 0, 1, 2]
    assert outputs["z"].dtype == np.float32


def test_state_round_trips_through_json(features: FeatureSet) -> None:
    state = json.loads(json.dumps(features.state(), allow_nan=False))
    assert set(state) == {"inputs", "outputs"}
    fresh = FeatureSet(load_config(CONFIG))
    fresh.load_state(state)
    expected = features.transform_inputs(columns(), row_numbers=np.arange(1, 7), source="t")
    restored = fresh.transform_inputs(columns(), row_numbers=np.arange(1, 7), source="t")
    for name in expected:
        assert np.array_equal(expected[name], restored[name])


def test_model_with_dotted_column_names(features: FeatureSet) -> None:
    torch.manual_seed(0)
    model = features.build_model()
    assert model.input_names == [PASSTHROUGH_KEY, "city.name", "colour"]
    weight_names = list(model.state_dict())
    assert all("city" not in name and "a.b" not in name for name in weight_names)  # positions, not columns
    arrays = features.transform_inputs(columns(), row_numbers=np.arange(1, 7), source="t")
    tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
    logits = model(tensors)
    assert set(logits) == {"y.class", "z"}
    assert logits["y.class"].shape == (6, 3)
    assert logits["z"].shape == (6,)


def test_loss_is_the_weighted_sum_of_output_losses(features: FeatureSet) -> None:
    outputs = features.transform_outputs(columns(), row_numbers=np.arange(1, 7), source="t")
    targets = {name: torch.from_numpy(array) for name, array in outputs.items()}
    logits = {"y.class": torch.zeros(6, 3), "z": torch.ones(6)}
    expected = features.outputs[0].loss(logits["y.class"], targets["y.class"]) + 0.5 * features.outputs[1].loss(
        logits["z"], targets["z"]
    )
    assert float(features.loss(logits, targets)) == pytest.approx(float(expected))
    metrics = features.metrics(logits, targets)
    assert set(metrics) == {"loss", "y.class", "z"}
    assert "accuracy" in metrics["y.class"]
    assert "rmse" in metrics["z"]


def test_bad_value_names_source_row_and_column(features: FeatureSet) -> None:
    bad = columns()
    bad["a.b"] = np.array([0.1, 0.2, 0.3, "n/a", 0.5, 0.6], dtype=object)
    row_numbers = np.array([2, 3, 5, 8, 13, 21])  # data rows of the original file
    with pytest.raises(DataError) as caught:
        features.transform_inputs(bad, row_numbers=row_numbers, source="people.csv")
    error = caught.value
    assert (error.source, error.row, error.column) == ("people.csv", 8, "a.b")
    assert str(error).startswith("people.csv, row 8, column 'a.b': value 'n/a' is not a number")


def test_column_wide_problem_names_source_and_column_without_row() -> None:
    features = FeatureSet(load_config(CONFIG))
    bad = columns()
    bad["y.class"] = np.array(["same"] * 6, dtype=object)
    with pytest.raises(DataError) as caught:
        features.fit(bad, row_numbers=np.arange(1, 7), source="people.csv")
    assert (caught.value.source, caught.value.row, caught.value.column) == ("people.csv", None, "y.class")
    assert "single class" in str(caught.value)


def test_value_keys_agree_with_value_key() -> None:
    values = np.array([3, 3.0, " 3", "3.0", "007", True, "yes", 2.5, "TRUE"] * 10, dtype=object)
    assert value_keys(values).tolist() == [value_key(value) for value in values]
    assert value_keys(values[:9]).tolist() == ["3", "3", "3", "3", "007", "true", "yes", "2.5", "true"]
    assert value_keys(np.array([1, 2])).tolist() == ["1", "2"]
    assert value_keys(np.array([True, False])).tolist() == ["true", "false"]
