"""The config schema: every option deepwright takes, its default, and its validation, in one place.

A config is YAML (or a dict, or these objects) with `input_features`, `output_features`, `combiner`,
`preprocessing` and `trainer`. Unknown keys are errors that suggest the nearest valid key; every problem in a
file is reported at once.

>>> config = load_config({"input_features": [{"name": "x", "type": "number"}],
...                       "output_features": [{"name": "y", "type": "category"}]})
>>> config.trainer.optimizer.type, config.combiner.layers
('adam', [128])
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deepwright.errors import ConfigError

__all__ = [
    "AnyConfig",
    "AudioFeatureConfig",
    "BinaryFeatureConfig",
    "BpeTokenizerConfig",
    "CategoryFeatureConfig",
    "CharTokenizerConfig",
    "ConcatCombinerConfig",
    "Config",
    "FeatureConfig",
    "ForecastConfig",
    "GPTConfig",
    "ImageFeatureConfig",
    "LanguageModelConfig",
    "NumberFeatureConfig",
    "SequenceFeatureConfig",
    "TextFeatureConfig",
    "TimeseriesFeatureConfig",
    "dump_config",
    "json_schema",
    "load_config",
]

# The key under which passthrough features (numbers, binaries) travel together as one matrix.
PASSTHROUGH_KEY = "__passthrough__"


class Strict(BaseModel):
    """Base of every schema: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _with_default_type(data: Any, key: str, default: str) -> Any:
    """`data` with `type: default` filled into the mapping under `key` when it names no type."""
    if isinstance(data, dict) and isinstance(data.get(key), dict) and "type" not in data[key]:
        return {**data, key: {"type": default, **data[key]}}
    return data


# ---------------------------------------------------------------------------------------------------------
# Features


Activation = Literal["relu", "tanh", "sigmoid", "gelu"]
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


class EmbeddingEncoderConfig(Strict):
    """A learned vector per category value."""

    type: Literal["embedding"] = "embedding"
    size: int | None = Field(default=None, gt=0, description="unset: min(50, round(1.6 · values^0.56))")
    dropout: float = Field(default=0.0, ge=0, lt=1)


class OneHotEncoderConfig(Strict):
    """A fixed one-hot vector per category value."""

    type: Literal["onehot"]


CategoryEncoderConfig = Annotated[EmbeddingEncoderConfig | OneHotEncoderConfig, Field(discriminator="type")]


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
        return _with_default_type(data, "encoder", "embedding")


class WordTokenizerConfig(Strict):
    """Words and punctuation marks as tokens, with a vocabulary learned on the training split."""

    type: Literal["word"] = "word"
    lowercase: bool = True
    vocab_size: int = Field(default=20_000, gt=2, description="the most frequent tokens kept, specials included")
    min_count: int = Field(default=2, ge=1, description="tokens seen fewer times in training are 'unknown'")


class CharTokenizerConfig(Strict):
    """Each character is a token; the vocabulary is the characters of the training split."""

    type: Literal["char"]
    lowercase: bool = False
    vocab_size: int | None = Field(
        default=None, gt=2, description="keep the most frequent characters, specials included; unset: all of them"
    )
    min_count: int = Field(default=1, ge=1, description="characters seen fewer times in training are 'unknown'")


class BpeTokenizerConfig(Strict):
    """Byte-level BPE (as GPT-2): merges of UTF-8 bytes learned on the training split; no text is ever 'unknown'."""

    type: Literal["bpe"]
    lowercase: bool = False
    vocab_size: int = Field(
        default=4096, gt=258, description="tokens: the 256 bytes, 2 specials, and the merges learned up to this size"
    )
    min_count: int = Field(default=2, ge=1, description="pairs seen fewer times in training are not merged")


TokenizerConfig = Annotated[WordTokenizerConfig | CharTokenizerConfig | BpeTokenizerConfig, Field(discriminator="type")]


class BagEncoderConfig(Strict):
    """The token embeddings pooled over the text (a bag of words: order is ignored)."""

    type: Literal["bag"] = "bag"
    size: int = Field(default=128, gt=0, description="embedding width")
    pooling: Literal["mean", "max", "mean_max"] = Field(
        default="mean_max", description="mean, element-wise max, or both side by side (twice the width)"
    )
    dropout: float = Field(default=0.0, ge=0, lt=1)


