"""Building blocks every config schema shares: the strict base class, defaults for tagged sections, the
missing-value options, and the option names (activations, initialisers) used across schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The key under which passthrough features (numbers, binaries) travel together as one matrix.
PASSTHROUGH_KEY = "__passthrough__"


class Strict(BaseModel):
    """Base of every schema: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def with_default_type(data: Any, key: str, default: str) -> Any:
    """`data` with `type: default` filled into the mapping under `key` when it names no type."""
    if isinstance(data, dict) and isinstance(data.get(key), dict) and "type" not in data[key]:
        return {**data, key: {"type": default, **data[key]}}
    return data


Activation = Literal["relu", "tanh", "sigmoid", "gelu"]


Initializer = Literal[
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal", "orthogonal"
]


MissingStrategy = Literal["drop_row", "mean", "median", "most_frequent", "constant", "error"]


class MissingValues(Strict):
    """What to do with an empty cell in an input column. Fill values are learned on the training split only."""

    strategy: MissingStrategy | None = Field(
        default=None,
        description="drop_row, mean, median, most_frequent, constant (fill_value) or error; "
        "unset: mean for numbers, most_frequent for binaries, its own category for categories",
    )
    fill_value: float | int | str | bool | None = Field(default=None, description="the value for 'constant'")
    indicator: bool = Field(default=False, description="add a 0/1 input saying the value was missing")

    @model_validator(mode="after")
    def _constant_needs_value(self) -> MissingValues:
        if self.strategy == "constant" and self.fill_value is None:
            raise ValueError("strategy 'constant' needs a fill_value, e.g. {strategy: constant, fill_value: 0}")
        return self


def files_cannot_be_filled(missing: MissingValues, what: str) -> MissingValues:
    """`missing` when its strategy suits a column of files (which no value can fill in)."""
    if missing.strategy not in ("error", "drop_row"):
        raise ValueError(f"{what} cannot be filled in; use strategy 'error' or 'drop_row'")
    return missing
