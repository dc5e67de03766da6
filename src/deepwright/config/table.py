"""The config of a table model (model_type ecd): inputs → encoders → combiner → heads → outputs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from deepwright.config.base import PASSTHROUGH_KEY, Initializer, Strict, with_default_type
from deepwright.config.combiner import CombinerConfig, ConcatCombinerConfig
from deepwright.config.features import OUTPUT_TYPES, FeatureConfig
from deepwright.config.preprocessing import PreprocessingConfig
from deepwright.config.trainer import TrainerConfig


class Config(Strict):
    """A model and how to train it: inputs → encoders → combiner → heads → outputs."""

    model_type: Literal["ecd"] = "ecd"
    name: str | None = Field(
        default=None, description="run name; unset: the data file's name (then -2, -3… when taken)"
    )
    input_features: list[FeatureConfig] = Field(min_length=1)
    output_features: list[FeatureConfig] = Field(min_length=1)
    combiner: CombinerConfig = ConcatCombinerConfig()
    initializer: Initializer = Field(default="default", description="weight initialisation of every layer")
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    trainer: TrainerConfig = TrainerConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_combiner_type(cls, data: Any) -> Any:
        return with_default_type(data, "combiner", "concat")

    @model_validator(mode="after")
    def _names_and_roles(self) -> Config:
        problems = []
        seen: set[str] = set()
        for role, features in (("input_features", self.input_features), ("output_features", self.output_features)):
            for index, feature in enumerate(features):
                if feature.name in seen:
                    problems.append(f"{role}[{index}]: column {feature.name!r} is used twice")
                if feature.name == PASSTHROUGH_KEY:
                    problems.append(f"{role}[{index}]: {PASSTHROUGH_KEY!r} is a reserved name")
                seen.add(feature.name)
        for index, feature in enumerate(self.output_features):
            if feature.type not in OUTPUT_TYPES:
                problems.append(
                    f"output_features[{index}]: type {feature.type!r} cannot be an output; "
                    f"outputs can be {', '.join(OUTPUT_TYPES)}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def output_names(self) -> list[str]:
        """The output columns, in config order."""
        return [feature.name for feature in self.output_features]
