"""The `category` feature type: a column of labels.

Input: a vocabulary learned on the training split (most frequent first); index 0 is the "unknown" bucket
for values never seen in training (or cut by `min_count` / `max_values`); an embedding (or one-hot) encoder.
Missing cells are a value of their own unless `missing.strategy` says otherwise.
Output: softmax logits over the training classes, cross-entropy, label and per-class probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import CategoryFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.evaluation.metrics import confusion
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted, plain, value_key, value_keys
from deepwright.models.encoders import EncoderInput
from deepwright.registry import FEATURES, METRICS

__all__ = ["MISSING_KEY", "CategoryFeature", "softmax"]

MISSING_KEY = "<missing>"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (N, C) array, computed stably in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=1, keepdims=True)
    exponent = np.exp(shifted)
    return exponent / exponent.sum(axis=1, keepdims=True)


@FEATURES.register("category")
class CategoryFeature(Feature):
    """A column of labels (see the module docstring)."""

    passthrough = False
    request_type = "label"

    def __init__(self, options: CategoryFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.vocabulary_: list[str] | None = None  # value keys; inputs: index i + 1, outputs: class i
        self.labels_: list[Any] | None = None  # outputs: each class as it appeared in the data
        self.counts_: list[int] | None = None
        self.fill_: str | None = None
        self._class_weights: torch.Tensor | None = None
        self._codes: dict[str, int] | None = None  # value key → code, built from the vocabulary on first use

    # -- preprocessing -----------------------------------------------------------------------------------

    def fit(self, values: np.ndarray) -> None:
        self._codes = None
        missing = missing_mask(values)
        present = values[~missing]
        keys = value_keys(present)
        uniques, first, counts = np.unique(keys, return_index=True, return_counts=True)
        if self.role == "output":
            if len(uniques) < 2:
                only = repr(uniques[0]) if len(uniques) else "none"
                raise ValueProblem(None, f"has a single class ({only}) in the training rows; a target needs two")
            order = _natural_order(uniques)
            self.vocabulary_ = [str(uniques[index]) for index in order]
            self.labels_ = [plain(present[first[index]]) for index in order]
            self.counts_ = [int(counts[index]) for index in order]
            return
        if len(uniques) == 0:
            raise ValueProblem(None, "every training value is missing; fill the column or leave it out")
        self.fill_ = self._fill_key(uniques, counts)
        all_keys = np.where(missing, self.fill_, None)
        all_keys[~missing] = keys
        uniques, counts = np.unique(all_keys.astype(str), return_counts=True)
        order = sorted(range(len(uniques)), key=lambda index: (-counts[index], uniques[index]))
        kept = [index for index in order if counts[index] >= self.options.min_count][: self.options.max_values]
        self.vocabulary_ = [str(uniques[index]) for index in kept]
        self.counts_ = [int(counts[index]) for index in kept]

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "vocabulary_")
        missing = missing_mask(values)
        keys = np.empty(len(values), dtype=object)
        if missing.any():
            if self.role == "input" and self.options.missing.strategy == "error":
                raise ValueProblem(int(np.flatnonzero(missing)[0]), "value is missing and missing.strategy is 'error'")
            keys[missing] = self.fill_
        keys[~missing] = value_keys(values[~missing])
        if self._codes is None:
            offset = 1 if self.role == "input" else 0  # input: unknown → 0; output: unseen class → -1
            self._codes = {key: index + offset for index, key in enumerate(self.vocabulary_)}
        unknown = 0 if self.role == "input" else -1
        return np.fromiter((self._codes.get(key, unknown) for key in keys), dtype=np.int64, count=len(keys))

    def state(self) -> dict[str, Any]:
        return {
            "vocabulary": self.vocabulary_,
            "labels": self.labels_,
            "counts": self.counts_,
            "fill": self.fill_,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.vocabulary_, self.labels_ = state["vocabulary"], state["labels"]
        self._codes = None
        self.counts_, self.fill_ = state["counts"], state["fill"]

    def request_hints(self) -> dict[str, Any]:
        """Input: the values seen in training, most frequent first (any other value counts as unknown)."""
        check_is_fitted(self, "vocabulary_")
        known = [key for key in self.vocabulary_ if key != MISSING_KEY]
        return {"example": known[0] if known else None, "choices": known, "open_choices": True}

    # -- output side -----------------------------------------------------------------------------------

    def build_head(self, input_size: int) -> nn.Module:
        return nn.Linear(input_size, len(self.vocabulary_))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None
        if self.options.class_weights == "balanced":
            if self._class_weights is None or self._class_weights.device != logits.device:
                counts = torch.tensor(self.counts_, dtype=torch.float32)
                self._class_weights = (counts.sum() / (len(counts) * counts)).to(logits.device)
            weight = self._class_weights
        return F.cross_entropy(
            logits, target, weight=weight, label_smoothing=self.options.label_smoothing, ignore_index=-1
        )

    def metrics(self, target: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        probabilities = softmax(logits)
        prediction = probabilities.argmax(axis=1)
        names = ["accuracy", "macro_f1", "roc_auc", "log_loss"]
        scores = {name: METRICS.get(name)(target, prediction, probabilities) for name in names}
        k = self.options.top_k
        if len(self.vocabulary_) > k:
            scores[f"top_{k}_accuracy"] = METRICS.get("top_k_accuracy")(target, prediction, probabilities, k=k)
        scores["confusion_matrix"] = {
            "labels": self.labels_,
            "counts": confusion(target, prediction, len(self.vocabulary_)),
        }
        return scores

    def postprocess(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        probabilities = softmax(logits)
        best = probabilities.argmax(axis=1)
        columns = {
            f"{self.name}_prediction": np.array(self.labels_, dtype=object)[best],
            f"{self.name}_probability": probabilities[np.arange(len(best)), best],
        }
        for index, label in enumerate(self.labels_):
            columns[f"{self.name}_probability_{label}"] = probabilities[:, index]
        return columns

    # -- helpers -----------------------------------------------------------------------------------------

    def encoder_input(self) -> EncoderInput:
        """Input: codes of the vocabulary's values, and 0 for unknown ones."""
        check_is_fitted(self, "vocabulary_")
        return EncoderInput("codes", len(self.vocabulary_) + 1)

    def _fill_key(self, uniques: np.ndarray, counts: np.ndarray) -> str:
        strategy = self.options.missing.strategy
        if strategy == "constant":
            return value_key(self.options.missing.fill_value)
        if strategy in ("most_frequent", "drop_row", "error"):
            return str(uniques[int(np.argmax(counts))])
        return MISSING_KEY


def _natural_order(keys: np.ndarray) -> list[int]:
    """Indices that sort keys numerically when they are all numbers, else as strings."""
    try:
        numbers = [float(key) for key in keys]
    except ValueError:
        return sorted(range(len(keys)), key=lambda index: keys[index])
    return sorted(range(len(keys)), key=lambda index: numbers[index])
