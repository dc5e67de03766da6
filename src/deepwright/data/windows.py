"""Forecast windows over one series: the split of the time steps, and the windows each split may use.

The steps are cut in time order: training steps, then validation steps, then test steps. A window reads
`lookback` steps and forecasts the `horizon` steps after them; it belongs to the split of its forecast steps, and
every one of its forecast steps lies in that split (no window's forecast crosses a boundary). Its lookback lies
in the same split, or with `history_across_splits` may reach back into earlier splits (values already known at
forecast time). So a training window reads training steps only, and no window ever reads a step of a later
split: `check_no_leakage` proves it for every window.

A window is known by its *start*: the position of its first forecast step; it reads positions
start − lookback … start − 1 and forecasts start … start + horizon − 1.
"""

from __future__ import annotations

import numpy as np

from deepwright.config import ForecastSplitConfig
from deepwright.data.clean import missing_mask
from deepwright.data.split import SPLIT_NAMES, Split, normalize_split_value
from deepwright.errors import DataError

__all__ = ["check_no_leakage", "forecast_positions", "lookback_positions", "split_steps", "window_starts"]


def split_steps(
    num_steps: int,
    options: ForecastSplitConfig,
    *,
    labels: np.ndarray | None = None,
    row_numbers: np.ndarray | None = None,
    source: str = "the data",
) -> Split:
    """Positions of the training, validation and test steps, consecutive and in that order.

    Method 'time' cuts by `options.fractions`; method 'column' reads `labels` (train/validation/test, in time
    order; an empty label, such as a filled gap's, takes the label of the step before it) and, when there is no
    validation step, holds out the last `validation_from_train` share of the training steps.

    >>> split_steps(10, ForecastSplitConfig(fractions=[0.6, 0.2, 0.2])).sizes()
    {'train': 6, 'validation': 2, 'test': 2}
    """
    if options.method == "time":
        counts = [round(num_steps * share) for share in options.fractions[1:]]
        bounds = [num_steps - counts[0] - counts[1], num_steps - counts[1]]
    else:
        bounds = _bounds_from_labels(labels, options, row_numbers, source)
    positions = np.arange(num_steps)
    split = Split(positions[: bounds[0]], positions[bounds[0] : bounds[1]], positions[bounds[1] :], options.method)
    if len(split.train) == 0:
        raise DataError("the split leaves no training steps; give more steps or change the split", source=source)
    return split


def _bounds_from_labels(
    labels: np.ndarray | None, options: ForecastSplitConfig, row_numbers: np.ndarray | None, source: str
) -> list[int]:
    """[first validation position, first test position] from a split column in time order."""
    if labels is None:
        raise DataError(f"split column {options.column!r} not found; add it or use method time", source=source)
    rank = {name: index for index, name in enumerate(SPLIT_NAMES)}
    ranks = np.full(len(labels), -1, dtype=np.int64)
    missing = missing_mask(labels)
    for position, (value, absent) in enumerate(zip(labels, missing)):
        if absent:
            ranks[position] = ranks[position - 1] if position else 0
            continue
        name = normalize_split_value(value)
        row = int(row_numbers[position]) if row_numbers is not None else position + 1
        if name is None:
            raise DataError(
                f"split value {value!r} is not one of train, validation, test",
                column=options.column,
                row=row,
                source=source,
            )
        ranks[position] = rank[name]
        if position and ranks[position] < ranks[position - 1]:
            raise DataError(
                f"a {name} step comes after a {SPLIT_NAMES[ranks[position - 1]]} step; a series splits in time order "
                "(train, then validation, then test)",
                column=options.column,
                row=row,
                source=source,
            )
    bounds = [int(np.searchsorted(ranks, 1)), int(np.searchsorted(ranks, 2))]
    if bounds[0] == bounds[1] and options.validation_from_train > 0:
        bounds[0] -= round(bounds[0] * options.validation_from_train)  # the last training steps validate
    return bounds


def window_starts(steps: Split, lookback: int, horizon: int, *, history_across_splits: bool = True) -> Split:
    """The starts of the windows of each split (see the module docstring).

    >>> steps = Split(np.arange(6), np.arange(6, 8), np.arange(8, 10), "time")
    >>> window_starts(steps, 3, 1).test.tolist(), window_starts(steps, 3, 1, history_across_splits=False).test.tolist()
    ([8, 9], [])
    """
    starts = {}
    for name in SPLIT_NAMES:
        positions = getattr(steps, name)
        if len(positions) == 0:
            starts[name] = np.zeros(0, dtype=np.int64)
            continue
        first, end = int(positions[0]), int(positions[-1]) + 1
        earliest = max(first, lookback) if history_across_splits else first + lookback
        starts[name] = np.arange(earliest, end - horizon + 1, dtype=np.int64)
    return Split(starts["train"], starts["validation"], starts["test"], steps.method)


def lookback_positions(starts: np.ndarray, lookback: int) -> np.ndarray:
    """(N, lookback): the positions each window reads, oldest first."""
    return starts[:, None] - lookback + np.arange(lookback)[None, :]


def forecast_positions(starts: np.ndarray, horizon: int) -> np.ndarray:
    """(N, horizon): the positions each window forecasts."""
    return starts[:, None] + np.arange(horizon)[None, :]


def check_no_leakage(
    windows: Split, steps: Split, lookback: int, horizon: int, *, history_across_splits: bool = True
) -> None:
    """Raise `AssertionError` unless every window forecasts steps of its own split only and reads no step of a
    later split (nor, without `history_across_splits`, of an earlier one); training windows thus read training
    steps only."""
    for index, name in enumerate(SPLIT_NAMES):
        starts = getattr(windows, name)
        if len(starts) == 0:
            continue
        own = getattr(steps, name)
        read = lookback_positions(starts, lookback)
        forecast = forecast_positions(starts, horizon)
        if not np.isin(forecast, own).all():
            raise AssertionError(f"a {name} window forecasts steps outside the {name} split")
        later = np.concatenate([getattr(steps, other) for other in SPLIT_NAMES[index + 1 :]] + [np.zeros(0, int)])
        if read.min() < 0 or np.isin(read, later).any() or np.isin(forecast, later).any():
            raise AssertionError(f"a {name} window reads steps of a later split")
        if not history_across_splits and not np.isin(read, own).all():
            raise AssertionError(f"a {name} window reads steps outside its split")
