"""Splitting: every method is seeded and reproducible, and its three sets are disjoint and cover every row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepwright.config import SplitConfig
from deepwright.data.split import Split, normalize_split_value, split_rows
from deepwright.errors import ConfigError, DataError

ROWS = 1000


@pytest.fixture
def table() -> pd.DataFrame:
    """1,000 rows: an imbalanced label (60/30/10 %), a shuffled time, a split column without validation rows."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "label": rng.choice(["a", "b", "c"], p=[0.6, 0.3, 0.1], size=ROWS),
            "time": rng.permutation(ROWS),
            "split": rng.choice(["Train", "training", "TEST", "train"], size=ROWS),
        }
    )


def options_for(method: str, seed: int = 1) -> SplitConfig:
    return SplitConfig(method=method, seed=seed, time_column="time" if method == "time" else None)


def run(table: pd.DataFrame, method: str, seed: int = 1) -> Split:
    return split_rows(table, options_for(method, seed), stratify_on="label", source="t.csv")


def as_tuple(split: Split) -> tuple[list[int], ...]:
    return tuple(getattr(split, name).tolist() for name in ("train", "validation", "test"))


def assert_disjoint_and_complete(split: Split, total: int) -> None:
    together = np.concatenate([split.train, split.validation, split.test])
    assert len(together) == total
    assert sorted(together.tolist()) == list(range(total))


@pytest.mark.parametrize("method", ["random", "stratified", "column", "time"])
def test_same_seed_same_split_disjoint_and_complete(table: pd.DataFrame, method: str) -> None:
    first, second = run(table, method), run(table, method)
    assert as_tuple(first) == as_tuple(second)
    assert first.method == method
    assert_disjoint_and_complete(first, ROWS)
    assert len(first.validation) > 0
    assert len(first.test) > 0


@pytest.mark.parametrize("method", ["random", "stratified", "column"])
def test_different_seed_different_split(table: pd.DataFrame, method: str) -> None:
    first, second = run(table, method, seed=1), run(table, method, seed=2)
    assert as_tuple(first) != as_tuple(second)
    assert_disjoint_and_complete(second, ROWS)


def test_time_split_ignores_the_seed(table: pd.DataFrame) -> None:
    """Ordering by time leaves nothing to chance: the seed cannot change it."""
    assert as_tuple(run(table, "time", seed=1)) == as_tuple(run(table, "time", seed=2))


def test_random_split_sizes(table: pd.DataFrame) -> None:
    assert run(table, "random").sizes() == {"train": 800, "validation": 100, "test": 100}


def test_stratified_split_keeps_class_proportions(table: pd.DataFrame) -> None:
    split = run(table, "stratified")
    overall = table["label"].value_counts(normalize=True)
    for name in ("train", "validation", "test"):
        labels = table["label"].to_numpy()[getattr(split, name)]
        shares = pd.Series(labels).value_counts(normalize=True)
        for label, share in overall.items():
            assert shares[label] == pytest.approx(share, abs=0.02), (name, label)


def test_random_split_without_validation(table: pd.DataFrame) -> None:
    split = split_rows(table, SplitConfig(fractions=[0.75, 0.25]), stratify_on=None)
    assert split.sizes() == {"train": 750, "validation": 0, "test": 250}


def test_stratified_needs_an_output() -> None:
    with pytest.raises(ConfigError, match="stratified"):
        split_rows(pd.DataFrame({"x": [1, 2]}), SplitConfig(method="stratified"), stratify_on=None)


def test_time_split_orders_rows_by_time(table: pd.DataFrame) -> None:
    split = run(table, "time")
    times = table["time"].to_numpy()
    assert times[split.train].max() < times[split.validation].min()
    assert times[split.validation].max() < times[split.test].min()


def test_time_split_parses_date_strings() -> None:
    dates = pd.date_range("2024-01-01", periods=20, freq="D").strftime("%Y-%m-%d").tolist()
    shuffled = np.random.default_rng(3).permutation(dates)
    frame = pd.DataFrame({"when": shuffled, "y": range(20)})
    split = split_rows(
        frame, SplitConfig(method="time", time_column="when", fractions=[0.8, 0.1, 0.1]), stratify_on=None
    )
    assert sorted(frame["when"].to_numpy()[split.test].tolist()) == dates[-2:]
    assert sorted(frame["when"].to_numpy()[split.train].tolist()) == dates[:16]


