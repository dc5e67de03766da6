"""The input and output columns of a table: one schema per feature type, and their tagged union."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from deepwright.config.base import MissingValues, Strict, files_cannot_be_filled, with_default_type
from deepwright.config.encoders import (
    BagEncoderConfig,
    CategoryEncoderConfig,
    EmbeddingEncoderConfig,
    SequenceEncoderConfig,
    SequenceRnnEncoderConfig,
    TextEncoderConfig,
)
from deepwright.config.media import AudioFeatureConfig, ImageFeatureConfig
from deepwright.config.tokenizers import TokenizerConfig, WordTokenizerConfig


class NumberFeatureConfig(Strict):
    """A numeric column. As input it is normalised and passed through; as output it is a regression."""

    name: str = Field(min_length=1, description="the column's name in the data")
    type: Literal["number"]
    missing: MissingValues = MissingValues()
    normalization: Literal["zscore", "minmax", "log", "none"] = Field(
        default="zscore", description="statistics come from the training split; log is log1p then z-score"
    )
    loss: Literal["mse", "huber"] = Field(default="mse", description="output only")
    weight: float = Field(default=1.0, gt=0, description="output only: weight of this output's loss")


class BinaryFeatureConfig(Strict):
    """A column with two values (0/1, true/false, yes/no, any two strings)."""

    name: str = Field(min_length=1)
    type: Literal["binary"]
    missing: MissingValues = MissingValues()
    positive_label: str | int | float | bool | None = Field(
        default=None, description="the value that counts as 1; unset: the larger of the two (1, true, 'yes')"
    )
    threshold: float = Field(default=0.5, gt=0, lt=1, description="output only: probability → label cut")
    weight: float = Field(default=1.0, gt=0, description="output only: weight of this output's loss")


class CategoryFeatureConfig(Strict):
    """A column of labels. Values not seen in training fall into an 'unknown' bucket."""

    name: str = Field(min_length=1)
    type: Literal["category"]
    missing: MissingValues = MissingValues()
    encoder: CategoryEncoderConfig = EmbeddingEncoderConfig()
    max_values: int | None = Field(default=None, gt=0, description="keep the most frequent values only")
    min_count: int = Field(default=1, ge=1, description="values seen fewer times go to 'unknown'")
    weight: float = Field(default=1.0, gt=0, description="output only: weight of this output's loss")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1, description="output only")
    class_weights: Literal["balanced"] | None = Field(
        default=None, description="output only: 'balanced' weighs classes by inverse frequency"
    )
    top_k: int = Field(default=3, ge=1, description="output only: k of the top-k accuracy metric")

    @model_validator(mode="before")
    @classmethod
    def _default_encoder_type(cls, data: Any) -> Any:
        return with_default_type(data, "encoder", "embedding")


class TextFeatureConfig(Strict):
    """Free text, split into tokens by a tokenizer learned on the training split. The encoder is a bag of
    embeddings, or token embeddings read by a sequence block: rnn, transformer or conv1d (as for sequences); or
    a pretrained checkpoint's encoder, which brings its own tokenizer (`max_length` and `truncation` still apply)."""

    renamed_keys: ClassVar[dict[str, str]] = {"embedding_size": "embedding_dim"}

    name: str = Field(min_length=1)
    type: Literal["text"]
    missing: MissingValues = MissingValues()
    tokenizer: TokenizerConfig = WordTokenizerConfig()
    encoder: TextEncoderConfig = BagEncoderConfig()
    embedding_dim: int = Field(
        default=64, gt=0, description="token embedding width for the rnn, transformer and conv1d encoders"
    )
    max_length: int = Field(default=256, gt=0, description="tokens kept per text")
    truncation: Literal["right", "left"] = Field(default="right", description="which end loses tokens")
    padding: Literal["longest", "max_length"] = Field(
        default="longest", description="pad every text to the longest one (at most max_length), or to max_length"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_types(cls, data: Any) -> Any:
        return with_default_type(with_default_type(data, "tokenizer", "word"), "encoder", "bag")

    @model_validator(mode="after")
    def _pretrained_brings_its_tokenizer(self) -> TextFeatureConfig:
        if self.encoder.type == "pretrained" and self.tokenizer != WordTokenizerConfig():
            raise ValueError("a pretrained encoder tokenizes with its checkpoint's tokenizer.json; remove tokenizer")
        return self


class SequenceFeatureConfig(Strict):
    """A column of token sequences: tokens separated by spaces, or a JSON list. The vocabulary (with `<pad>` and
    `<unk>` tokens) is learned on the training split; tokens seen fewer than `min_count` times are `<unk>`."""

    renamed_keys: ClassVar[dict[str, str]] = {"embedding_size": "embedding_dim"}

    name: str = Field(min_length=1)
    type: Literal["sequence"]
    missing: MissingValues = MissingValues(strategy="error")
    vocab_size: int = Field(default=10_000, gt=2, description="the most frequent tokens kept, specials included")
    min_count: int = Field(default=1, ge=1)
    lowercase: bool = False
    max_length: int = Field(default=256, gt=0, description="tokens kept per sequence")
    truncation: Literal["right", "left"] = Field(default="right", description="which end loses tokens")
    embedding_dim: int = Field(default=64, gt=0)
    encoder: SequenceEncoderConfig = SequenceRnnEncoderConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_encoder_type(cls, data: Any) -> Any:
        return with_default_type(data, "encoder", "rnn")

    @field_validator("missing")
    @classmethod
    def _sequences_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return files_cannot_be_filled(missing, "a sequence")


class TimeseriesFeatureConfig(Strict):
    """A column of numeric series: a JSON list ([[…], […]] for several channels) or numbers separated by spaces,
    commas or semicolons. Normalised per channel with training statistics. As input, series may differ in length
    (padded steps are masked); as output, every series has the same length: the horizon vector."""

    name: str = Field(min_length=1)
    type: Literal["timeseries"]
    missing: MissingValues = MissingValues(strategy="error")
    normalization: Literal["zscore", "minmax", "none"] = "zscore"
    max_length: int | None = Field(default=None, gt=0, description="input: steps kept; unset: the longest in training")
    truncation: Literal["right", "left"] = Field(
        default="left", description="which end loses steps; left keeps the most recent"
    )
    encoder: SequenceEncoderConfig = SequenceRnnEncoderConfig()
    loss: Literal["mse", "huber"] = Field(default="mse", description="output only")
    weight: float = Field(default=1.0, gt=0, description="output only: weight of this output's loss")

    @model_validator(mode="before")
    @classmethod
    def _default_encoder_type(cls, data: Any) -> Any:
        return with_default_type(data, "encoder", "rnn")

    @field_validator("missing")
    @classmethod
    def _series_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return files_cannot_be_filled(missing, "a series")


FeatureConfig = Annotated[
    NumberFeatureConfig
    | BinaryFeatureConfig
    | CategoryFeatureConfig
    | TextFeatureConfig
    | ImageFeatureConfig
    | AudioFeatureConfig
    | SequenceFeatureConfig
    | TimeseriesFeatureConfig,
    Field(discriminator="type"),
]


OUTPUT_TYPES = ("number", "binary", "category", "timeseries")