class ConvStackEncoderConfig(Strict):
    """Convolution → norm → activation → max-pool layers, then global average pooling."""

    type: Literal["convstack"] = "convstack"
    channels: list[Annotated[int, Field(gt=0)]] = Field(default=[32, 64, 128], min_length=1)
    kernel_sizes: list[Annotated[int, Field(gt=0)]] | None = Field(default=None, description="unset: 3 each")
    strides: list[Annotated[int, Field(gt=0)]] | None = Field(default=None, description="unset: 1 each")
    paddings: list[Annotated[int, Field(ge=0)]] | None = Field(default=None, description="unset: keep the size")
    pools: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, description="unset: 2 each (1: none)")
    activation: Activation = "relu"
    norm: Literal["batch", "group"] | None = "batch"
    dropout: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _one_value_per_layer(self) -> ConvStackEncoderConfig:
        for key in ("kernel_sizes", "strides", "paddings", "pools"):
            values = getattr(self, key)
            if values is not None and len(values) != len(self.channels):
                raise ValueError(f"{key} has {len(values)} values for {len(self.channels)} layers in channels")
        return self


class ResNetEncoderConfig(Strict):
    """A small ResNet of basic residual blocks; each stage after the first halves the size and doubles the width."""

    type: Literal["resnet"]
    width: int = Field(default=32, gt=0, description="channels of the first stage")
    blocks: list[Annotated[int, Field(gt=0)]] = Field(default=[2, 2, 2], min_length=1, description="blocks per stage")
    norm: Literal["batch", "group"] | None = "batch"


ImageEncoderConfig = Annotated[ConvStackEncoderConfig | ResNetEncoderConfig, Field(discriminator="type")]


class Augmentation(Strict):
    """One random transformation, applied to each training image with `probability`."""

    probability: float = Field(default=0.5, ge=0, le=1)


class ResizedCrop(Augmentation):
    """Crop a random area (a share `scale` of the image, aspect ratio in `ratio`) and resize it back."""

    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (0.9, 1.1)


class PaddedCrop(Augmentation):
    """Shift the image by up to `padding` pixels each way (a crop of the zero-padded image)."""

    padding: int = Field(default=2, ge=1)


class Rotation(Augmentation):
    """Rotate by a random angle of up to `degrees` either way."""

    degrees: float = Field(default=10.0, gt=0, le=180)


class ColorJitter(Augmentation):
    """Scale brightness by 1 ± `brightness` and contrast by 1 ± `contrast`."""

    brightness: float = Field(default=0.2, ge=0, lt=1)
    contrast: float = Field(default=0.2, ge=0, lt=1)


class ImageAugmentationConfig(Strict):
    """Random transformations of training images only (never at validation, test or predict time); each is off
    unless given. The trainer's seed fixes the random stream."""

    resized_crop: ResizedCrop | None = None
    padded_crop: PaddedCrop | None = None
    horizontal_flip: Augmentation | None = None
    rotation: Rotation | None = None
    color_jitter: ColorJitter | None = None


