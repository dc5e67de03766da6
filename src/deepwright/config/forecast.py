"""The config of a forecast (model_type forecast): one long series → windows of `lookback` steps → the next
`horizon` values."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from deepwright.config.base import Initializer, Strict, with_default_type
from deepwright.config.combiner import CombinerConfig, ConcatCombinerConfig
from deepwright.config.encoders import SequenceEncoderConfig, SequenceRnnEncoderConfig
from deepwright.config.features import FeatureConfig
from deepwright.config.preprocessing import ForecastPreprocessingConfig
from deepwright.config.trainer import TrainerConfig

STEP_TYPES = ("number", "binary", "category")  # feature types a forecast reads at each step


class ForecastConfig(Strict):
    """Forecasting a series: the rows are time steps; from the last `lookback` steps of every input and output
    column, predict each output `horizon` steps ahead. A window belongs to the split of its forecast steps, and no
    forecast step of a later split is ever read by an earlier split's window."""

    model_type: Literal["forecast"]
    name: str | None = Field(default=None, description="run name; unset: the data file's name")
    time_column: str | list[str] | None = Field(
        default=None,
        description="the column of times (dates or numbers), or the date-part columns to combine (year, month, "
        "day, hour, minute, second); unset: the rows are in time order",
    )
    frequency: str | None = Field(
        default=None,
        description="the step between rows: a pandas offset alias (MS, D, h…) or a number for numeric times; "
        "unset: inferred from the training rows",
    )
    lookback: int = Field(default=24, gt=0, description="past steps each forecast reads")
    horizon: int = Field(default=1, gt=0, description="future steps each forecast predicts")
    seasonal_period: int | None = Field(
        default=None, gt=0, description="steps in one season, for the seasonal-naive baseline; unset: none"
    )
    gaps: Literal["error", "fill"] = Field(
        default="error", description="a missing step in the time index: an error, or fill it with an empty row"
    )
    history_across_splits: bool = Field(
        default=True,
        description="validation and test windows may read their lookback from earlier splits (values known when "
        "forecasting); false: every window lies wholly inside one split",
    )
    input_features: list[FeatureConfig] = Field(
        default=[], description="other columns read at each step (number, binary, category)"
    )
    output_features: list[FeatureConfig] = Field(
        min_length=1, description="the number columns forecast; their own past is always read too"
    )
    encoder: SequenceEncoderConfig = SequenceRnnEncoderConfig()
    linear: bool = Field(
        default=True, description="add a linear autoregressive term on each output's past beside the network"
    )
    combiner: CombinerConfig = ConcatCombinerConfig()
    initializer: Initializer = Field(default="default", description="weight initialisation of every layer")
    preprocessing: ForecastPreprocessingConfig = ForecastPreprocessingConfig()
    trainer: TrainerConfig = TrainerConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_types(cls, data: Any) -> Any:
        return with_default_type(with_default_type(data, "encoder", "rnn"), "combiner", "concat")

    @model_validator(mode="after")
    def _features_per_step(self) -> ForecastConfig:
        problems = []
        times = [self.time_column] if isinstance(self.time_column, str) else list(self.time_column or [])
        seen: set[str] = set(times)
        for role, features, allowed in (
            ("input_features", self.input_features, STEP_TYPES),
            ("output_features", self.output_features, ("number",)),
        ):
            for index, feature in enumerate(features):
                if feature.name in seen:
                    used = "the time column" if feature.name in times else "used twice"
                    problems.append(f"{role}[{index}]: column {feature.name!r} is {used}")
                seen.add(feature.name)
                if feature.type not in allowed:
                    problems.append(
                        f"{role}[{index}]: a forecast reads {', '.join(allowed)} columns at each step, not "
                        f"{feature.type!r}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def output_names(self) -> list[str]:
        """The output columns, in config order."""
        return [feature.name for feature in self.output_features]