def test_time_split_bad_value_names_the_row() -> None:
    frame = pd.DataFrame({"when": ["2024-01-01", "2024-01-02", "soon", "2024-01-04"]})
    with pytest.raises(DataError) as caught:
        split_rows(frame, SplitConfig(method="time", time_column="when"), stratify_on=None, source="t.csv")
    assert (caught.value.row, caught.value.column, caught.value.source) == (3, "when", "t.csv")
    assert "'soon'" in str(caught.value)


def test_time_split_missing_time_is_an_error() -> None:
    frame = pd.DataFrame({"when": [1.0, np.nan, 3.0]})
    with pytest.raises(DataError, match="empty cells"):
        split_rows(frame, SplitConfig(method="time", time_column="when"), stratify_on=None)


def test_time_column_must_exist() -> None:
    with pytest.raises(DataError, match="time column 'when' not found"):
        split_rows(pd.DataFrame({"x": [1]}), SplitConfig(method="time", time_column="when"), stratify_on=None)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("train", "train"),
        ("Training", "train"),
        (" TRAIN ", "train"),
        ("validation", "validation"),
        ("valid", "validation"),
        ("val", "validation"),
        ("dev", "validation"),
        ("test", "test"),
        ("Testing", "test"),
        (0, "train"),
        (1, "validation"),
        (2, "test"),
        ("holdout", None),
        (None, None),
    ],
)
def test_split_value_spellings(spelling: object, expected: str | None) -> None:
    assert normalize_split_value(spelling) == expected


def test_column_split_follows_the_column() -> None:
    values = ["train", "Validation", "TEST", "training", "val", "test", "train", "dev"]
    frame = pd.DataFrame({"split": values, "label": list("abababab")})
    split = split_rows(frame, SplitConfig(method="column"), stratify_on="label")
    assert split.train.tolist() == [0, 3, 6]
    assert split.validation.tolist() == [1, 4, 7]
    assert split.test.tolist() == [2, 5]


def test_column_split_carves_validation_from_train_when_absent(table: pd.DataFrame) -> None:
    split = run(table, "column")
    is_train = table["split"].str.lower().str.startswith("train").to_numpy()
    train_rows = np.flatnonzero(is_train)
    assert len(split.validation) == round(0.1 * len(train_rows))
    assert set(split.validation) <= set(train_rows)  # carved from training rows only
    assert set(split.test) == set(np.flatnonzero(~is_train))


def test_column_split_carving_can_be_turned_off(table: pd.DataFrame) -> None:
    options = SplitConfig(method="column", validation_from_train=0.0)
    split = split_rows(table, options, stratify_on="label")
    assert len(split.validation) == 0


def test_column_split_bad_value_names_the_row() -> None:
    frame = pd.DataFrame({"split": ["train", "test", "holdout", "train"]})
    with pytest.raises(DataError) as caught:
        split_rows(frame, SplitConfig(method="column"), stratify_on=None, source="t.csv")
    assert (caught.value.row, caught.value.column, caught.value.source) == (3, "split", "t.csv")
    assert "'holdout'" in str(caught.value)


def test_column_split_row_numbers_follow_the_original_index() -> None:
    """After cleaning drops rows, the frame keeps the original index: messages name the file's row."""
    frame = pd.DataFrame({"split": ["train", "holdout"]}, index=[4, 9])
    with pytest.raises(DataError) as caught:
        split_rows(frame, SplitConfig(method="column"), stratify_on=None)
    assert caught.value.row == 10


def test_column_split_needs_its_column() -> None:
    with pytest.raises(DataError, match="split column 'split' not found"):
        split_rows(pd.DataFrame({"x": [1, 2]}), SplitConfig(method="column"), stratify_on=None)


def test_a_split_without_training_rows_is_refused() -> None:
    frame = pd.DataFrame({"split": ["test", "test", "validation"]})
    with pytest.raises(DataError, match="no training rows"):
        split_rows(frame, SplitConfig(method="column"), stratify_on=None)


def test_check_catches_overlap() -> None:
    with pytest.raises(AssertionError):
        Split(np.array([0, 1]), np.array([1]), np.array([2]), method="random").check(3)


def test_column_split_holds_out_at_least_one_row_of_a_tiny_training_set() -> None:
    frame = pd.DataFrame({"split": ["train"] * 6 + ["test"] * 2, "label": list("abcdefab")})
    split = split_rows(frame, SplitConfig(method="column"), stratify_on="label")
    assert len(split.validation) == 1
    assert set(split.validation) <= set(range(6))
    assert len(split.train) == 5