class ImageFeatureConfig(Strict):
    """Image files (PNG, JPEG, BMP, …) given by path, relative to the data file's folder; in requests, base64."""

    name: str = Field(min_length=1)
    type: Literal["image"]
    missing: MissingValues = MissingValues(strategy="error")
    size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = Field(
        default=None, description="[height, width] every image is resized to; unset: the most common training size"
    )
    keep_aspect_ratio: bool = Field(default=False, description="resize within the size and pad, not stretch")
    channels: Literal[1, 3] | None = Field(
        default=None, description="1 (grey) or 3 (RGB); unset: 1 if every training image is grey, else 3"
    )
    encoder: ImageEncoderConfig = ConvStackEncoderConfig()
    augmentation: ImageAugmentationConfig = ImageAugmentationConfig()
    cache_memory_mb: int = Field(
        default=2048,
        ge=0,
        description="decoded images up to this size are decoded once and kept (memory-mapped cache file); "
        "beyond it they are decoded for every batch, in worker processes",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_encoder_type(cls, data: Any) -> Any:
        return _with_default_type(data, "encoder", "convstack")

    @field_validator("missing")
    @classmethod
    def _images_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return _files_cannot_be_filled(missing, "an image")


def _files_cannot_be_filled(missing: MissingValues, what: str) -> MissingValues:
    """`missing` when its strategy suits a column of files (which no value can fill in)."""
    if missing.strategy not in ("error", "drop_row"):
        raise ValueError(f"{what} cannot be filled in; use strategy 'error' or 'drop_row'")
    return missing


class Conv1DEncoderConfig(ConvStackEncoderConfig):
    """A ConvStack over spectrogram frames (1-D convolutions along time; the mel bins are the input channels)."""

    type: Literal["conv1d"]


class RecurrentEncoderConfig(Strict):
    """A GRU or LSTM over spectrogram frames; the encoding is the mean of its outputs over time."""

    type: Literal["rnn"]
    cell: Literal["gru", "lstm"] = "gru"
    hidden_size: int = Field(default=128, gt=0)
    layers: int = Field(default=2, gt=0)
    bidirectional: bool = True
    dropout: float = Field(default=0.0, ge=0, lt=1, description="between recurrent layers")


class TransformerEncoderConfig(Strict):
    """A small Transformer encoder over spectrogram frames (learned positions); the encoding is the mean over time."""

    type: Literal["transformer"]
    size: int = Field(default=128, gt=0, description="model width; frames are projected to it")
    heads: int = Field(default=4, gt=0)
    layers: int = Field(default=2, gt=0)
    feedforward: int = Field(default=256, gt=0, description="hidden size of each layer's feed-forward block")
    dropout: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_size(self) -> TransformerEncoderConfig:
        if self.size % self.heads:
            raise ValueError(f"size {self.size} must be a multiple of heads {self.heads}")
        return self


AudioEncoderConfig = Annotated[
    ConvStackEncoderConfig
    | ResNetEncoderConfig
    | Conv1DEncoderConfig
    | RecurrentEncoderConfig
    | TransformerEncoderConfig,
    Field(discriminator="type"),
]


class TimeShift(Augmentation):
    """Shift the clip by up to `seconds` either way; the gap is silence."""

    seconds: float = Field(default=0.1, gt=0)


class Noise(Augmentation):
    """Add white noise at a signal-to-noise ratio drawn uniformly from `snr_db` (decibels; equal bounds: fixed)."""

    snr_db: tuple[float, float] = (10.0, 30.0)

    @field_validator("snr_db")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if bounds[0] > bounds[1]:
            raise ValueError(f"give [lowest, highest] decibels; {bounds[0]:g} is above {bounds[1]:g}")
        return bounds


class SpectrogramMask(Augmentation):
    """SpecAugment: `count` bands, each of a random width up to `width` frames (time) or mel bins (frequency),
    set to the training mean."""

    count: int = Field(default=2, ge=1)
    width: int = Field(default=8, ge=1)


class AudioAugmentationConfig(Strict):
    """Random changes to training clips only (never at validation, test or predict time); each is off unless given.
    The trainer's seed fixes the random stream."""

    time_shift: TimeShift | None = None
    noise: Noise | None = None
    time_mask: SpectrogramMask | None = None
    frequency_mask: SpectrogramMask | None = None


# Four layers, so that the receptive field spans a good part of the mel axis before global pooling (three layers of
# [16, 32, 64] reached 0.77 on spoken digits, four 0.99).
AUDIO_CONV_CHANNELS = [16, 32, 64, 128]


class AudioFeatureConfig(Strict):
    """Audio files (WAV, FLAC, OGG; read with soundfile) given by path, relative to the data file's folder; in
    requests, base64. Each clip is mixed down to mono, resampled to `sample_rate`, cut or padded to `duration`,
    and turned into a log-mel spectrogram normalised with the training statistics."""

    name: str = Field(min_length=1)
    type: Literal["audio"]
    missing: MissingValues = MissingValues(strategy="error")
    sample_rate: int | None = Field(
        default=None, gt=0, description="Hz every clip is resampled to; unset: the most common training rate"
    )
    duration: float | None = Field(
        default=None,
        gt=0,
        description="seconds the model hears: longer clips are cropped, shorter ones padded with silence (both "
        "centred); unset: the 99th percentile of training clip lengths, rounded up to a tenth of a second",
    )
    crop: Literal["center", "random"] = Field(
        default="center",
        description="the window of a longer training clip: its centre, or a random window within its middle "
        "2 × duration; validation, test and predictions always take the centre",
    )
    window: float = Field(default=0.025, gt=0, description="STFT window in seconds (FFT size: the next power of 2)")
    hop: float = Field(default=0.010, gt=0, description="seconds between spectrogram frames")
    mel_bins: int = Field(default=40, gt=0, description="bands of the mel filterbank")
    encoder: AudioEncoderConfig = Field(
        default=ConvStackEncoderConfig(channels=AUDIO_CONV_CHANNELS),
        description="convstack (2-D over mel bins × frames; channels unset: [16, 32, 64, 128]), resnet, conv1d "
        "(over frames), rnn or transformer",
    )
    augmentation: AudioAugmentationConfig = AudioAugmentationConfig()
    cache_memory_mb: int = Field(
        default=2048,
        ge=0,
        description="decoded clips up to this size are decoded once and kept (memory-mapped cache file); "
        "beyond it they are decoded for every batch, in worker processes",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_encoder(cls, data: Any) -> Any:
        data = _with_default_type(data, "encoder", "convstack")
        encoder = data.get("encoder") if isinstance(data, dict) else None
        if isinstance(encoder, dict) and encoder.get("type") == "convstack" and "channels" not in encoder:
            data = {**data, "encoder": {**encoder, "channels": AUDIO_CONV_CHANNELS}}
        return data

    @field_validator("missing")
    @classmethod
    def _audio_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return _files_cannot_be_filled(missing, "a clip")


class SequenceRnnEncoderConfig(RecurrentEncoderConfig):
    """A recurrent network over the steps (models/recurrent.py): `cell: rnn` is the seed's h_t = σ(W x_t +
    U h_{t-1} + b), y_t = V h_t + c; lstm and gru are PyTorch's cells. Padded steps are packed away."""

    type: Literal["rnn"] = "rnn"
    cell: Literal["rnn", "gru", "lstm"] = "lstm"
    hidden_size: int = Field(default=64, gt=0)
    layers: int = Field(default=1, gt=0)
    bidirectional: bool = False
    activation: Literal["tanh", "relu"] = Field(default="tanh", description="cell rnn only: σ")
    reduction: Literal["last", "mean", "max", "attention"] = Field(
        default="last", description="the outputs y_t → one vector: last step, mean, max, or attention pooling"
    )
    output_size: int | None = Field(
        default=None, gt=0, description="y_t = V h_t + c of this size; unset: y_t = h_t (the layers after it are V)"
    )


class SequenceTransformerEncoderConfig(TransformerEncoderConfig):
    """Pre-norm Transformer encoder blocks over the steps (models/transformer.py); padded steps are masked."""

    type: Literal["transformer"] = "transformer"
    size: int = Field(default=64, gt=0, description="model width; steps are projected to it")
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    pooling: Literal["mean", "cls"] = Field(default="mean", description="mean of the steps, or a learned [CLS] step")


SequenceEncoderConfig = Annotated[
    SequenceRnnEncoderConfig | SequenceTransformerEncoderConfig | Conv1DEncoderConfig, Field(discriminator="type")
]


TextEncoderConfig = Annotated[
    BagEncoderConfig | SequenceRnnEncoderConfig | SequenceTransformerEncoderConfig | Conv1DEncoderConfig,
    Field(discriminator="type"),
]


class TextFeatureConfig(Strict):
    """Free text, split into tokens by a tokenizer learned on the training split. The encoder is a bag of
    embeddings, or token embeddings read by a sequence block: rnn, transformer or conv1d (as for sequences)."""

    name: str = Field(min_length=1)
    type: Literal["text"]
    missing: MissingValues = MissingValues()
    tokenizer: TokenizerConfig = WordTokenizerConfig()
    encoder: TextEncoderConfig = BagEncoderConfig()
    embedding_size: int = Field(
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
        return _with_default_type(_with_default_type(data, "tokenizer", "word"), "encoder", "bag")


class SequenceFeatureConfig(Strict):
    """A column of token sequences: tokens separated by spaces, or a JSON list. The vocabulary (with `<pad>` and
    `<unk>` tokens) is learned on the training split; tokens seen fewer than `min_count` times are `<unk>`."""

    name: str = Field(min_length=1)
    type: Literal["sequence"]
    missing: MissingValues = MissingValues(strategy="error")
    vocab_size: int = Field(default=10_000, gt=2, description="the most frequent tokens kept, specials included")
    min_count: int = Field(default=1, ge=1)
    lowercase: bool = False
    max_length: int = Field(default=256, gt=0, description="tokens kept per sequence")
    truncation: Literal["right", "left"] = Field(default="right", description="which end loses tokens")
    embedding_size: int = Field(default=64, gt=0)
    encoder: SequenceEncoderConfig = SequenceRnnEncoderConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_encoder_type(cls, data: Any) -> Any:
        return _with_default_type(data, "encoder", "rnn")

    @field_validator("missing")
    @classmethod
    def _sequences_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return _files_cannot_be_filled(missing, "a sequence")


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
        return _with_default_type(data, "encoder", "rnn")

    @field_validator("missing")
    @classmethod
    def _series_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return _files_cannot_be_filled(missing, "a series")


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

# ---------------------------------------------------------------------------------------------------------
# Model


class ConcatCombinerConfig(Strict):
    """Concatenate every encoded input, then an MLP (the seed's hidden Dense layers)."""

    type: Literal["concat"] = "concat"
    layers: list[Annotated[int, Field(gt=0)]] = Field(default=[128], description="hidden sizes; [] for none")
    activation: Activation = "relu"
    dropout: float = Field(default=0.0, ge=0, lt=1)
    norm: Literal["batch", "layer"] | None = None


CombinerConfig = Annotated[ConcatCombinerConfig, Field(discriminator="type")]

Initializer = Literal[
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal", "orthogonal"
]

# ---------------------------------------------------------------------------------------------------------
# Preprocessing


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
        if len(fractions) not in (2, 3):
            raise ValueError("give [train, validation, test] or [train, test]")
        if abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, they sum to {sum(fractions):g}")
        if fractions[0] <= 0:
            raise ValueError("the training fraction must be above 0")
        return fractions if len(fractions) == 3 else [fractions[0], 0.0, fractions[1]]

    @model_validator(mode="after")
    def _time_needs_column(self) -> SplitConfig:
        if self.method == "time" and not self.time_column:
            raise ValueError("method 'time' needs time_column, the column to order rows by")
        return self


class PreprocessingConfig(Strict):
    """Table-wide preprocessing; per-column options live on each feature."""

    split: SplitConfig = SplitConfig()


# ---------------------------------------------------------------------------------------------------------
# Training


class OptimizerConfig(Strict):
    """The optimizer and its learning rate."""

    type: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="sgd only")
    nesterov: bool = Field(default=False, description="sgd only")
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="adam and adamw only")


class ScheduleConfig(Strict):
    """The learning-rate schedule: constant, step, cosine (stepped per optimizer step, after an optional linear
    warm-up), or plateau (multiplied by gamma when the validation metric stalls, checked once per epoch)."""

    type: Literal["constant", "step", "cosine", "plateau"] = "constant"
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1, description="linear warm-up over this share of steps")
    step_epochs: int = Field(default=10, gt=0, description="step: multiply by gamma every this many epochs")
    gamma: float = Field(default=0.1, gt=0, le=1, description="step and plateau: the factor applied to lr")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="cosine and plateau: lowest lr as a share of lr")
    plateau_epochs: int = Field(
        default=3, gt=0, description="plateau: epochs without gain in the early-stopping metric (or val_loss)"
    )

    @model_validator(mode="after")
    def _plateau_has_no_warmup(self) -> ScheduleConfig:
        if self.type == "plateau" and self.warmup_fraction > 0:
            raise ValueError("the plateau schedule has no warm-up; set warmup_fraction to 0")
        return self


