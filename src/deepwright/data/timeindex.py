"""The time index of a series table: which column holds the time, the times parsed, the rows put in time order,
the step between rows (the frequency), gaps, and the seasonal period.

Times are dates (any format pandas reads, or date-part columns such as year, month, day, hour) or numbers. A row
out of order is sorted into place with a warning; two rows with the same time, a time that cannot be read, and
(unless gaps are filled) a missing step are errors naming the row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepwright.data.clean import missing_mask
from deepwright.errors import ConfigError, DataError, DeepwrightWarning

__all__ = [
    "DATE_PARTS",
    "SeriesOrderWarning",
    "TimeIndex",
    "find_time_column",
    "index_times",
    "infer_frequency",
    "natural_periods",
    "parse_times",
    "seasonal_period",
]

# Column names (lower case) that pandas assembles into a date, in order.
DATE_PARTS = ("year", "month", "day", "hour", "minute", "second")
# Calendar periods worth trying as seasons for each kind of step (the first is the one used when none is clear).
_PERIODS = {"h": (24, 168), "min": (60, 1440), "s": (60,), "D": (7, 365), "B": (5,), "W": (52,), "M": (12,), "Q": (4,)}
MIN_SEASONS = 3  # a season is tested only when the training steps hold at least this many


class SeriesOrderWarning(DeepwrightWarning):
    """The rows of a series were not in time order and were sorted."""


@dataclass
class TimeIndex:
    """A series table in time order: the frame (original index kept, so errors still name the original rows),
    the times (datetime64 or float, None when the rows are in order without a time column), and the frequency."""

    frame: pd.DataFrame
    times: np.ndarray | None
    frequency: str | None
    notes: list[str]

    def future_times(self, count: int) -> np.ndarray:
        """The `count` times after the last row, one step apart (step numbers when there is no time column)."""
        if self.times is None:
            return np.arange(len(self.frame) + 1, len(self.frame) + count + 1)
        if np.issubdtype(self.times.dtype, np.datetime64):
            return pd.date_range(self.times[-1], periods=count + 1, freq=self.frequency).to_numpy()[1:]
        step = float(self.frequency)
        return self.times[-1] + step * np.arange(1, count + 1)


def parse_times(frame: pd.DataFrame, time_column: str | list[str], source: str) -> np.ndarray:
    """The times of every row: datetime64[ns], or float64 for a numeric column. A missing or unreadable time
    is a `DataError` naming the row and column."""
    columns = [time_column] if isinstance(time_column, str) else list(time_column)
    for column in columns:
        if column not in frame.columns:
            raise DataError(f"time column {column!r} not found; fix time_column", source=source)
        missing = missing_mask(frame[column].to_numpy())
        if missing.any():
            row = int(frame.index[np.flatnonzero(missing)[0]]) + 1
            raise DataError("the time is missing; every row needs one", column=column, row=row, source=source)
    if isinstance(time_column, list):
        return _assemble_dates(frame, columns, source)
    raw = frame[time_column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=np.float64)
    times = pd.to_datetime(raw, errors="coerce", format="mixed")
    bad = np.flatnonzero(times.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"value {raw.iloc[bad[0]]!r} is not a date or time",
            column=time_column,
            row=int(frame.index[bad[0]]) + 1,
            source=source,
        )
    return times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]") if times.dt.tz else times.to_numpy()


def _assemble_dates(frame: pd.DataFrame, columns: list[str], source: str) -> np.ndarray:
    """Dates from date-part columns (year, month, day, hour…), named in any case."""
    unknown = [column for column in columns if column.lower() not in DATE_PARTS]
    if unknown or "year" not in [column.lower() for column in columns]:
        raise ConfigError(
            f"time_column: date-part columns are named {', '.join(DATE_PARTS)} (year needed); got {', '.join(columns)}"
        )
    parts = frame[columns].rename(columns={column: column.lower() for column in columns})
    for part in ("month", "day"):
        if part not in parts.columns:
            parts[part] = 1
    try:
        return pd.to_datetime(parts).to_numpy()
    except (ValueError, TypeError):
        for position in range(len(frame)):  # find the row that pandas could not read
            try:
                pd.to_datetime(parts.iloc[position : position + 1])
            except (ValueError, TypeError) as error:
                row = int(frame.index[position]) + 1
                raise DataError(f"the date parts do not make a date ({error})", row=row, source=source) from None
        raise


def index_times(
    frame: pd.DataFrame, time_column: str | list[str] | None, frequency: str | None, gaps: str, source: str
) -> TimeIndex:
    """Put `frame` in time order and check its steps: duplicated times are an error, unsorted rows are sorted
    (with a `SeriesOrderWarning`), the frequency is inferred when not given, and a missing step is an error
    (gaps 'error') or a new empty row (gaps 'fill')."""
    notes: list[str] = []
    if time_column is None:
        return TimeIndex(frame, None, None, notes)
    times = parse_times(frame, time_column, source)
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    same = np.flatnonzero(sorted_times[1:] == sorted_times[:-1])
    if len(same):
        first, second = sorted([int(frame.index[order[same[0]]]) + 1, int(frame.index[order[same[0] + 1]]) + 1])
        raise DataError(
            f"rows {first} and {second} have the same time {_show(sorted_times[same[0]])}; a series needs one row per "
            "time step (aggregate or remove the duplicates)",
            column=_name(time_column),
            source=source,
        )
    if np.any(order != np.arange(len(order))):
        position = int(np.flatnonzero(np.diff(times) < 0)[0]) + 1
        later, earlier = int(frame.index[position - 1]) + 1, int(frame.index[position]) + 1
        message = (
            f"{source}: rows are not in time order (row {earlier} is earlier than row {later} above it); "
            "sorted them by time"
        )
        warnings.warn(message, SeriesOrderWarning, stacklevel=2)
        frame = frame.iloc[order]
    frequency = frequency or infer_frequency(sorted_times)
    if frequency is None:
        raise DataError(
            "cannot tell the step between rows; set frequency (e.g. MS, D, h, or a number)",
            column=_name(time_column),
            source=source,
        )
    frame, sorted_times = _check_steps(frame, sorted_times, frequency, gaps, _name(time_column), source, notes)
    return TimeIndex(frame, sorted_times, frequency, notes)


def infer_frequency(times: np.ndarray) -> str | None:
    """The step between consecutive times: a pandas offset alias for dates (MS, D, h…), the most common
    difference (as text) for numbers; None when there are fewer than 3 times.

    >>> infer_frequency(pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01", "2020-05-01"]).to_numpy())
    'MS'
    >>> infer_frequency(np.array([0.0, 2.0, 4.0, 8.0]))
    '2'
    """
    if len(times) < 3:
        return None
    if not np.issubdtype(times.dtype, np.datetime64):
        differences = np.diff(times)
        values, counts = np.unique(differences, return_counts=True)
        step = float(values[np.argmax(counts)])
        return None if step <= 0 else (str(int(step)) if step.is_integer() else repr(step))
    index = pd.DatetimeIndex(times)
    for start in range(0, len(index) - 2, max(1, len(index) // 8)):  # a stretch without gaps says it directly
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(index[start : start + 25]) if len(index[start : start + 25]) >= 3 else None
        if offset is not None and _on_grid(index, offset.freqstr):
            return offset.freqstr
    weekday = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[index[0].day_of_week]
    for frequency in ("YS", "YE", "QS", "QE", "MS", "ME", f"W-{weekday}", "D", "B", "h", "min", "s"):
        if _on_grid(index, frequency):  # the coarsest calendar grid that holds every time
            return frequency
    difference = pd.Series(np.diff(index.asi8)).mode().iloc[0]
    frequency = pd.tseries.frequencies.to_offset(pd.Timedelta(int(difference), unit="ns")).freqstr
    return frequency if _on_grid(index, frequency) else None


def _on_grid(index: pd.DatetimeIndex, frequency: str) -> bool:
    """Whether every time lies on the `frequency` grid from the first time (a grid at most 100 times longer)."""
    try:
        grid = pd.date_range(index[0], index[-1], freq=frequency)
    except ValueError:
        return False
    return 0 < len(grid) <= 100 * len(index) and bool(index.isin(grid).all())


def _check_steps(
    frame: pd.DataFrame, times: np.ndarray, frequency: str, gaps: str, column: str, source: str, notes: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every time on the grid that starts at the first time and moves by `frequency`; missing steps are an error
    naming the row after the gap, or (gaps 'fill') rows of empty values."""
    grid = _grid(times, frequency, column, source)
    if len(grid) == len(times) and np.array_equal(grid, times):
        return frame, times
    positions = np.searchsorted(grid, times)
    off_grid = np.flatnonzero((positions >= len(grid)) | (grid[np.clip(positions, 0, len(grid) - 1)] != times))
    if len(off_grid):
        row = int(frame.index[off_grid[0]]) + 1
        raise DataError(
            f"time {_show(times[off_grid[0]])} is not on the {frequency} grid starting at {_show(times[0])}; "
            "fix the time or set frequency",
            column=column,
            row=row,
            source=source,
        )
    jumps = np.flatnonzero(np.diff(positions) > 1)
    if gaps == "error":
        after = jumps[0] + 1
        count = int(positions[after] - positions[after - 1] - 1)
        raise DataError(
            f"{count} time step{'s' if count > 1 else ''} missing before {_show(times[after])} (the series moves by "
            f"{frequency}); add the missing rows (empty values are filled in), or set gaps: fill",
            column=column,
            row=int(frame.index[after]) + 1,
            source=source,
        )
    filled = frame.reset_index(drop=True).set_axis(positions).reindex(range(len(grid)))
    original = np.full(len(grid), -1, dtype=np.int64)
    original[positions] = frame.index.to_numpy()
    missing_rows = np.flatnonzero(original < 0)
    original[missing_rows] = frame.index.max() + 1 + np.arange(len(missing_rows))  # new rows after the file's
    filled.index = original
    notes.append(f"filled {len(grid) - len(times)} missing time steps with empty rows (gaps: fill)")
    return filled, grid


def _grid(times: np.ndarray, frequency: str, column: str, source: str) -> np.ndarray:
    """Every step from the first time to the last."""
    if np.issubdtype(times.dtype, np.datetime64):
        try:
            return pd.date_range(times[0], times[-1], freq=frequency).to_numpy()
        except ValueError as error:
            raise ConfigError(f"frequency {frequency!r} is not a pandas offset alias ({error})") from None
    try:
        step = float(frequency)
    except ValueError:
        raise ConfigError(f"frequency {frequency!r}: numeric times need a number as frequency") from None
    count = round((times[-1] - times[0]) / step) + 1
    if count > 100 * len(times):
        raise DataError(
            f"the times span {count} steps of {frequency} for {len(times)} rows", column=column, source=source
        )
    return times[0] + step * np.arange(count)


def find_time_column(frame: pd.DataFrame) -> str | list[str] | None:
    """The column that holds the time: the first whose values all read as dates (and are not plain numbers),
    else the date-part columns (year, month, day…) when there are some, else None."""
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or values.isna().all():
            continue
        sample = values.dropna().astype(str).head(200)
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().all() and sample.str.contains(r"\d").all() and sample.str.len().min() >= 4:
            return str(column)
    parts = [str(column) for column in frame.columns if str(column).lower() in DATE_PARTS]
    if any(part.lower() == "year" for part in parts):
        return sorted(parts, key=lambda part: DATE_PARTS.index(part.lower()))
    return None


def natural_periods(frequency: str | None) -> tuple[int, ...]:
    """Calendar seasons worth trying for a step of `frequency` (none for numeric or yearly steps).

    >>> natural_periods("MS"), natural_periods("h"), natural_periods("2")
    ((12,), (24, 168), ())
    """
    if frequency is None:
        return ()
    try:
        offset = pd.tseries.frequencies.to_offset(frequency)
    except ValueError:
        return ()
    name = offset.rule_code if offset.n == 1 else ""
    for prefix, periods in _PERIODS.items():
        if name == prefix or (len(prefix) == 1 and prefix in "MQW" and name.startswith(prefix)):
            return periods
    return ()


def seasonal_period(values: np.ndarray, frequency: str | None) -> tuple[int | None, bool]:
    """The season of a series, and whether the data shows it: the shortest calendar period m of `frequency`
    (fitting three times in `values`) that passes the seasonality test of the M4 competition's benchmarks, at
    90 %: |r_m| > 1.645 · √((1 + 2 Σ_{k<m} r_k²) / n), r_k the autocorrelation at lag k. Else the shortest
    calendar period that fits (shown False); None when there is none.

    >>> t = np.arange(120.0)
    >>> seasonal_period(np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, 120), "MS")
    (12, True)
    """
    candidates = [period for period in natural_periods(frequency) if period <= len(values) / MIN_SEASONS]
    if not candidates:
        return None, False
    centred = np.asarray(values, dtype=np.float64) - np.nanmean(values)
    variance = float(np.nanmean(centred * centred))
    present = int((~np.isnan(centred)).sum())
    if variance == 0 or present < 2:
        return candidates[0], False
    correlations = [1.0] + [
        float(np.nanmean(centred[:-lag] * centred[lag:])) / variance for lag in range(1, candidates[-1] + 1)
    ]
    for period in candidates:  # shortest first: hours before weeks, days before years
        below = np.square(correlations[1:period])
        limit = 1.645 * np.sqrt((1 + 2 * below.sum()) / present)
        if abs(correlations[period]) > limit:
            return period, True
    return candidates[0], False


def _name(time_column: str | list[str]) -> str:
    return time_column if isinstance(time_column, str) else "+".join(time_column)


def _show(time: object) -> str:
    """A time as a short string: a date without a midnight time, a number without a needless .0."""
    if isinstance(time, np.datetime64):
        stamp = pd.Timestamp(time)
        return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)
    number = float(time)
    return str(int(number)) if number.is_integer() else str(number)
