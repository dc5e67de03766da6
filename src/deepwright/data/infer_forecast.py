"""Inferring a forecasting config from a series table (`deepwright init --task forecast`).

Everything is chosen from the data, never per dataset: the time column (a column of dates, or date-part columns
such as year, month, day, hour), the step between rows, gaps (filled with empty rows when there are some), the
seasonal period (the calendar season of the step that the data shows, see `seasonal_period`), the lookback (two
seasons, within bounds), and the training schedule (from the number of training windows). The other columns
become inputs read at each step when they are numbers, binaries or categories.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepwright.config import STEP_TYPES
from deepwright.data.clean import missing_mask
from deepwright.data.infer import Inference, find_split_column, infer_column_type, is_skewed, training_schedule
from deepwright.data.io import Table
from deepwright.data.split import normalize_split_value
from deepwright.data.timeindex import find_time_column, index_times, seasonal_period
from deepwright.errors import DataError

__all__ = ["MAX_LOOKBACK", "MIN_LOOKBACK", "choose_lookback", "infer_forecast_config"]

MIN_LOOKBACK, MAX_LOOKBACK = 8, 64  # steps; a recurrent network learns little more from longer windows
DEFAULT_LOOKBACK = 16  # steps, when the step has no calendar season (numbers, years)
TRAIN_SHARE = 0.8  # method time: [0.8, 0.1, 0.1]


def infer_forecast_config(
    table: Table,
    target: str,
    *,
    time_column: str | list[str] | None = None,
    horizon: int = 1,
    lookback: int | None = None,
) -> Inference:
    """A config forecasting `target` `horizon` steps ahead from the series in `table` (see the module docstring)."""
    table.require_columns([target], "target")
    frame = table.frame
    notes: list[str] = []
    if time_column is None:
        time_column = find_time_column(frame.drop(columns=[target]))
    if time_column is None:
        notes.append("no time column found: the rows are taken in file order (give --time-column to name one)")
    else:
        table.require_columns([time_column] if isinstance(time_column, str) else time_column, "time")
    values = to_target(frame[target].to_numpy(), target, table.source, frame.index.to_numpy() + 1)
    index = index_times(frame, time_column, None, "fill", table.source)
    notes.extend(index.notes)
    if time_column is not None:
        notes.append(f"time: {_shown(time_column)}, one step every {index.frequency}")
    split_column = find_split_column(frame)
    steps = len(index.frame)
    if split_column is not None:
        split: dict[str, Any] = {"method": "column", "column": split_column}
        labels = [normalize_split_value(value) for value in frame[split_column]]
        train_steps = int(sum(label == "train" for label in labels) * 0.9)
        notes.append(f"split: by the existing column {split_column!r}, in time order")
    else:
        split = {"method": "time", "fractions": [TRAIN_SHARE, 0.1, 0.1]}
        train_steps = int(steps * TRAIN_SHARE)
        notes.append("split: the first 80% of the steps train, the next 10% validate, the last 10% test")
    training_values = pd.to_numeric(index.frame[target], errors="coerce").to_numpy(dtype=np.float64)[:train_steps]
    period, detected = seasonal_period(training_values, index.frequency)
    if period is not None:
        shown = "seen in the data" if detected else "the calendar season of the step; the data shows none clearly"
        notes.append(f"seasonal period {period} steps ({shown})")
    lookback = lookback or choose_lookback(period if detected else None, train_steps)
    notes.append(f"lookback {lookback} steps, horizon {horizon}")
    if len(values) < lookback + horizon:
        raise DataError(
            f"the series has {len(values)} steps; a forecast needs at least lookback + horizon = {lookback + horizon}",
            source=table.source,
        )
    times = [] if time_column is None else [time_column] if isinstance(time_column, str) else list(time_column)
    inputs = _inputs(frame, {target, split_column, *times}, notes)
    windows = max(1, train_steps - lookback - horizon + 1)
    epochs, patience = training_schedule(windows)
    notes.append(f"about {windows} training windows → up to {epochs} epochs, early stopping after {patience}")
    config: dict[str, Any] = {
        "model_type": "forecast",
        "time_column": time_column,
        "frequency": index.frequency,
        "lookback": lookback,
        "horizon": horizon,
        "seasonal_period": period,
        "gaps": "fill" if any("filled" in note for note in index.notes) else "error",
        "input_features": inputs,
        "output_features": [{"name": str(target), "type": "number"}],
        "encoder": {"type": "rnn", "cell": "lstm", "dim": 64, "layers": 1},
        "linear": True,
        "combiner": {"type": "concat", "dims": [128], "activation": "relu", "dropout": 0.0},
        "preprocessing": {"split": split},
        "trainer": {
            "epochs": epochs,
            "batch_size": 32,
            "optimizer": {"type": "adam", "lr": 0.001},
            "early_stopping": {"metric": "val_loss", "patience": patience},
        },
    }
    return Inference(config, notes)


def choose_lookback(period: int | None, train_steps: int) -> int:
    """Two seasons of steps (`DEFAULT_LOOKBACK` without one), within [`MIN_LOOKBACK`, `MAX_LOOKBACK`] and at most
    a quarter of the training steps, so that there are windows to learn from.

    >>> choose_lookback(12, 96), choose_lookback(24, 8000), choose_lookback(365, 3000), choose_lookback(None, 40)
    (24, 48, 64, 10)
    """
    wanted = 2 * period if period else DEFAULT_LOOKBACK
    return int(max(1, min(max(MIN_LOOKBACK, min(wanted, MAX_LOOKBACK)), train_steps // 4)))


def to_target(values: np.ndarray, target: str, source: str, row_numbers: np.ndarray) -> np.ndarray:
    """The target as floats (NaN where empty); a `DataError` naming the row when a value is not a number.

    >>> to_target(np.array(["1.5", None, "nan", 2], dtype=object), "y", "s.csv", np.arange(1, 5)).tolist()
    [1.5, nan, nan, 2.0]
    """
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    for position in np.flatnonzero(np.isnan(numbers) & ~missing_mask(values)):
        try:
            value = float(values[position])  # what pandas leaves out, such as 'nan'
        except (TypeError, ValueError):
            message = f"value {values[position]!r} is not a number; a forecast target must be numeric"
            raise DataError(message, column=target, row=int(row_numbers[position]), source=source) from None
        numbers[position] = value
    return numbers


def _inputs(frame: Any, excluded: set, notes: list[str]) -> list[dict[str, Any]]:
    """The other columns a forecast can read at each step: numbers, binaries and categories."""
    inputs = []
    for column in frame.columns:
        if column in excluded:
            continue
        kind, reason = infer_column_type(frame[column].to_numpy(), str(column))
        if kind not in STEP_TYPES:
            notes.append(f"left out {column!r}: {reason if kind is None else f'{kind} columns are not read per step'}")
            continue
        inputs.append({"name": str(column), "type": kind})
        if kind == "number" and is_skewed(frame[column].to_numpy()):
            inputs[-1]["normalization"] = "log"
            notes.append(f"log-scaled {column!r}: non-negative and skewed")
    return inputs


def _shown(time_column: str | list[str]) -> str:
    return repr(time_column) if isinstance(time_column, str) else " + ".join(time_column)