class EarlyStoppingConfig(Strict):
    """Stop when a validation metric stops improving, and restore the best weights."""

    metric: str = Field(
        default="val_loss",
        description="val_loss, or val_<metric> / val_<output>_<metric> (e.g. val_accuracy)",
    )
    patience: int = Field(default=5, ge=1, description="epochs without improvement before stopping")
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: float = Field(default=0.0, ge=0)


class TrainerConfig(Strict):
    """The training loop's options."""

    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=32, gt=0)
    eval_batch_size: int = Field(default=1024, gt=0)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    early_stopping: EarlyStoppingConfig | None = None
    gradient_clip: float | None = Field(default=None, gt=0, description="clip the gradient norm to this")
    gradient_accumulation: int = Field(default=1, ge=1, description="optimizer step every this many batches")
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: autocast matmuls to bfloat16")
    seed: int = 42
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(
        default=None, gt=0, description="CPU threads for torch; unset: 1 for a small model, else one per core"
    )
    checkpoint: bool = Field(default=True, description="save a checkpoint each epoch (needed for --resume)")


# ---------------------------------------------------------------------------------------------------------
# The whole config


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
        return _with_default_type(data, "combiner", "concat")

    @model_validator(mode="after")
    def _names_and_roles(self) -> Config:
        problems = []
        seen: set[str] = set()
        for role, features in (
            ("input_features", self.input_features),
            ("output_features", self.output_features),
        ):
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


