"""The `binary` feature type: a column with exactly two values (0/1, true/false, yes/no, any two labels).

Input: 0/1, passed straight into the combiner. Output: one logit, binary cross-entropy, a probability of
the positive label and a label chosen at the configured threshold; labels come back as they were in the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import BinaryFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.evaluation.metrics import confusion
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted, plain, value_key, value_keys
from deepwright.models.blocks import ScalarHead
from deepwright.registry import FEATURES, METRICS

__all__ = ["BinaryFeature"]

# Pairs of keys whose positive member is known; any other pair takes the later one in sorted order.
_KNOWN_POSITIVES = {("0", "1"): "1", ("false", "true"): "true", ("no", "yes"): "yes", ("n", "y"): "y"}


@FEATURES.register("binary")
class BinaryFeature(Feature):
    """A two-valued column (see the module docstring)."""

    passthrough = True
    request_type = "label"

    def __init__(self, options: BinaryFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.keys_: list[str] | None = None  # [negative, positive], as value_key strings
        self.labels_: list[Any] | None = None  # the same two values as they appeared in the data
        self.fill_: float | None = None

    # -- preprocessing -----------------------------------------------------------------------------------

    def fit(self, values: np.ndarray) -> None:
        missing = missing_mask(values)
        present = values[~missing]
        keys = value_keys(present)
        uniques, first, counts = np.unique(keys, return_index=True, return_counts=True)
        if len(uniques) > 2:
            shown = ", ".join(repr(key) for key in uniques[:5])
            raise ValueProblem(None, f"has {len(uniques)} distinct values ({shown}…); declare it as category")
        if len(uniques) < 2:
            only = repr(uniques[0]) if len(uniques) else "none"
            what = "a target needs two classes" if self.role == "output" else "leave the column out"
            raise ValueProblem(None, f"has a single value ({only}) in the training rows; {what}")
        positive = self._positive_key(list(uniques))
        order = [0, 1] if uniques[1] == positive else [1, 0]
        self.keys_ = [str(uniques[index]) for index in order]
        self.labels_ = [plain(present[first[index]]) for index in order]
        strategy = self.options.missing.strategy
        if strategy == "constant":
            self.fill_ = float(self._encode(np.array([self.options.missing.fill_value], dtype=object))[0])
        else:
            self.fill_ = float(order.index(int(np.argmax(counts))))

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "keys_")
        missing = missing_mask(values)
        if self.role == "output":
            return self._encode(values)
        if missing.any() and self.options.missing.strategy == "error":
            raise ValueProblem(int(np.flatnonzero(missing)[0]), "value is missing and missing.strategy is 'error'")
        encoded = np.full(len(values), self.fill_, dtype=np.float32)
        if (~missing).any():
            encoded[~missing] = self._encode(values[~missing], positions=np.flatnonzero(~missing))
        if self.options.missing.indicator:
            return np.stack([encoded, missing.astype(np.float32)], axis=1)
        return encoded[:, None]

    def state(self) -> dict[str, Any]:
        return {"keys": self.keys_, "labels": self.labels_, "fill": self.fill_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.keys_, self.labels_, self.fill_ = state["keys"], state["labels"], state["fill"]

    def width(self) -> int:
        check_is_fitted(self, "keys_")
        return 2 if self.options.missing.indicator else 1

    def request_hints(self) -> dict[str, Any]:
        """Input: the two values a request may give, as they appeared in the training data."""
        check_is_fitted(self, "keys_")
        return {"example": self.labels_[1], "choices": list(self.labels_)}

    # -- output side -----------------------------------------------------------------------------------

    def build_head(self, input_size: int) -> nn.Module:
        return ScalarHead(input_size)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)

    def metrics(self, target: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        probability = _sigmoid(logits)
        truth = target.astype(np.int64)
        prediction = (probability >= self.options.threshold).astype(np.int64)
        scores = {
            name: METRICS.get(name)(truth, prediction, probability)
            for name in ("accuracy", "f1", "roc_auc", "log_loss")
        }
        scores["confusion_matrix"] = {"labels": self.labels_, "counts": confusion(truth, prediction, 2)}
        return scores

    def postprocess(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        probability = _sigmoid(logits)
        labels = np.array(self.labels_, dtype=object)
        return {
            f"{self.name}_prediction": labels[(probability >= self.options.threshold).astype(np.int64)],
            f"{self.name}_probability": probability,
        }

    # -- helpers -----------------------------------------------------------------------------------------

    def _positive_key(self, keys: list[str]) -> str:
        if self.options.positive_label is not None:
            wanted = value_key(self.options.positive_label)
            if wanted not in keys:
                raise ValueProblem(None, f"positive_label {wanted!r} is not one of its values {keys}")
            return wanted
        lowered = tuple(sorted(key.lower() for key in keys))
        if lowered in _KNOWN_POSITIVES:
            return next(key for key in keys if key.lower() == _KNOWN_POSITIVES[lowered])
        return sorted(keys)[1]

    def _encode(self, values: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        keys = value_keys(values)
        if self.keys_ == ["0", "1"]:  # a 0/1 column also takes true/false (JSON booleans), and the reverse
            keys = np.where(keys == "true", "1", np.where(keys == "false", "0", keys))
        elif self.keys_ == ["false", "true"]:
            keys = np.where(keys == "1", "true", np.where(keys == "0", "false", keys))
        positive = keys == self.keys_[1]
        unknown = ~positive & (keys != self.keys_[0])
        if unknown.any():
            index = int(np.flatnonzero(unknown)[0])
            position = int(positions[index]) if positions is not None else index
            raise ValueProblem(
                position,
                f"value {values[index]!r} is neither of the two values seen in training {self.labels_}",
            )
        return positive.astype(np.float32)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
