"""The time index of a series: parsing, ordering (sorted with a warning), duplicated times, the step between rows,
gaps (an error naming the row, or filled), the seasonal period and finding the time column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepwright.data.timeindex import (
    SeriesOrderWarning,
    find_time_column,
    index_times,
    infer_frequency,
    natural_periods,
    parse_times,
    seasonal_period,
)
from deepwright.errors import ConfigError, DataError


def monthly(count: int = 6, start: str = "2020-01") -> pd.DataFrame:
    months = pd.period_range(start, periods=count, freq="M").strftime("%Y-%m")
    return pd.DataFrame({"month": months, "value": np.arange(count, dtype=float)})


def test_parse_dates_numbers_and_date_parts() -> None:
    assert parse_times(monthly(2), "month", "s.csv").dtype.kind == "M"
    assert parse_times(pd.DataFrame({"t": [3, 1]}), "t", "s.csv").tolist() == [3.0, 1.0]
    parts = pd.DataFrame({"Year": [2010, 2010], "Month": [1, 1], "Day": [1, 1], "Hour": [0, 1]})
    times = parse_times(parts, ["Year", "Month", "Day", "Hour"], "s.csv")
    assert (np.diff(times) == np.timedelta64(1, "h")).all()


def test_unreadable_or_missing_times_name_the_row() -> None:
    frame = monthly(3)
    frame.loc[1, "month"] = "not a date"
    with pytest.raises(DataError, match=r"s.csv, row 2, column 'month': value 'not a date' is not a date"):
        parse_times(frame, "month", "s.csv")
    frame.loc[1, "month"] = None
    with pytest.raises(DataError, match="row 2, column 'month': the time is missing"):
        parse_times(frame, "month", "s.csv")
    with pytest.raises(DataError, match="time column 'when' not found"):
        parse_times(frame, "when", "s.csv")
    with pytest.raises(ConfigError, match="date-part columns are named"):
        parse_times(pd.DataFrame({"value": [1]}), ["value"], "s.csv")


def test_unsorted_rows_are_sorted_with_a_warning_keeping_their_row_numbers() -> None:
    frame = monthly(5).iloc[[0, 1, 3, 2, 4]]
    with pytest.warns(SeriesOrderWarning, match=r"row 3 is earlier than row 4 above it\); sorted them by time"):
        index = index_times(frame, "month", None, "error", "s.csv")
    assert index.frame["value"].tolist() == [0, 1, 2, 3, 4]
    assert index.frame.index.tolist() == [0, 1, 2, 3, 4]  # original rows, so later errors still name them


def test_duplicated_times_are_an_error_naming_both_rows() -> None:
    frame = pd.concat([monthly(4), monthly(1, "2020-03")], ignore_index=True)
    with pytest.raises(DataError, match="rows 3 and 5 have the same time 2020-03-01; a series needs one row per"):
        index_times(frame, "month", None, "error", "s.csv")


def test_a_gap_is_an_error_naming_the_row_after_it() -> None:
    frame = monthly(8).drop(index=[3, 4]).reset_index(drop=True)
    with pytest.raises(DataError, match=r"row 4, column 'month': 2 time steps missing before 2020-06-01 \(the series"):
        index_times(frame, "month", None, "error", "s.csv")


def test_gaps_filled_with_empty_rows() -> None:
    frame = monthly(8).drop(index=[3, 4]).reset_index(drop=True)
    index = index_times(frame, "month", None, "fill", "s.csv")
    assert len(index.frame) == 8
    assert index.frame["value"].isna().tolist() == [False, False, False, True, True, False, False, False]
    assert index.frame.index.tolist()[:3] == [0, 1, 2]
    assert "filled 2 missing time steps" in index.notes[-1]


def test_a_time_off_the_grid_is_an_error() -> None:
    frame = pd.DataFrame({"t": [0.0, 1.0, 2.0, 2.5, 3.0, 4.0], "value": range(6)})
    with pytest.raises(DataError, match=r"time 2\.5 is not on the 1 grid"):
        index_times(frame, "t", "1", "error", "s.csv")


def test_no_time_column_keeps_file_order() -> None:
    index = index_times(monthly(3), None, None, "error", "s.csv")
    assert index.times is None and index.future_times(2).tolist() == [4, 5]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (pd.date_range("2020-01-01", periods=30, freq="MS"), "MS"),
        (pd.date_range("2020-01-31", periods=30, freq="ME"), "ME"),
        (pd.date_range("2020-01-01", periods=50, freq="D"), "D"),
        (pd.date_range("2020-01-01", periods=50, freq="h"), "h"),
        (pd.date_range("2020-01-01", periods=50, freq="15min"), "15min"),
        (pd.DatetimeIndex(["2020-01-01", "2020-02-01", "2020-03-01", "2020-05-01", "2020-06-01"]), "MS"),
    ],
)
def test_frequency(times: pd.DatetimeIndex, expected: str) -> None:
    assert infer_frequency(times.to_numpy()) == expected


def test_numeric_frequency_and_future_times() -> None:
    index = index_times(pd.DataFrame({"t": [10, 12, 14, 16], "v": range(4)}), "t", None, "error", "s.csv")
    assert index.frequency == "2"
    assert index.future_times(2).tolist() == [18.0, 20.0]
    dated = index_times(monthly(3), "month", None, "error", "s.csv")
    assert [str(time)[:10] for time in dated.future_times(2)] == ["2020-04-01", "2020-05-01"]


def test_seasonal_period_from_the_data() -> None:
    rng = np.random.default_rng(0)
    hours = np.arange(24 * 30)
    daily = 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, len(hours))
    assert seasonal_period(daily, "h") == (24, True)
    noise = rng.normal(0, 1, 200)
    assert seasonal_period(noise, "MS") == (12, False)  # the calendar season, not seen in the data
    assert seasonal_period(noise[:20], "MS") == (None, False)  # too short for three seasons
    assert natural_periods("2") == () and natural_periods("D") == (7, 365)


def test_find_time_column() -> None:
    assert find_time_column(monthly(3)) == "month"
    parts = pd.DataFrame({"No": [1], "hour": [0], "Year": [2010], "month": [1], "day": [1], "pm": [3.0]})
    assert find_time_column(parts) == ["Year", "month", "day", "hour"]
    assert find_time_column(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})) is None