# ---------------------------------------------------------------------------------------------------------
# Language models (model_type: lm): a corpus → a GPT that writes text. Defaults are nanoGPT's CPU configuration.


class CorpusConfig(Strict):
    """Where a language model's text comes from: a text file, a folder of text files, or a table's text column."""

    column: str | None = Field(default=None, description="for a table (CSV, Parquet…): the column holding the text")
    separator: str = Field(default="\n\n", description="what joins the files of a folder or the rows of a column")
    suffixes: list[str] = Field(default=[".txt"], min_length=1, description="for a folder: the files read")
    validation_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="the last share of the text is held out for validation (as nanoGPT)"
    )
    encoding_errors: Literal["strict", "replace"] = Field(
        default="strict",
        description="strict: bytes that are not UTF-8 are an error naming the file and byte offset; "
        "replace: they become U+FFFD",
    )


class GPTConfig(Strict):
    """The GPT decoder's size: pre-norm causal self-attention blocks with GELU MLPs."""

    layers: int = Field(default=4, gt=0)
    heads: int = Field(default=4, gt=0)
    dim: int = Field(default=128, gt=0, description="width of the token vectors")
    block_size: int = Field(default=64, gt=1, description="the longest context, in tokens")
    dropout: float = Field(default=0.0, ge=0, lt=1)
    bias: bool = Field(default=False, description="biases in the linear layers and layer norms")
    tie_weights: bool = Field(default=True, description="the output layer shares the token embedding's weights")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> GPTConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        return self


