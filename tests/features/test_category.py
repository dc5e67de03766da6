"""The category feature: vocabulary, the unknown bucket, missing cells, encoders, and the classification output."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from deepwright.config import CategoryFeatureConfig
from deepwright.features.base import ValueProblem
from deepwright.features.category import MISSING_KEY, CategoryFeature, softmax
from deepwright.models.blocks import default_embedding_size

# b ×3, a ×2, c ×1, missing ×2
TRAIN = ["a", "b", "b", None, "a", "b", "c", ""]


def category(role: str = "input", **options: Any) -> CategoryFeature:
    return CategoryFeature(CategoryFeatureConfig(name="c", type="category", **options), role)


def fitted(values: list = TRAIN, role: str = "input", **options: Any) -> CategoryFeature:
    feature = category(role, **options)
    feature.fit(np.array(values, dtype=object))
    return feature


def codes(feature: CategoryFeature, values: list) -> list[int]:
    return feature.transform(np.array(values, dtype=object)).tolist()


def test_vocabulary_is_most_frequent_first_with_missing_as_its_own_value() -> None:
    feature = fitted()
    assert feature.vocabulary_ == ["b", MISSING_KEY, "a", "c"]  # ties (missing, a: 2 each) sorted
    assert feature.counts_ == [3, 2, 2, 1]
    assert codes(feature, ["b", None, "a", "c", ""]) == [1, 2, 3, 4, 2]


def test_unknown_value_goes_to_index_zero() -> None:
    feature = fitted()
    out = feature.transform(np.array(["purple", "b", "PURPLE"], dtype=object))
    assert out.dtype == np.int64
    assert out.tolist() == [0, 1, 0]


def test_spellings_of_a_value_agree() -> None:
    feature = fitted([1, 2, 2, 3])
    assert codes(feature, ["2", 2.0, " 2", "2.0", 7]) == [1, 1, 1, 1, 0]


def test_min_count_sends_rare_values_to_unknown() -> None:
    feature = fitted(min_count=2)
    assert feature.vocabulary_ == ["b", MISSING_KEY, "a"]
    assert codes(feature, ["c", "a"]) == [0, 3]


def test_max_values_keeps_the_most_frequent() -> None:
    feature = fitted(max_values=2)
    assert feature.vocabulary_ == ["b", MISSING_KEY]
    assert codes(feature, ["a", "b", None]) == [0, 1, 2]


def test_missing_never_seen_in_training_goes_to_unknown() -> None:
    feature = fitted(["a", "b", "b"])
    assert MISSING_KEY not in feature.vocabulary_
    assert codes(feature, [None]) == [0]


def test_missing_most_frequent_and_constant() -> None:
    frequent = fitted(missing={"strategy": "most_frequent"})
    assert MISSING_KEY not in frequent.vocabulary_
    assert codes(frequent, [None]) == codes(frequent, ["b"])
    constant = fitted(missing={"strategy": "constant", "fill_value": "a"})
    assert codes(constant, [None]) == codes(constant, ["a"])


def test_missing_with_strategy_error() -> None:
    feature = fitted(missing={"strategy": "error"})
    with pytest.raises(ValueProblem) as caught:
        feature.transform(np.array(["a", "b", None], dtype=object))
    assert caught.value.position == 2


def test_every_value_missing_is_an_error() -> None:
    with pytest.raises(ValueProblem, match="every training value is missing"):
        fitted([None, ""])


def test_embedding_encoder() -> None:
    feature = fitted()
    assert feature.width() == default_embedding_size(5)
    encoder = feature.build_encoder()
    assert isinstance(encoder[0], nn.Embedding)
    assert encoder[0].num_embeddings == 5  # four values and the unknown bucket
    assert encoder(torch.tensor([0, 4])).shape == (2, feature.width())
    sized = fitted(encoder={"type": "embedding", "dim": 7, "dropout": 0.5})
    assert sized.width() == 7
    assert isinstance(sized.build_encoder()[1], nn.Dropout)


def test_onehot_encoder() -> None:
    feature = fitted(encoder={"type": "onehot"})
    assert feature.width() == 5
    encoded = feature.build_encoder()(torch.tensor([0, 2]))
    assert encoded.tolist() == [[1, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    assert list(feature.build_encoder().parameters()) == []


def test_default_embedding_size() -> None:
    assert default_embedding_size(2) == 2
    assert default_embedding_size(5) == 4
    assert default_embedding_size(10_000) == 50


@pytest.mark.parametrize(
    ("values", "classes"),
    [
        ([10, 2, 1, 2], [1, 2, 10]),
        (["10", "2", "1"], ["1", "2", "10"]),
        ([2.5, 0.5, 10.0], [0.5, 2.5, 10.0]),
        (["pear", "apple", "fig", "apple"], ["apple", "fig", "pear"]),
    ],
)
def test_output_classes_are_in_natural_order(values: list, classes: list) -> None:
    feature = fitted(values, role="output")
    assert feature.labels_ == classes
    assert codes(feature, classes) == list(range(len(classes)))


def test_output_unseen_class_is_minus_one_and_ignored_by_the_loss() -> None:
    feature = fitted(["x", "y", "z"], role="output")
    target = feature.transform(np.array(["y", "w"], dtype=object))
    assert target.tolist() == [1, -1]
    logits = torch.tensor([[0.0, 5.0, 0.0], [9.0, -9.0, 0.0]])
    loss = feature.loss(logits, torch.from_numpy(target))
    only_known = feature.loss(logits[:1], torch.from_numpy(target[:1]))
    assert float(loss) == pytest.approx(float(only_known))
    assert feature.metrics(target, logits.numpy())["accuracy"] == 0.5  # the unseen class counts as wrong


@pytest.mark.parametrize("values", [["a", "a"], [3, 3.0, "3"]])
def test_output_with_a_single_class_is_an_error(values: list) -> None:
    with pytest.raises(ValueProblem, match="single class") as caught:
        fitted(values, role="output")
    assert caught.value.position is None


def test_output_postprocess_labels_and_probabilities() -> None:
    feature = fitted([3, 1, 2, 1], role="output")
    logits = np.array([[0.0, 2.0, 0.0], [5.0, 0.0, 0.0]])
    columns = feature.postprocess(logits)
    assert columns["c_prediction"].tolist() == [2, 1]
    probabilities = softmax(logits)
    assert np.allclose(columns["c_probability"], probabilities.max(axis=1))
    per_class = np.stack([columns[f"c_probability_{label}"] for label in (1, 2, 3)], axis=1)
    assert np.allclose(per_class, probabilities)
    assert np.allclose(per_class.sum(axis=1), 1.0)


def test_output_metrics_include_top_k_when_there_are_more_classes_than_k() -> None:
    feature = fitted(list("abcde"), role="output", top_k=2)
    target = np.array([0, 1, 2, 3, 4])
    logits = np.eye(5)[[0, 1, 2, 4, 3]] * 5 + np.eye(5)[[1, 2, 3, 3, 4]] * 3
    metrics = feature.metrics(target, logits)
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["top_2_accuracy"] == pytest.approx(1.0)
    assert len(metrics["confusion_matrix"]["counts"]) == 5
    assert "top_3_accuracy" not in fitted(list("abc"), role="output").metrics(target[:3], logits[:3, :3])


def test_balanced_class_weights_and_label_smoothing_change_the_loss() -> None:
    values = ["a"] * 6 + ["b"] * 2
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 1])
    plain = fitted(values, role="output").loss(logits, target)
    balanced = fitted(values, role="output", class_weights="balanced").loss(logits, target)
    smoothed = fitted(values, role="output", label_smoothing=0.2).loss(logits, target)
    weights = torch.tensor([8 / (2 * 6), 8 / (2 * 2)])
    expected = nn.functional.cross_entropy(logits, target, weight=weights)
    assert float(balanced) == pytest.approx(float(expected))
    assert float(balanced) != pytest.approx(float(plain))
    assert float(smoothed) != pytest.approx(float(plain))


def test_softmax_is_stable() -> None:
    probabilities = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert np.allclose(probabilities, [[1.0, 0.0], [0.5, 0.5]])
