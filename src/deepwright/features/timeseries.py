"""The `timeseries` feature type: a column whose cells are numeric series.

A cell is a JSON list (`[1.5, 2, 3]`; `[[1, 10], [2, 20]]` for several channels: steps × channels), a list or
array, or numbers separated by spaces, commas or semicolons (`"1.5 2 3"`). Each channel is normalised with the
training statistics (z-score or min-max).

- Input: series may differ in length; they are padded at the end to the longest one (at most `max_length`;
  longer series lose steps at the `truncation` end, by default the oldest), the padded steps hold NaN, and the
  encoder (a recurrent network, a Transformer encoder or a 1-D convolution stack) masks them, so padding never
  changes a result.
- Output: every series has the same length (and channels) as the training series: the head predicts that
  vector (a forecast horizon) with an MSE (or Huber) loss; metrics MAE, RMSE, MAPE and sMAPE in the data's
  units; predictions are lists.

Bad cells are errors naming the row and the position inside the series: a value that is not a number, an empty
series, ragged channels, or (as output) a series of another length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import TimeseriesFeatureConfig
from deepwright.data.clean import missing_mask
from deepwright.evaluation.forecast import forecast_metrics
from deepwright.features.base import Feature, Role, ValueProblem, check_is_fitted
from deepwright.features.sequence import list_cell
from deepwright.models.encoders import EncoderInput, build_encoder
from deepwright.models.sequence_encoders import ValueSequenceEncoder
from deepwright.registry import FEATURES

__all__ = ["TimeseriesFeature", "parse_series"]

_DELIMITERS = ",;"


def parse_series(value: Any) -> np.ndarray:
    """One cell → a float64 array (steps, channels); ValueError naming the position of a bad value.

    >>> parse_series("1 2 3").tolist(), parse_series("[[1, 10], [2, 20]]").shape
    ([[1.0], [2.0], [3.0]], (2, 2))
    """
    items = list_cell(value, delimiters=_DELIMITERS)
    if not items:
        raise ValueError("series is empty; every series needs at least one value")
    try:
        array = np.asarray(items, dtype=np.float64)  # the common case: well-formed numbers
    except (TypeError, ValueError):
        array = None
    if array is not None and array.ndim in (1, 2) and array.size and np.isfinite(array).all():
        return array[:, None] if array.ndim == 1 else array
    return _checked_series(items)


def _checked_series(items: list[Any]) -> np.ndarray:
    """The slow path of `parse_series`: every value checked, the first bad one named."""
    nested = isinstance(items[0], (list, tuple))
    rows = items if nested else [[item] for item in items]
    width = len(rows[0])
    parsed = []
    for step, row in enumerate(rows, start=1):
        if not isinstance(row, (list, tuple)) or len(row) != width or width == 0:
            size = len(row) if isinstance(row, (list, tuple)) else "no list of"
            raise ValueError(f"ragged series: step {step} has {size} values, step 1 has {width}")
        numbers = []
        for channel, item in enumerate(row, start=1):
            number = _number(item)
            if number is None:
                where = f"step {step}, channel {channel}" if nested else f"position {step}"
                raise ValueError(f"{where} of the series: {item!r} is not a number")
            numbers.append(number)
        parsed.append(numbers)
    return np.array(parsed, dtype=np.float64)


def _number(item: Any) -> float | None:
    """`item` as a finite float, or None."""
    if isinstance(item, bool) or item is None:
        return None
    try:
        number = float(item)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


@FEATURES.register("timeseries")
class TimeseriesFeature(Feature):
    """A column of numeric series (see the module docstring)."""

    passthrough = False

    def __init__(self, options: TimeseriesFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.channels_: int | None = None
        self.length_: int | None = None  # input: the longest kept; output: every series' length
        self.center_: list[float] | None = None  # per channel
        self.scale_: list[float] | None = None

    # -- preprocessing -----------------------------------------------------------------------------------

    def fit(self, values: np.ndarray) -> None:
        series = self._series(values, channels=None)
        self.channels_ = series[0].shape[1]
        lengths = {len(one) for one in series}
        if self.role == "output":
            self._check_lengths(series, len(series[0]))
            self.length_ = len(series[0])
        else:
            self.length_ = min(self.options.max_length or max(lengths), max(lengths))
        stacked = np.concatenate(series)  # (all steps, channels)
        if self.options.normalization == "minmax" and self.role == "input":
            low, high = stacked.min(axis=0), stacked.max(axis=0)
            self.center_, self.scale_ = low.tolist(), _nonzero(high - low).tolist()
        elif self.options.normalization == "none" and self.role == "input":
            self.center_, self.scale_ = [0.0] * self.channels_, [1.0] * self.channels_
        else:  # z-score; outputs are always z-scored, so the loss is well conditioned whatever the units
            self.center_, self.scale_ = stacked.mean(axis=0).tolist(), _nonzero(stacked.std(axis=0)).tolist()

    def transform(self, values: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "center_")
        series = self._series(values, channels=self.channels_)
        center, scale = np.array(self.center_), np.array(self.scale_)
        if self.role == "output":
            self._check_lengths(series, self.length_)
            scaled = (np.stack(series) - center) / scale  # (N, length, channels)
            return scaled.reshape(len(series), -1).astype(np.float32)  # (N, length · channels)
        width = min(self.length_, max(len(one) for one in series))
        array = np.full((len(series), width, self.channels_), np.nan, dtype=np.float32)  # NaN: a padded step
        for row, one in enumerate(series):
            kept = one[-width:] if self.options.truncation == "left" else one[:width]
            array[row, : len(kept)] = (kept - center) / scale
        return array

    def state(self) -> dict[str, Any]:
        check_is_fitted(self, "center_")
        return {"channels": self.channels_, "length": self.length_, "center": self.center_, "scale": self.scale_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.channels_, self.length_ = state["channels"], state["length"]
        self.center_, self.scale_ = state["center"], state["scale"]

    def build_encoder(self) -> nn.Module:
        return ValueSequenceEncoder(build_encoder(self.options.encoder, self.encoder_input()))

    def encoder_input(self) -> EncoderInput:
        check_is_fitted(self, "center_")
        return EncoderInput("steps", self.channels_, self.length_)

    # -- output side -------------------------------------------------------------------------------------

    def build_head(self, input_size: int) -> nn.Module:
        check_is_fitted(self, "center_")
        return nn.Linear(input_size, self.length_ * self.channels_)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.options.loss == "huber":
            return F.huber_loss(logits, target)
        return F.mse_loss(logits, target)

    def metrics(self, target: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
        return forecast_metrics(self._unscale(target), self._unscale(logits))

    def postprocess(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        values = self._unscale(logits)  # (N, length, channels)
        rows = values[:, :, 0] if self.channels_ == 1 else values
        column = np.empty(len(values), dtype=object)
        column[:] = [row.tolist() for row in rows]
        return {f"{self.name}_prediction": column}

    # -- helpers -----------------------------------------------------------------------------------------

    def _series(self, values: np.ndarray, channels: int | None) -> list[np.ndarray]:
        """Every cell as a (steps, channels) array; `channels` (unset in fit: the first row's) must match."""
        missing = missing_mask(values)
        series = []
        for position, (value, absent) in enumerate(zip(values, missing)):
            if absent:
                raise ValueProblem(position, "series is missing; fill it, or set missing: {strategy: drop_row}")
            try:
                one = parse_series(value)
            except ValueError as error:
                raise ValueProblem(position, str(error)) from None
            expected = channels if channels is not None else (series[0].shape[1] if series else one.shape[1])
            if one.shape[1] != expected:
                raise ValueProblem(
                    position, f"ragged series: {one.shape[1]} channels per step, the training series have {expected}"
                )
            series.append(one)
        if not series:
            raise ValueProblem(None, "no series to read")
        return series

    def _check_lengths(self, series: list[np.ndarray], length: int) -> None:
        for position, one in enumerate(series):
            if len(one) != length:
                raise ValueProblem(
                    position,
                    f"target series has {len(one)} steps; every target series must have {length} (the training length)",
                )

    def _unscale(self, values: np.ndarray) -> np.ndarray:
        """Normalised (N, length · channels) → data units (N, length, channels)."""
        values = np.asarray(values, dtype=np.float64).reshape(len(values), self.length_, self.channels_)
        return values * np.array(self.scale_) + np.array(self.center_)


def _nonzero(scale: np.ndarray) -> np.ndarray:
    """A spread of zero (a constant channel) would divide by zero; use 1 instead."""
    return np.where(scale > 1e-12, scale, 1.0)
