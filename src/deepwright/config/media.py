"""The columns of files, images and audio clips, and the random augmentations of their training examples."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from deepwright.config.base import MissingValues, Strict, files_cannot_be_filled, with_default_type
from deepwright.config.encoders import AudioEncoderConfig, ConvStackEncoderConfig, ImageEncoderConfig


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
        return with_default_type(data, "encoder", "convstack")

    @field_validator("missing")
    @classmethod
    def _images_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return files_cannot_be_filled(missing, "an image")


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
        default=ConvStackEncoderConfig(dims=AUDIO_CONV_CHANNELS),
        description="convstack (2-D over mel bins × frames; dims unset: [16, 32, 64, 128]), resnet, conv1d "
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
        data = with_default_type(data, "encoder", "convstack")
        encoder = data.get("encoder") if isinstance(data, dict) else None
        if isinstance(encoder, dict) and encoder.get("type") == "convstack":
            spellings = {"dims", *ConvStackEncoderConfig.renamed_keys}  # the old spelling counts as given too
            if not spellings & encoder.keys():
                data = {**data, "encoder": {**encoder, "dims": AUDIO_CONV_CHANNELS}}
        return data

    @field_validator("missing")
    @classmethod
    def _audio_cannot_be_filled(cls, missing: MissingValues) -> MissingValues:
        return files_cannot_be_filled(missing, "a clip")