class LanguageModelOptimizerConfig(OptimizerConfig):
    """AdamW with nanoGPT's settings, unless the config says otherwise."""

    type: Literal["sgd", "adam", "adamw"] = "adamw"
    weight_decay: float = Field(default=0.1, ge=0, description="matrices only; biases, norms do not decay")
    betas: tuple[float, float] = (0.9, 0.99)


class LanguageModelScheduleConfig(Strict):
    """The learning rate per step: a linear warm-up, then constant or a cosine decay to min_lr_ratio · lr."""

    type: Literal["constant", "cosine"] = "cosine"
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1, description="linear warm-up over this share of steps")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="cosine: the last lr as a share of lr")


class LanguageModelTrainerConfig(Strict):
    """The language model's training loop: steps over random blocks of the corpus."""

    max_steps: int = Field(default=2000, gt=0, description="optimizer steps")
    batch_size: int = Field(default=12, gt=0, description="blocks per step")
    eval_every: int = Field(default=250, gt=0, description="estimate the losses (and checkpoint) every this many steps")
    eval_batches: int = Field(default=20, gt=0, description="random batches each estimate averages")
    optimizer: LanguageModelOptimizerConfig = LanguageModelOptimizerConfig()
    schedule: LanguageModelScheduleConfig = LanguageModelScheduleConfig()
    gradient_clip: float | None = Field(default=1.0, gt=0, description="clip the gradient norm to this")
    gradient_accumulation: int = Field(default=1, ge=1, description="batches per optimizer step")
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: autocast matmuls to bfloat16")
    compile: bool = Field(default=False, description="torch.compile the model (slow start, faster steps)")
    seed: int = 42
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(
        default=None, gt=0, description="CPU threads for torch; unset: 1 for a small model, else one per core"
    )
    checkpoint: bool = Field(default=True, description="save a checkpoint at each estimate (needed for --resume)")


