"""The errors a user can cause. Each message names the file, row, column or key at fault and how to fix it.

The CLI prints a `DeepwrightError` in one or two lines and exits with status 2; any other exception is a bug
in deepwright and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ConfigError",
    "DataError",
    "DeepwrightError",
    "DeepwrightWarning",
    "DeployError",
    "NotFittedError",
]


class DeepwrightError(Exception):
    """Base class of every error caused by the user's input rather than by deepwright itself."""


class ConfigError(DeepwrightError):
    """A config that cannot be used: an unknown key, a wrong type, or options that contradict each other.

    >>> str(ConfigError("trainer.epochs: expected a whole number, got 'ten'"))
    "trainer.epochs: expected a whole number, got 'ten'"
    """


class DataError(DeepwrightError):
    """Data that cannot be used: an unreadable file, a missing column, or a value that cannot be read.

    `column`, `row` and `source` are kept as attributes so that callers can point at the exact cell;
    the message already names them.

    >>> str(DataError("value 'abc' is not a number", column="age", row=17, source="people.csv"))
    "people.csv, row 17, column 'age': value 'abc' is not a number"
    """

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        row: int | None = None,
        source: str | None = None,
    ) -> None:
        self.column = column
        self.row = row
        self.source = source
        self.reason = message
        where = []
        if source is not None:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class BundleError(DeepwrightError):
    """A saved model directory that is missing, incomplete, or changed since it was saved."""


class DeployError(DeepwrightError):
    """A model that cannot be served or exported as asked: a part ONNX cannot express, a port already in use."""


class NotFittedError(DeepwrightError):
    """A method that needs learned state was called before `fit`; the message says what to call first."""


class DeepwrightWarning(UserWarning):
    """Something in the input that deepwright fixed on its own (such as rows sorted into time order); the CLI
    prints it as one 'warning:' line."""
