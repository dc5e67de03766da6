"""Splitting rows into training, validation and test sets: random, stratified, by a column, or by time.

Every method is seeded and returns positions into the frame; `Split.check` proves the three sets are
disjoint and cover every row, so no row leaks from one set into another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepwright.config import SplitConfig
from deepwright.data.clean import missing_mask
from deepwright.errors import ConfigError, DataError

__all__ = ["SPLIT_NAMES", "Split", "normalize_split_value", "split_rows"]

SPLIT_NAMES = ("train", "validation", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
    "0": "train",
    "1": "validation",
    "2": "test",
}


@dataclass
class Split:
    """Row positions (into the cleaned frame) of the training, validation and test sets."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    method: str

    def check(self, total: int) -> None:
        """Assert that the three sets are disjoint and together cover all `total` rows."""
        together = np.concatenate([self.train, self.validation, self.test])
        if len(together) != total or len(np.unique(together)) != total:
            raise AssertionError("split sets overlap or miss rows")

    def sizes(self) -> dict[str, int]:
        """Rows in each set, e.g. {'train': 800, 'validation': 100, 'test': 100}."""
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}


def normalize_split_value(value: object) -> str | None:
    """'train', 'validation' or 'test' for the usual spellings of each (case-insensitive), else None.

    >>> normalize_split_value("Valid"), normalize_split_value(2), normalize_split_value("holdout")
    ('validation', 'test', None)
    """
    return _SPLIT_ALIASES.get(str(value).strip().lower())


def split_rows(
    frame: pd.DataFrame, options: SplitConfig, *, stratify_on: str | None, source: str = "the data"
) -> Split:
    """Divide the rows of `frame` according to `options` (seeded: the same seed gives the same split)."""
    rng = np.random.default_rng(options.seed)
    if options.method == "random":
        split = _cut(rng.permutation(len(frame)), options.fractions)
    elif options.method == "stratified":
        if stratify_on is None:
            raise ConfigError("preprocessing.split.method 'stratified' needs an output feature to stratify on")
        split = _stratified(frame[stratify_on].to_numpy(), options.fractions, rng)
    elif options.method == "column":
        split = _by_column(frame, options, source, rng, stratify_on)
    else:
        split = _by_time(frame, options, source)
    split.check(len(frame))
    if len(split.train) == 0:
        raise DataError(
            f"the {options.method} split leaves no training rows; give more rows or change the split",
            source=source,
        )
    return split


def _cut(order: np.ndarray, fractions: list[float], method: str = "random") -> Split:
    """Cut an ordering of positions into consecutive train / validation / test pieces."""
    total = len(order)
    num_validation = round(total * fractions[1])
    num_test = round(total * fractions[2])
    num_train = total - num_validation - num_test
    return Split(
        train=np.sort(order[:num_train]),
        validation=np.sort(order[num_train : num_train + num_validation]),
        test=np.sort(order[num_train + num_validation :]),
        method=method,
    )


def _stratified(labels: np.ndarray, fractions: list[float], rng: np.random.Generator) -> Split:
    """Cut each class separately so that every set keeps the class proportions."""
    keys = pd.Series(labels).astype(str).to_numpy()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        piece = _cut(rng.permutation(members), fractions)
        for name in SPLIT_NAMES:
            parts[name].append(getattr(piece, name))
    return Split(*(np.sort(np.concatenate(parts[name])) for name in SPLIT_NAMES), method="stratified")


def _by_column(
    frame: pd.DataFrame, options: SplitConfig, source: str, rng: np.random.Generator, stratify_on: str | None
) -> Split:
    if options.column not in frame.columns:
        raise DataError(
            f"split column {options.column!r} not found; add it (values train/validation/test) "
            "or use preprocessing.split.method random or stratified",
            source=source,
        )
    values = frame[options.column].to_numpy()
    names = np.array([normalize_split_value(value) for value in values], dtype=object)
    unknown = np.flatnonzero(pd.isna(names))
    if len(unknown):
        position = unknown[0]
        raise DataError(
            f"split value {values[position]!r} is not one of train, validation, test",
            column=options.column,
            row=int(frame.index[position]) + 1,
            source=source,
        )
    train = np.flatnonzero(names == "train")
    validation = np.flatnonzero(names == "validation")
    test = np.flatnonzero(names == "test")
    if len(validation) == 0 and options.validation_from_train > 0 and len(train) > 1:
        # The column has no validation rows: hold out a seeded share of the training rows, at least one.
        share = max(options.validation_from_train, 1 / len(train))
        held = None
        if stratify_on is not None:
            held = _stratified(frame[stratify_on].to_numpy()[train], [1 - share, share, 0.0], rng)
        if held is None or len(held.validation) == 0:
            held = _cut(rng.permutation(len(train)), [1 - share, share, 0.0])
        train, validation = train[held.train], train[held.validation]
    return Split(np.sort(train), np.sort(validation), np.sort(test), method="column")


def _by_time(frame: pd.DataFrame, options: SplitConfig, source: str) -> Split:
    column = options.time_column
    if column not in frame.columns:
        raise DataError(f"time column {column!r} not found; fix preprocessing.split.time_column", source=source)
    raw = frame[column]
    if missing_mask(raw.to_numpy()).any():
        raise DataError("the time column has empty cells; fill them or drop those rows", column=column, source=source)
    times = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_datetime(raw, errors="coerce")
    if times.isna().any():
        position = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise DataError(
            f"value {raw.iloc[position]!r} is not a time or a number",
            column=column,
            row=int(frame.index[position]) + 1,
            source=source,
        )
    order = np.argsort(times.to_numpy(), kind="stable")
    return _cut(order, options.fractions, method="time")
