"""Cleaning: what counts as missing, and which rows are dropped (with counts per reason)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepwright.config import load_config
from deepwright.data.clean import CleaningReport, drop_incomplete_rows, missing_mask


def test_missing_mask_for_floats_integers_and_strings() -> None:
    assert missing_mask(np.array([1.0, np.nan, 3.0])).tolist() == [False, True, False]
    assert missing_mask(np.array([1, 2, 3])).tolist() == [False, False, False]
    strings = np.array(["a", "", None, "  ", np.nan, "0"], dtype=object)
    assert missing_mask(strings).tolist() == [False, True, True, True, True, False]


def test_missing_mask_for_pandas_string_columns() -> None:
    column = pd.Series(["a", None, " b", ""], dtype="string").to_numpy()
    assert missing_mask(column).tolist() == [False, True, False, True]


def test_rows_missing_the_target_or_a_drop_row_input_are_dropped_with_counts() -> None:
    config = load_config(
        {
            "input_features": [
                {"name": "x", "type": "number", "missing": {"strategy": "drop_row"}},
                {"name": "c", "type": "category"},
            ],
            "output_features": [{"name": "y", "type": "binary"}],
        }
    )
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, 4.0, np.nan, 6.0, np.nan],
            "c": ["a", None, "b", "", "c", "d", "e"],
            "y": ["p", "q", None, "q", " ", "p", "p"],
        }
    )
    cleaned, report = drop_incomplete_rows(frame, config)
    # Rows 2 and 4 (0-based) miss the target; rows 1 and 6 miss x; row 4 is counted once, for the target.
    assert cleaned.index.tolist() == [0, 3, 5]  # the original index is kept for error messages
    assert report.rows_in == 7
    assert report.rows_out == 3
    assert report.dropped == {"missing output 'y'": 2, "missing 'x' (drop_row)": 2}
    assert report.summary() == "7 rows, 4 dropped (missing output 'y': 2, missing 'x' (drop_row): 2)"
    assert report.to_dict() == {
        "rows_in": 7,
        "rows_out": 3,
        "dropped": {"missing output 'y'": 2, "missing 'x' (drop_row)": 2},
    }


def test_inputs_missing_without_drop_row_are_kept() -> None:
    config = load_config(
        {
            "input_features": [{"name": "x", "type": "number"}],
            "output_features": [{"name": "y", "type": "number"}],
        }
    )
    frame = pd.DataFrame({"x": [np.nan, 2.0, np.nan], "y": [1.0, 2.0, 3.0]})
    cleaned, report = drop_incomplete_rows(frame, config)
    assert cleaned is frame
    assert report.dropped == {}
    assert report.summary() == "3 rows, none dropped"


def test_report_defaults() -> None:
    assert CleaningReport(rows_in=5, rows_out=5).dropped == {}
