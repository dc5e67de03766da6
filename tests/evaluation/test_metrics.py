"""The numpy metrics equal scikit-learn's on random data, tied scores included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from deepwright.evaluation.metrics import confusion, lower_is_better
from deepwright.registry import METRICS

SEEDS = [0, 1, 2, 3, 4]
NUM_CLASSES = 4


def binary_data(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, 200)
    scores = np.clip(0.3 * target + rng.random(200) * 0.7, 0, 1)
    if ties:
        scores = np.round(scores, 1)  # about ten distinct scores: many ties, across both classes
    return target, (scores >= 0.5).astype(np.int64), scores


def multiclass_data(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, NUM_CLASSES, 300)
    logits = rng.normal(size=(300, NUM_CLASSES)) + np.eye(NUM_CLASSES)[target]
    if ties:
        logits = np.round(logits)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return target, probabilities.argmax(axis=1), probabilities


def metric(name: str, *args: object) -> float:
    return METRICS.get(name)(*args)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics_equal_scikit_learn(seed: int, ties: bool) -> None:
    target, prediction, scores = binary_data(seed, ties)
    assert metric("accuracy", target, prediction, scores) == pytest.approx(sk.accuracy_score(target, prediction))
    assert metric("f1", target, prediction, scores) == pytest.approx(sk.f1_score(target, prediction))
    assert metric("roc_auc", target, prediction, scores) == pytest.approx(sk.roc_auc_score(target, scores))
    assert metric("log_loss", target, prediction, scores) == pytest.approx(sk.log_loss(target, scores))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_equal_scikit_learn(seed: int, ties: bool) -> None:
    target, prediction, probabilities = multiclass_data(seed, ties)
    labels = list(range(NUM_CLASSES))
    assert metric("accuracy", target, prediction, probabilities) == pytest.approx(sk.accuracy_score(target, prediction))
    assert metric("macro_f1", target, prediction, probabilities) == pytest.approx(
        sk.f1_score(target, prediction, average="macro")
    )
    assert metric("roc_auc", target, prediction, probabilities) == pytest.approx(
        sk.roc_auc_score(target, probabilities, multi_class="ovr", average="macro")
    )
    assert metric("log_loss", target, prediction, probabilities) == pytest.approx(
        sk.log_loss(target, probabilities, labels=labels)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_accuracy_equals_scikit_learn_without_ties(seed: int) -> None:
    target, prediction, probabilities = multiclass_data(seed, ties=False)
    for k in (1, 2, 3):
        ours = METRICS.get("top_k_accuracy")(target, prediction, probabilities, k=k)
        assert ours == pytest.approx(sk.top_k_accuracy_score(target, probabilities, k=k, labels=range(NUM_CLASSES)))


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = rng.normal(5000, 1000, 150)
    prediction = target + rng.normal(0, 300, 150)
    assert metric("r2", target, prediction, None) == pytest.approx(sk.r2_score(target, prediction))
    assert metric("rmse", target, prediction, None) == pytest.approx(np.sqrt(sk.mean_squared_error(target, prediction)))
    assert metric("mae", target, prediction, None) == pytest.approx(sk.mean_absolute_error(target, prediction))


def test_macro_f1_counts_classes_that_are_only_predicted() -> None:
    target, prediction = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    assert metric("macro_f1", target, prediction, None) == pytest.approx(
        sk.f1_score(target, prediction, average="macro")
    )


def test_f1_without_positives_is_zero() -> None:
    assert metric("f1", np.array([0, 0]), np.array([0, 0]), None) == 0.0


def test_roc_auc_undefined_cases_are_none() -> None:
    assert metric("roc_auc", np.array([1, 1, 1]), None, np.array([0.1, 0.5, 0.9])) is None
    probabilities = np.full((4, 3), 1 / 3)
    assert metric("roc_auc", np.array([0, 1, 0, 1]), None, probabilities) is None  # class 2 never occurs


def test_unseen_classes_count_as_wrong_and_are_left_out_of_log_loss() -> None:
    target = np.array([0, 1, -1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    prediction = probabilities.argmax(axis=1)
    assert metric("accuracy", target, prediction, probabilities) == pytest.approx(2 / 3)
    assert metric("log_loss", target, prediction, probabilities) == pytest.approx(-np.mean(np.log([0.9, 0.8])))
    assert metric("roc_auc", target, prediction, probabilities) == pytest.approx(1.0)
    assert confusion(target, prediction, 2) == [[1, 0], [0, 1]]


def test_log_loss_of_certain_mistakes_is_finite() -> None:
    value = metric("log_loss", np.array([1, 0]), None, np.array([0.0, 1.0]))
    assert np.isfinite(value)
    assert value > 30


def test_r2_of_a_constant_target() -> None:
    assert metric("r2", np.array([2.0, 2.0]), np.array([2.0, 2.0]), None) == 1.0
    assert metric("r2", np.array([2.0, 2.0]), np.array([1.0, 3.0]), None) == 0.0


def test_confusion_matrix_equals_scikit_learn() -> None:
    target, prediction, _ = multiclass_data(0, ties=False)
    expected = sk.confusion_matrix(target, prediction, labels=range(NUM_CLASSES)).tolist()
    assert confusion(target, prediction, NUM_CLASSES) == expected


@pytest.mark.parametrize(
    ("name", "lower"),
    [
        ("val_loss", True),
        ("val_price_rmse", True),
        ("val_log_loss", True),
        ("val_mae", True),
        ("val_accuracy", False),
        ("val_roc_auc", False),
        ("val_label_f1", False),
        ("val_r2", False),
    ],
)
def test_lower_is_better(name: str, lower: bool) -> None:
    assert lower_is_better(name) is lower
