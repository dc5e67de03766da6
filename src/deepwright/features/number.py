"""The `number` feature type: a numeric column.

Input: missing cells filled (mean by default), then z-score, min-max or log scaling with training
statistics; the result passes straight into the combiner (plus a 0/1 "was missing" column on request).
Output: a regression head trained on the z-scored target, so the loss is well conditioned whatever the
target's units; predictions and metrics are turned back into those units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import NumberFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted
from deepwright.models.blocks import ScalarHead
from deepwright.registry import FEATURES, METRICS

__all__ = ["NumberFeature", "mean_and_spread", "to_float"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT64_MAX = float(np.finfo(np.float64).max)


def to_float(values: np.ndarray) -> np.ndarray:
    """Raw values → float64, missing cells as NaN; a value that is not a number raises `ValueProblem`.

    >>> to_float(np.array(["1.5", None, 2], dtype=object)).tolist()
    [1.5, nan, 2.0]
    """
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    try:
        return values.astype(np.float64)  # numbers, numeric strings and None (→ NaN): the common case
    except (TypeError, ValueError):
        pass
    missing = missing_mask(values)
    filled = np.where(missing, np.nan, values)
    try:
        return filled.astype(np.float64)
    except (TypeError, ValueError):
        for position, value in enumerate(filled):
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValueProblem(
                    position, f"value {value!r} is not a number; fix it, or declare the column as category"
                ) from None
        raise


@FEATURES.register("number")
class NumberFeature(Feature):
    """A numeric column (see the module docstring)."""

    passthrough = True
    request_type = "number"

    def __init__(self, options: NumberFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.fill_: float | None = None
        self.center_: float | None = None
        self.scale_: float | None = None

    # -- preprocessing -----------------------------------------------------------------------------------

    def fit(self, values: np.ndarray) -> None:
        numbers = self._checked_numbers(values)
        present = numbers[~np.isnan(numbers)]
        if len(present) == 0:
            raise ValueProblem(None, "every training value is missing; fill the column or leave it out")
        self.fill_ = self._fill_value(present)
        if self.role == "output":
            self.center_, self.scale_ = mean_and_spread(present)
            return
        scaled = self._shape(present)
        if self.options.normalization == "minmax":
            low, high = float(scaled.min()), float(scaled.max())
            spread = min((high / 2 - low / 2) * 2, _FLOAT64_MAX)  # -1e308..1e308 is wider than float64 holds
            self.center_, self.scale_ = low, _nonzero(spread, max(abs(low), abs(high)))
        elif self.options.normalization == "none":
            self.center_, self.scale_ = 0.0, 1.0
        else:
            self.center_, self.scale_ = mean_and_spread(scaled)

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "center_")
        numbers = self._checked_numbers(values)
        if self.role == "output":
            return _float32(_standardized(numbers, self.center_, self.scale_), numbers)
        missing = np.isnan(numbers)
        if not self.options.missing.indicator and not missing.any():  # the common case, kept short
            return _float32(_standardized(self._shape(numbers), self.center_, self.scale_), numbers)[:, None]
        if missing.any():
            if self.options.missing.strategy == "error":
                raise ValueProblem(int(np.flatnonzero(missing)[0]), "value is missing and missing.strategy is 'error'")
            numbers = np.where(missing, self.fill_, numbers)
        scaled = _float32(_standardized(self._shape(numbers), self.center_, self.scale_), numbers)
        if self.options.missing.indicator:
            return np.stack([scaled, missing.astype(np.float32)], axis=1)
        return scaled[:, None]

    @classmethod
    def transform_many(cls, features: list[NumberFeature], columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Plain number inputs transformed together as one block (what a served row needs to be fast).

        Returns {name → array} for the features it handled; none when any value is missing, not a number or
        not finite, which the per-column `transform` then reports.
        """
        plain = [feature for feature in features if feature.role == "input" and not feature.options.missing.indicator]
        if not plain or any(feature.center_ is None for feature in plain):
            return {}
        try:
            block = np.array([columns[feature.name] for feature in plain], dtype=np.float64)  # (features, rows)
        except (TypeError, ValueError):
            return {}
        if not np.isfinite(block).all():
            return {}
        logged = [index for index, feature in enumerate(plain) if feature.options.normalization == "log"]
        if logged:
            block[logged] = np.sign(block[logged]) * np.log1p(np.abs(block[logged]))
        centers = np.array([feature.center_ for feature in plain])[:, None]
        scales = np.array([feature.scale_ for feature in plain])[:, None]
        scaled = _standardized(block, centers, scales)
        if (np.abs(scaled) > _FLOAT32_MAX).any():
            return {}  # too large for float32: the per-column transform says which value
        scaled = scaled.astype(np.float32)
        return {feature.name: scaled[index][:, None] for index, feature in enumerate(plain)}

    def state(self) -> dict[str, Any]:
        return {"fill": self.fill_, "center": self.center_, "scale": self.scale_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.fill_, self.center_, self.scale_ = state["fill"], state["center"], state["scale"]

    def width(self) -> int:
        check_is_fitted(self, "center_")
        return 2 if self.options.missing.indicator else 1

    def request_hints(self) -> dict[str, Any]:
        """Input: an example value for a request (the training mean, or the configured fill value)."""
        check_is_fitted(self, "center_")
        return {"example": round(self.fill_, 6)}

    # -- output side -----------------------------------------------------------------------------------

    def build_head(self, input_size: int) -> nn.Module:
        return ScalarHead(input_size)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.options.loss == "huber":
            return F.huber_loss(logits, target)
        return F.mse_loss(logits, target)

    def metrics(self, target: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        truth, prediction = self._unscale(target), self._unscale(logits)
        return {name: METRICS.get(name)(truth, prediction, None) for name in ("rmse", "mae", "r2")}

    def postprocess(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        return {f"{self.name}_prediction": self._unscale(logits)}

    # -- helpers -----------------------------------------------------------------------------------------

    def _checked_numbers(self, values: np.ndarray) -> np.ndarray:
        numbers = to_float(values)
        if np.isfinite(numbers).all():
            return numbers
        infinite = np.isinf(numbers)
        if infinite.any():
            position = int(np.flatnonzero(infinite)[0])
            raise ValueProblem(position, f"value {numbers[position]} is not finite; replace it or leave the cell empty")
        return numbers

    def _fill_value(self, present: np.ndarray) -> float:
        strategy = self.options.missing.strategy
        if strategy == "median":
            return float(np.median(present))
        if strategy == "most_frequent":
            uniques, counts = np.unique(present, return_counts=True)
            return float(uniques[np.argmax(counts)])
        if strategy == "constant":
            return float(self.options.missing.fill_value)
        return mean_and_spread(present)[0]  # mean; also the predict-time fill for drop_row and error

    def _shape(self, numbers: np.ndarray) -> np.ndarray:
        """The log option's symmetric log1p, which keeps the sign of negative values."""
        if self.options.normalization == "log":
            return np.sign(numbers) * np.log1p(np.abs(numbers))
        return numbers

    def _unscale(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.scale_ + self.center_


def _float32(scaled: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """Scaled values as float32; one too large for float32 (it would become infinite) raises `ValueProblem`."""
    too_large = np.abs(scaled) > _FLOAT32_MAX
    if too_large.any():
        position = int(np.flatnonzero(too_large)[0])
        raise ValueProblem(
            position, f"value {numbers[position]:g} is too large: the model computes in float32 (up to about 3.4e38)"
        )
    return scaled.astype(np.float32)


def mean_and_spread(values: np.ndarray) -> tuple[float, float]:
    """The mean and standard deviation of finite `values`, computed without overflow (the values are divided by
    their largest magnitude first, so 1e308 and -1e308 give finite statistics); a spread that is negligible
    beside the values' magnitude (a constant column) is 1.

    >>> mean_and_spread(np.array([1e308, -1e308]))
    (0.0, 1e+308)
    >>> mean_and_spread(np.array([1e-308, 3e-308]))
    (2e-308, 1.0000000000000004e-308)
    """
    magnitude = float(np.abs(values).max())
    if magnitude == 0.0:
        return 0.0, 1.0
    if 1e-150 < magnitude < 1e150:  # squares neither overflow nor underflow: numpy's own sums, to the last bit
        return float(values.mean()), _nonzero(float(values.std()), magnitude)
    unit = values / magnitude
    return float(unit.mean()) * magnitude, _nonzero(float(unit.std()) * magnitude, magnitude)


def _nonzero(scale: float, magnitude: float) -> float:
    """A spread of zero, or one lost in rounding beside the values' `magnitude` (a constant column), would
    divide by zero or magnify noise; use 1 instead."""
    return scale if scale > 1e-12 * magnitude and scale > 0.0 and np.isfinite(scale) else 1.0


def _standardized(values: np.ndarray, center: Any, scale: Any) -> np.ndarray:
    """(values - center) / scale, without the overflow of the difference when both are near the float64 limit."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = (values - center) / scale
        if np.isinf(result).any():
            result = np.where(np.isinf(result), values / scale - center / scale, result)
    return result
