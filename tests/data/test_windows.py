"""Forecast windows: the steps split in time order, each split's windows, and the proof that no window leaks:
training windows read training steps only, no window reads a later split, no forecast crosses a boundary."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deepwright.config import ForecastSplitConfig
from deepwright.data.split import Split
from deepwright.data.windows import check_no_leakage, forecast_positions, lookback_positions, split_steps, window_starts
from deepwright.errors import DataError


def test_split_by_time_fractions() -> None:
    steps = split_steps(20, ForecastSplitConfig(fractions=[0.7, 0.15, 0.15]))
    assert steps.train.tolist() == list(range(14))
    assert steps.validation.tolist() == [14, 15, 16]
    assert steps.test.tolist() == [17, 18, 19]


def test_split_by_column_holds_out_the_last_training_steps() -> None:
    labels = np.array(["train"] * 10 + ["test"] * 4, dtype=object)
    steps = split_steps(14, ForecastSplitConfig(method="column", validation_from_train=0.2), labels=labels)
    assert steps.sizes() == {"train": 8, "validation": 2, "test": 4}
    assert steps.validation.tolist() == [8, 9]


def test_a_filled_step_takes_the_label_before_it() -> None:
    labels = np.array(["train", "train", None, "validation", None, "test"], dtype=object)
    steps = split_steps(6, ForecastSplitConfig(method="column"), labels=labels)
    assert steps.sizes() == {"train": 3, "validation": 2, "test": 1}


def test_a_split_column_out_of_time_order_is_an_error_naming_the_row() -> None:
    labels = np.array(["train", "test", "train"], dtype=object)
    with pytest.raises(DataError, match=r"s\.csv, row 3, column 'split': a train step comes after a test step"):
        split_steps(3, ForecastSplitConfig(method="column"), labels=labels, source="s.csv")
    with pytest.raises(DataError, match="split value 'later' is not one of"):
        split_steps(2, ForecastSplitConfig(method="column"), labels=np.array(["train", "later"], dtype=object))


def test_windows_and_their_positions() -> None:
    steps = Split(np.arange(10), np.arange(10, 13), np.arange(13, 16), "time")
    windows = window_starts(steps, lookback=4, horizon=2)
    assert windows.train.tolist() == list(range(4, 9))  # forecasts 4-5 … 8-9, all training steps
    assert windows.validation.tolist() == [10, 11]  # reads 6-9 (training steps: known by then), forecasts 10-11
    assert windows.test.tolist() == [13, 14]
    assert lookback_positions(np.array([4]), 4).tolist() == [[0, 1, 2, 3]]
    assert forecast_positions(np.array([4]), 2).tolist() == [[4, 5]]
    inside = window_starts(steps, lookback=2, horizon=1, history_across_splits=False)
    assert inside.validation.tolist() == [12]  # reads 10-11: no window crosses a boundary


@pytest.mark.parametrize(
    ("sizes", "lookback", "horizon", "across"),
    list(itertools.product([(30, 5, 7), (12, 0, 9), (50, 10, 0)], [1, 3, 6], [1, 2, 4], [True, False])),
)
def test_no_window_leaks(sizes: tuple[int, int, int], lookback: int, horizon: int, across: bool) -> None:
    """Every window, checked position by position against the split of every step it touches."""
    bounds = np.cumsum(sizes)
    positions = np.arange(bounds[-1])
    steps = Split(positions[: bounds[0]], positions[bounds[0] : bounds[1]], positions[bounds[1] :], "time")
    windows = window_starts(steps, lookback, horizon, history_across_splits=across)
    check_no_leakage(windows, steps, lookback, horizon, history_across_splits=across)
    split_of = np.searchsorted(bounds, positions, side="right")  # 0 train, 1 validation, 2 test
    for rank, name in enumerate(("train", "validation", "test")):
        for start in getattr(windows, name):
            read = lookback_positions(np.array([start]), lookback)[0]
            forecast = forecast_positions(np.array([start]), horizon)[0]
            assert (split_of[forecast] == rank).all()  # the forecast stays inside its split
            assert (split_of[read] <= rank).all() and read.min() >= 0  # never a later split
            if rank == 0 or not across:
                assert (split_of[read] == rank).all()  # training windows read training steps only
    # and every forecastable step of each split is forecast by one window
    for name in ("train", "validation", "test"):
        own = getattr(steps, name)
        first = max(own[0], lookback) if across and len(own) else (own[0] + lookback if len(own) else 0)
        expected = list(range(first, own[-1] + 2 - horizon)) if len(own) else []
        assert getattr(windows, name).tolist() == expected


def test_the_leakage_check_catches_a_leaking_window() -> None:
    steps = Split(np.arange(10), np.arange(10, 12), np.arange(12, 14), "time")
    leaking = Split(np.array([9]), np.zeros(0, dtype=int), np.zeros(0, dtype=int), "time")  # forecasts 9 and 10
    with pytest.raises(AssertionError, match="forecasts steps outside the train split"):
        check_no_leakage(leaking, steps, 3, 2)
    reading_test = Split(np.zeros(0, dtype=int), np.array([13]), np.zeros(0, dtype=int), "time")
    with pytest.raises(AssertionError, match=r"(outside the validation split|later split)"):
        check_no_leakage(reading_test, steps, 3, 1)
