"""Cleaning: which cells count as missing, and which rows are dropped before splitting (with the reasons).

Fill values (mean, median, most frequent) are not computed here: they are learned by each feature's
preprocessor on the training split only, so nothing from validation or test leaks into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepwright.config import Config

__all__ = ["CleaningReport", "drop_incomplete_rows", "missing_mask"]


def missing_mask(values: np.ndarray) -> np.ndarray:
    """True where a value is missing: None, NaN, pandas' NA, or a string that is empty or only spaces.

    >>> missing_mask(np.array([1.0, np.nan, 3.0])).tolist()
    [False, True, False]
    >>> missing_mask(np.array(["a", "", None, " "], dtype=object)).tolist()
    [False, True, True, True]
    """
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    mask = np.asarray(pd.isna(values), dtype=bool)
    if values.dtype.kind in "OUT":
        blank = np.array([isinstance(value, str) and not value.strip() for value in values], dtype=bool)
        mask |= blank
    return mask


@dataclass
class CleaningReport:
    """How many rows came in, how many are left, and how many were dropped for each reason."""

    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the log, e.g. '891 rows, 2 dropped (missing 'Embarked' (drop_row): 2)'."""
        if not self.dropped:
            return f"{self.rows_in} rows, none dropped"
        reasons = ", ".join(f"{reason}: {count}" for reason, count in self.dropped.items())
        return f"{self.rows_in} rows, {self.rows_in - self.rows_out} dropped ({reasons})"

    def to_dict(self) -> dict:
        """The report as JSON-able data."""
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "dropped": dict(self.dropped)}


def drop_incomplete_rows(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop rows whose output value is missing, and rows missing an input whose policy is `drop_row`.

    The returned frame keeps the original index, so later errors can still name the original row.
    """
    keep = np.ones(len(frame), dtype=bool)
    dropped: dict[str, int] = {}
    checks = [(feature.name, f"missing output {feature.name!r}") for feature in config.output_features]
    checks += [
        (feature.name, f"missing {feature.name!r} (drop_row)")
        for feature in config.input_features
        if getattr(feature, "missing", None) is not None and feature.missing.strategy == "drop_row"
    ]
    for column, reason in checks:
        missing = missing_mask(frame[column].to_numpy()) & keep
        if missing.any():
            dropped[reason] = int(missing.sum())
            keep &= ~missing
    cleaned = frame if keep.all() else frame[keep]
    return cleaned, CleaningReport(rows_in=len(frame), rows_out=int(keep.sum()), dropped=dropped)