class GenerationConfig(Strict):
    """Sampling defaults for `deepwright generate` and `Pipeline.generate` (each can be overridden per call)."""

    max_new_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.8, ge=0, description="0: always the most likely token")
    top_k: int | None = Field(default=200, ge=0, description="sample among the k most likely tokens only (0: all)")
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="sample among the most likely tokens whose probabilities reach p (1: all)"
    )
    stop: list[str] = Field(default=[], description="stop before any of these strings")


class LanguageModelConfig(Strict):
    """A causal language model: a tokenizer learned on the corpus and a GPT trained to predict the next token."""

    model_type: Literal["lm"]
    name: str | None = Field(default=None, description="run name; unset: the corpus file's name")
    corpus: CorpusConfig = CorpusConfig()
    tokenizer: TokenizerConfig = CharTokenizerConfig(type="char")
    model: GPTConfig = GPTConfig()
    trainer: LanguageModelTrainerConfig = LanguageModelTrainerConfig()
    generation: GenerationConfig = GenerationConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_tokenizer_type(cls, data: Any) -> Any:
        return _with_default_type(data, "tokenizer", "char")

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_can_write(cls, tokenizer: Any) -> Any:
        if tokenizer.type == "word":
            raise ValueError("a word tokenizer drops spaces and cannot write text back; use type 'char' or 'bpe'")
        return tokenizer


# ---------------------------------------------------------------------------------------------------------
# Forecasting (model_type: forecast): one long series → windows of `lookback` steps → the next `horizon` values.

STEP_TYPES = ("number", "binary", "category")  # feature types a forecast reads at each step


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
        return SplitConfig._fractions_sum_to_one(fractions)


class ForecastPreprocessingConfig(Strict):
    """Preprocessing of a forecast; per-column options live on each feature."""

    split: ForecastSplitConfig = ForecastSplitConfig()


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
        return _with_default_type(_with_default_type(data, "encoder", "rnn"), "combiner", "concat")

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


# The config class of each model_type.
MODEL_TYPES: dict[str, type[BaseModel]] = {"ecd": Config, "lm": LanguageModelConfig, "forecast": ForecastConfig}
AnyConfig = Config | LanguageModelConfig | ForecastConfig


# ---------------------------------------------------------------------------------------------------------
# Loading, saving, and readable errors


def load_config(source: str | Path | dict | AnyConfig) -> AnyConfig:
    """Read and validate a config from a YAML/JSON path, a dict, or an existing `Config`.

    `model_type` chooses the schema: `ecd` (the default, a `Config`), `lm` (a `LanguageModelConfig`) or
    `forecast` (a `ForecastConfig`).
    Every problem is reported in one `ConfigError`, one line each, naming the key path; an unknown key
    gets the nearest valid key as a suggestion.
    """
    if isinstance(source, (Config, LanguageModelConfig, ForecastConfig)):
        return source
    origin = None
    if isinstance(source, (str, Path)):
        origin = str(source)
        data = _read_config_file(Path(source))
    elif isinstance(source, dict):
        data = source
    else:
        raise ConfigError(f"a config is a file path, a dict or a Config, not {type(source).__name__}")
    if not isinstance(data, dict):
        raise ConfigError(f"{origin or 'config'}: the top level must be a mapping of keys, e.g. 'input_features:'")
    prefix = f"{origin}: " if origin else ""
    root = _root_model(data, prefix)
    try:
        return root.model_validate(data)
    except ValidationError as error:
        lines = [_describe(issue, root) for issue in error.errors()]
        unique = list(dict.fromkeys(lines))
        raise ConfigError(prefix + "\n  ".join(["invalid config:", *unique])) from None


