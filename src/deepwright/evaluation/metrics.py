"""Metric functions, registered by name in `METRICS`; scikit-learn does the arithmetic.

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
    from sklearn.metrics import f1_score

    return float(f1_score(target, prediction, average="macro", zero_division=0))


@METRICS.register("f1")
def f1(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float:
    """F1 of the positive class (binary outputs)."""
    from sklearn.metrics import f1_score

    return float(f1_score(target, prediction, zero_division=0))


@METRICS.register("roc_auc")
def roc_auc(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float | None:
    """Area under the ROC curve (one-vs-rest macro average for several classes); None when undefined."""
    from sklearn.metrics import roc_auc_score

    known = target >= 0
    target, probabilities = target[known], probabilities[known]
    if len(np.unique(target)) < 2:
        return None
    if probabilities.ndim == 1:
        return float(roc_auc_score(target, probabilities))
    if len(np.unique(target)) != probabilities.shape[1]:
        return None  # one-vs-rest needs every class present in the target
    return float(roc_auc_score(target, probabilities, multi_class="ovr", average="macro"))


@METRICS.register("log_loss")
def log_loss(target: np.ndarray, prediction: np.ndarray, probabilities: np.ndarray | None) -> float | None:
    """Mean negative log-likelihood of the target class (rows with an unseen class are left out)."""
    from sklearn.metrics import log_loss as sklearn_log_loss

    known = target >= 0
    if not known.any():
        return None
    probabilities = probabilities[known]
    labels = [0, 1] if probabilities.ndim == 1 else list(range(probabilities.shape[1]))
    return float(sklearn_log_loss(target[known], probabilities, labels=labels))


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
    """Coefficient of determination: 1 − residual variance / target variance."""
    from sklearn.metrics import r2_score

    return float(r2_score(target, prediction))


def confusion(target: np.ndarray, prediction: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts[i][j] of rows of true class i predicted as j (rows of classes unseen in training left out)."""
    known = target >= 0
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (target[known], prediction[known]), 1)
    return counts.tolist()
