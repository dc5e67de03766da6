"""The combiner: how the encoded inputs become one vector for the output heads."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from deepwright.config.base import Activation, Strict


class ConcatCombinerConfig(Strict):
    """Concatenate every encoded input, then an MLP (the seed's hidden Dense layers)."""

    renamed_keys: ClassVar[dict[str, str]] = {"layers": "dims"}

    type: Literal["concat"] = "concat"
    dims: list[Annotated[int, Field(gt=0)]] = Field(default=[128], description="hidden sizes; [] for none")
    activation: Activation = "relu"
    dropout: float = Field(default=0.0, ge=0, lt=1)
    norm: Literal["batch", "layer"] | None = None


CombinerConfig = Annotated[ConcatCombinerConfig, Field(discriminator="type")]
