"""Metric functions, registered by name in `METRICS`.

They are written with numpy and checked against scikit-learn's in the tests: importing scikit-learn costs
about 2.5 s on a small CPU, more than a whole training run of a small table.

Every metric takes `(target, prediction, probabilities)`: for classification the target and prediction are
class indices (a target of -1 is a class never seen in training: always counted wrong) and probabilities
are (N, C) (or (N,) for a binary positive class); for regression they are values in the data's own units
and probabilities is None.
"""

from __future__ import annotations

import numpy as np

from deepwright.registry import METRICS

__all__ = ["LOWER_IS_BETTER", "confusion", "lower_is_better"]

# Metric names (and suffixes) for which smaller is better; everything else is better when larger.
LOWER_IS_BETTER = ("loss", "rmse", "mse", "mae", "log_loss", "mape", "smape", "perplexity")


def lower_is_better(metric_name: str) -> bool:
    """Whether a metric name such as 'val_loss' or 'val_price_rmse' improves downwards.

    >>> lower_is_better("val_price_rmse"), lower_is_better("val_accuracy")
    (True, False)
    """
    return any(metric_name == name or metric_name.endswith("_" + name) for name in LOWER_IS_BETTER)


@METRICS.register("accuracy")
def accuracy(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """Share of rows whose predicted class is the target class."""
    return float(np.mean(target == prediction))


@METRICS.register("macro_f1")
def macro_f1(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """F1 averaged over the classes present in target or prediction, each class counting equally."""
    labels = np.union1d(target, prediction)
    return float(np.mean([_f1_of(target == label, prediction == label) for label in labels]))


@METRICS.register("f1")
def f1(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """F1 of the positive class (binary outputs)."""
    return _f1_of(target == 1, prediction == 1)


@METRICS.register("roc_auc")
def roc_auc(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float | None:
    """Area under the ROC curve (one-vs-rest macro average for several classes); None when undefined."""
    known = target >= 0
    target, probabilities = target[known], probabilities[known]
    if len(np.unique(target)) < 2:
        return None
    if probabilities.ndim == 1:
        return _binary_auc(target == 1, probabilities)
    if len(np.unique(target)) != probabilities.shape[1]:
        return None  # one-vs-rest needs every class present in the target
    return float(
        np.mean([_binary_auc(target == label, probabilities[:, label]) for label in range(len(probabilities[0]))])
    )


@METRICS.register("log_loss")
def log_loss(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float | None:
    """Mean negative log-likelihood of the target class (rows with an unseen class are left out)."""
    known = target >= 0
    if not known.any():
        return None
    target, probabilities = target[known], np.asarray(probabilities[known], dtype=np.float64)
    if probabilities.ndim == 1:
        chosen = np.where(target == 1, probabilities, 1 - probabilities)
    else:
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        chosen = probabilities[np.arange(len(target)), target]
    epsilon = np.finfo(np.float64).eps
    return float(-np.mean(np.log(np.clip(chosen, epsilon, 1 - epsilon))))


@METRICS.register("top_k_accuracy")
def top_k_accuracy(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray, k: int = 3) -> float:
    """Share of rows whose target is among the k most probable classes."""
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean((top == target[:, None]).any(axis=1)))


@METRICS.register("rmse")
def rmse(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """Root mean squared error, in the target's units."""
    return float(np.sqrt(np.mean((target - prediction) ** 2)))


@METRICS.register("mae")
def mae(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """Mean absolute error, in the target's units."""
    return float(np.mean(np.abs(target - prediction)))


@METRICS.register("r2")
def r2(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """Coefficient of determination: 1 − residual sum of squares / total sum of squares."""
    residual = np.sum((target - prediction) ** 2)
    total = np.sum((target - np.mean(target)) ** 2)
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / total)


def confusion(target: np.ndarray, prediction: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts[i][j] of rows of true class i predicted as j (rows of classes unseen in training left out)."""
    known = target >= 0
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (target[known], prediction[known]), 1)
    return counts.tolist()


def _f1_of(truth: np.ndarray, predicted: np.ndarray) -> float:
    """F1 = 2·TP / (2·TP + FP + FN) of boolean arrays; 0 when there is nothing to count."""
    true_positives = np.sum(truth & predicted)
    denominator = 2 * true_positives + np.sum(~truth & predicted) + np.sum(truth & ~predicted)
    return float(2 * true_positives / denominator) if denominator else 0.0


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, tied scores sharing their average rank."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # average 1-based rank of each tie group
    num_positive = int(positive.sum())
    num_negative = len(positive) - num_positive
    return float((ranks[positive].sum() - num_positive * (num_positive + 1) / 2) / (num_positive * num_negative))
