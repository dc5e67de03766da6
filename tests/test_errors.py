"""The user-error classes: one base class, and DataError messages that point at the cell."""

from __future__ import annotations

from deepwright.errors import BundleError, ConfigError, DataError, DeepwrightError, NotFittedError


def test_every_user_error_is_a_deepwright_error() -> None:
    for error_class in (ConfigError, DataError, BundleError, NotFittedError):
        assert issubclass(error_class, DeepwrightError)


def test_data_error_names_source_row_and_column() -> None:
    error = DataError("value 'abc' is not a number", column="age", row=17, source="people.csv")
    assert str(error) == "people.csv, row 17, column 'age': value 'abc' is not a number"
    assert (error.source, error.row, error.column, error.reason) == (
        "people.csv",
        17,
        "age",
        "value 'abc' is not a number",
    )


def test_data_error_without_location_is_the_plain_message() -> None:
    assert str(DataError("no rows")) == "no rows"
    assert str(DataError("no rows", source="a.csv")) == "a.csv: no rows"
