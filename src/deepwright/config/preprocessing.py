"""How rows (or time steps) are divided into training, validation and test sets."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from deepwright.config.base import Strict


def split_fractions(fractions: list[float]) -> list[float]:
    """`fractions` as [train, validation, test] (two values are [train, test]), checked to sum to 1.

    >>> split_fractions([0.75, 0.25])
    [0.75, 0.0, 0.25]
    """
    if len(fractions) not in (2, 3):
        raise ValueError("give [train, validation, test] or [train, test]")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, they sum to {sum(fractions):g}")
    if fractions[0] <= 0:
        raise ValueError("the training fraction must be above 0")
    return fractions if len(fractions) == 3 else [fractions[0], 0.0, fractions[1]]


class SplitConfig(Strict):
    """How rows are divided into training, validation and test sets (the same seed gives the same split)."""

    method: Literal["random", "stratified", "column", "time"] = Field(
        default="random",
        description="random; stratified on the (first) output; column: an existing column of "
        "train/validation/test; time: in order of time_column",
    )
    fractions: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default=[0.8, 0.1, 0.1], description="[train, validation, test] or [train, test]; they sum to 1"
    )
    seed: int = 42
    column: str = Field(default="split", description="for method 'column'")
    time_column: str | None = Field(default=None, description="for method 'time'")
    validation_from_train: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="method 'column': share of training rows held out when the column has no validation rows",
    )

    @field_validator("fractions")
    @classmethod
    def _fractions_sum_to_one(cls, fractions: list[float]) -> list[float]:
        return split_fractions(fractions)

    @model_validator(mode="after")
    def _time_needs_column(self) -> SplitConfig:
        if self.method == "time" and not self.time_column:
            raise ValueError("method 'time' needs time_column, the column to order rows by")
        return self


class PreprocessingConfig(Strict):
    """Table-wide preprocessing; per-column options live on each feature."""

    split: SplitConfig = SplitConfig()


class ForecastSplitConfig(Strict):
    """How the steps are divided in time: training steps, then validation steps, then test steps."""

    method: Literal["time", "column"] = Field(
        default="time", description="time: consecutive shares of the steps; column: a train/validation/test column"
    )
    fractions: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default=[0.8, 0.1, 0.1], description="[train, validation, test] or [train, test] shares of the steps"
    )
    column: str = Field(default="split", description="for method 'column': train, then validation, then test")
    validation_from_train: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="method 'column': the last share of the training steps held out when there is no validation",
    )

    @field_validator("fractions")
    @classmethod
    def _fractions_sum_to_one(cls, fractions: list[float]) -> list[float]:
        return split_fractions(fractions)


class ForecastPreprocessingConfig(Strict):
    """Preprocessing of a forecast; per-column options live on each feature."""

    split: ForecastSplitConfig = ForecastSplitConfig()
