"""The binary feature: which value is positive, unknown and single values, missing cells, output labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from deepwright.config import BinaryFeatureConfig
from deepwright.features.base import ValueProblem
from deepwright.features.binary import BinaryFeature


def binary(role: str = "input", **options: Any) -> BinaryFeature:
    return BinaryFeature(BinaryFeatureConfig(name="b", type="binary", **options), role)


def fitted(values: list, role: str = "input", **options: Any) -> BinaryFeature:
    feature = binary(role, **options)
    feature.fit(np.array(values, dtype=object))
    return feature


@pytest.mark.parametrize(
    ("values", "positive"),
    [
        ([0, 1, 1, 0], 1),
        ([1, 0, 0, 0], 1),  # the positive value need not be the more frequent one
        ([0.0, 1.0, 0.0], 1.0),
        (["1", "0", "0"], "1"),
        (["yes", "no", "no"], "yes"),
        (["No", "Yes", "No"], "Yes"),
        (["true", "false", "false"], "true"),
        ([True, False, False], True),
        (["TRUE", "False", "False"], "TRUE"),
        (["y", "n", "n"], "y"),
        (["cat", "dog", "cat"], "dog"),  # any other pair: the later one in sorted order
        ([2, 5, 2], 5),
    ],
)
def test_positive_label_rules(values: list, positive: object) -> None:
    feature = fitted(values)
    assert feature.labels_[1] == positive
    encoded = feature.transform(np.array(values, dtype=object))[:, 0]
    assert encoded.dtype == np.float32
    assert encoded.tolist() == [1.0 if value == positive else 0.0 for value in values]


def test_explicit_positive_label_wins() -> None:
    feature = fitted(["yes", "no", "no"], positive_label="no")
    assert feature.labels_ == ["yes", "no"]
    assert feature.transform(np.array(["no", "yes"], dtype=object))[:, 0].tolist() == [1.0, 0.0]


def test_explicit_numeric_positive_label_matches_its_spellings() -> None:
    feature = fitted([0, 1, 0], positive_label=0)
    assert feature.transform(np.array(["0", 1.0, 0.0], dtype=object))[:, 0].tolist() == [1.0, 0.0, 1.0]


def test_positive_label_that_is_not_a_value() -> None:
    with pytest.raises(ValueProblem, match="positive_label 'maybe'"):
        fitted(["yes", "no"], positive_label="maybe")


def test_spellings_of_the_same_value_agree() -> None:
    feature = fitted([0, 1, 1])
    encoded = feature.transform(np.array(["1", 1.0, " 0 ", 0.0, "1.00"], dtype=object))
    assert encoded[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    truth = fitted([True, False])
    assert truth.transform(np.array(["true", "FALSE", True], dtype=object))[:, 0].tolist() == [1.0, 0.0, 1.0]


def test_unknown_value_is_a_problem_at_its_position() -> None:
    feature = fitted(["yes", "no"])
    with pytest.raises(ValueProblem) as caught:
        feature.transform(np.array(["no", None, "maybe"], dtype=object))
    assert caught.value.position == 2  # counted in the original column, the missing cell included
    assert "'maybe'" in caught.value.message


@pytest.mark.parametrize("role", ["input", "output"])
def test_a_single_value_is_an_error(role: str) -> None:
    with pytest.raises(ValueProblem, match="single value") as caught:
        fitted(["a", "a", None], role=role)
    assert caught.value.position is None


def test_more_than_two_values_is_an_error_suggesting_category() -> None:
    with pytest.raises(ValueProblem, match="declare it as category"):
        fitted(["a", "b", "c"])


def test_missing_is_filled_with_the_most_frequent_value() -> None:
    feature = fitted(["no", "yes", "yes", None])
    assert feature.transform(np.array([None, ""], dtype=object))[:, 0].tolist() == [1.0, 1.0]


def test_missing_constant_fill_and_indicator() -> None:
    feature = fitted(["no", "yes", "yes"], missing={"strategy": "constant", "fill_value": "no", "indicator": True})
    out = feature.transform(np.array([None, "yes"], dtype=object))
    assert feature.width() == 2
    assert out.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_missing_with_strategy_error() -> None:
    feature = fitted(["no", "yes"], missing={"strategy": "error"})
    with pytest.raises(ValueProblem) as caught:
        feature.transform(np.array(["no", None], dtype=object))
    assert caught.value.position == 1


def test_output_labels_come_back_as_in_the_data() -> None:
    feature = fitted(["benign", "malignant", "benign"], role="output", threshold=0.7)
    assert feature.transform(np.array(["malignant", "benign"], dtype=object)).tolist() == [1.0, 0.0]
    logits = np.array([-3.0, 0.5, 3.0])  # probabilities 0.05, 0.62, 0.95
    columns = feature.postprocess(logits)
    assert columns["b_prediction"].tolist() == ["benign", "benign", "malignant"]
    assert np.allclose(columns["b_probability"], 1 / (1 + np.exp(-logits)))


def test_output_metrics() -> None:
    feature = fitted([0, 1], role="output")
    target = np.array([0.0, 0.0, 1.0, 1.0], dtype=np.float32)
    metrics = feature.metrics(target, np.array([-2.0, 1.0, 2.0, 3.0]))
    assert metrics["accuracy"] == 0.75
    assert metrics["roc_auc"] == 1.0
    assert metrics["confusion_matrix"] == {"labels": [0, 1], "counts": [[1, 1], [0, 2]]}
    assert set(metrics) == {"accuracy", "f1", "roc_auc", "log_loss", "confusion_matrix"}