def dump_config(config: Config) -> dict:
    """The config as plain JSON-able data, every default filled in (what a run and a bundle record)."""
    return config.model_dump(mode="json")


def json_schema(model_type: str = "ecd") -> dict:
    """The JSON Schema of a config file of `model_type` ('ecd' or 'lm'), for editors that complete and check YAML."""
    return MODEL_TYPES[model_type].model_json_schema()


def _root_model(data: dict, prefix: str) -> type[BaseModel]:
    """The schema that `data`'s `model_type` names (ecd when absent)."""
    model_type = data.get("model_type", "ecd")
    if model_type not in MODEL_TYPES:
        close = difflib.get_close_matches(str(model_type), MODEL_TYPES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        choices = ", ".join(MODEL_TYPES)
        raise ConfigError(
            f"{prefix}invalid config:\n  model_type: {model_type!r} is not a choice; {hint}choices: {choices}"
        )
    return MODEL_TYPES[model_type]


def _read_config_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config ({error})") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: not valid YAML{where}: {reason}") from None


def _describe(issue: dict, root: type[BaseModel] = Config) -> str:
    """One line for one pydantic issue: the key path as the user wrote it, then what is wrong."""
    path, parent, annotation = _resolve_location(issue["loc"], root)
    kind = issue["type"]
    if kind == "extra_forbidden":
        key = str(issue["loc"][-1])
        valid = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"{path}: unknown key; {hint}"
    if kind == "union_tag_invalid":
        tag, expected = issue["ctx"]["tag"], issue["ctx"]["expected_tags"]
        choices = [choice.strip(" '") for choice in expected.split(",")]
        close = difflib.get_close_matches(tag, choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{path}.type: unknown type {tag!r}; {hint}choices: {', '.join(choices)}"
    if kind == "union_tag_not_found":
        tags = [_type_tag(member) for member in _union_members(_unwrap(annotation)) or (annotation,)]
        return f"{path}: missing key 'type'; choices: {', '.join(str(tag) for tag in tags)}"
    if kind == "missing":
        return f"{path}: missing required key"
    if kind == "literal_error":
        choices = [choice.strip(" '") for choice in issue["ctx"]["expected"].replace(" or ", ", ").split(",")]
        close = difflib.get_close_matches(str(issue.get("input")), choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{path}: {issue.get('input')!r} is not a choice; {hint}choices: {', '.join(choices)}"
    received = issue.get("input")
    shown = "" if isinstance(received, (dict, list)) else f" (got {received!r})"
    message = issue["msg"].removeprefix("Value error, ")
    return f"{path or 'config'}: {message}{shown}"


def _resolve_location(loc: tuple, root: type[BaseModel] = Config) -> tuple[str, type[BaseModel] | None, Any]:
    """Turn pydantic's location into `a.b[0].c`, dropping union tags; also return the innermost model
    and the annotation at the location."""
    annotation: Any = root
    parent: type[BaseModel] | None = root
    path = ""
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            path += f"[{part}]"
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
            continue
        tagged = [m for m in _union_members(annotation) or (annotation,) if _type_tag(m) == part]
        if tagged and part not in tagged[0].model_fields:
            annotation = tagged[0]
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent = annotation
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        path += f".{part}" if path else str(part)
    return path, parent, annotation


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    members = _union_members(annotation)
    non_none = [m for m in members if m is not type(None)]
    if members and len(non_none) == 1:
        return _unwrap(non_none[0])
    return annotation


def _union_members(annotation: Any) -> tuple:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return tuple(_unwrap(member) for member in typing.get_args(annotation))
    return ()


def _type_tag(model: Any) -> str | None:
    if isinstance(model, type) and issubclass(model, BaseModel) and "type" in model.model_fields:
        args = typing.get_args(model.model_fields["type"].annotation)
        return args[0] if args else None
    return None
