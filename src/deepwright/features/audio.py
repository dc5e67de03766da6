"""The `audio` feature type: sound files by path (or base64 in requests) → log-mel spectrogram → an encoder.

Preprocessing, learned on the training split: the sample rate every clip is resampled to (the most common
training rate unless configured), the duration the model hears (the 99th percentile of training clip lengths,
rounded up to a tenth of a second, unless configured), and the mean and standard deviation of each mel band.

Each file is read once with soundfile, mixed down to mono (the mean of its channels), resampled with
`scipy.signal.resample_poly` when its rate differs, and centred in a window of silence or cropped around its
centre; the decoded float16 waveforms are cached like images (see `deepwright.features.decoding`). The encoder
takes the waveforms: crop (centre, or random in training), waveform augmentation (training only), log-mel
spectrogram, normalisation, SpecAugment masks (training only), then the configured encoder: a ConvStack or
ResNet over mel bins × frames (with a second channel of band positions), a 1-D ConvStack over frames, a GRU/LSTM,
or a Transformer.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from deepwright.config import AudioFeatureConfig
from deepwright.data.media import MediaError, describe_cell, open_cell
from deepwright.errors import ConfigError
from deepwright.features.base import Role, check_is_fitted
from deepwright.features.decoding import Decoding, LazyColumn, MediaFeature, check_cells, decode_column, probe_cells
from deepwright.models.audio_augment import SpecAugment, WaveAugmentation, shifted
from deepwright.models.encoders import EncoderInput
from deepwright.models.spectrogram import LogMel, fft_size, frame_count, mel_filterbank
from deepwright.registry import FEATURES

__all__ = ["AudioEncoder", "AudioFeature", "AudioLayout", "centre_window", "centred", "decode_audio", "resample"]

_STATISTICS_SAMPLE = 2000  # clips used for the mel-band statistics when they are decoded per batch
_STATISTICS_BATCH = 256
_LENGTH_PERCENTILE = 99  # the default duration covers this share of training clips whole


def _with_band_positions(spectrograms: torch.Tensor) -> torch.Tensor:
    """(B, mel_bins, frames) → (B, 2, mel_bins, frames): the spectrogram, and a second channel holding each mel
    bin's position from -1 (lowest) to 1 (highest), so that 2-D convolutions, which look alike at every height,
    and their global pooling know which frequencies they see ("CoordConv")."""
    batch, bins, frames = spectrograms.shape
    positions = torch.linspace(-1.0, 1.0, bins, device=spectrograms.device, dtype=spectrograms.dtype)
    return torch.stack([spectrograms, positions.view(1, bins, 1).expand(batch, bins, frames)], dim=1)


# How each encoder takes the normalised spectrograms (B, mel_bins, frames).
_ARRANGEMENTS = {
    "image": _with_band_positions,  # (B, 2, mel_bins, frames): 2-D convolutions
    "channels": lambda spectrograms: spectrograms,  # (B, mel_bins, frames): 1-D convolutions along time
    "sequence": lambda spectrograms: spectrograms.transpose(1, 2),  # (B, frames, mel_bins): RNN, Transformer
}
# The arrangement each encoder type reads.
_ARRANGEMENT_OF = {
    "convstack": "image",
    "resnet": "image",
    "conv1d": "channels",
    "rnn": "sequence",
    "transformer": "sequence",
}


@dataclass(frozen=True)
class AudioLayout:
    """What every clip is made into: `stored_samples` at `sample_rate` (the model hears the centre `samples`, or
    a random window of them in training), and the spectrogram's window, hop and mel bins."""

    sample_rate: int
    samples: int
    stored_samples: int
    window_length: int
    hop_length: int
    mel_bins: int

    @property
    def frames(self) -> int:
        """Spectrogram frames of the window the model hears."""
        return frame_count(self.samples, self.hop_length)


def decode_audio(cell: Any, layout: AudioLayout) -> np.ndarray:
    """One audio cell → a float16 waveform of `layout.stored_samples`: mono, at the layout's rate, centred and
    padded with silence or cropped around its centre; `MediaError` when it cannot be read or holds no sound."""
    import soundfile

    source = open_cell(cell)
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)  # (frames, channels)
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as error:
        raise MediaError(f"{describe_cell(cell)} is not a readable audio file ({_reason(error)})") from None
    if len(samples) == 0:
        raise MediaError(f"{describe_cell(cell)} holds no samples (a zero-length clip); replace it or drop its row")
    wave = samples.mean(axis=1)  # mono: the mean of the channels
    if not np.isfinite(wave).all():
        raise MediaError(f"{describe_cell(cell)} holds samples that are not numbers (NaN or infinite)")
    if rate != layout.sample_rate:
        wave = resample(wave, rate, layout.sample_rate)
    return centred(wave, layout.stored_samples).astype(np.float16)


def resample(wave: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """`wave` sampled at `rate` Hz, resampled to `target_rate` Hz (polyphase filtering, scipy).

    >>> resample(np.zeros(44100, dtype=np.float32), 44100, 16000).shape
    (16000,)
    """
    from scipy.signal import resample_poly

    divisor = math.gcd(int(rate), int(target_rate))
    return resample_poly(wave, target_rate // divisor, rate // divisor).astype(np.float32)


def centred(wave: np.ndarray, length: int) -> np.ndarray:
    """`wave` cropped around its centre, or centred in silence, to `length` samples.

    >>> centred(np.arange(1, 6), 3).tolist(), centred(np.array([1, 2]), 4).tolist()
    ([2, 3, 4], [0, 1, 2, 0])
    """
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start : start + length]
    out = np.zeros(length, dtype=wave.dtype)
    start = (length - len(wave)) // 2
    out[start : start + len(wave)] = wave
    return out


def _probe(cell: Any) -> tuple[int, int]:
    """(sample rate, frames) from an audio file's header, without decoding its samples."""
    import soundfile

    try:
        info = soundfile.info(open_cell(cell))
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as error:
        raise MediaError(f"{describe_cell(cell)} is not a readable audio file ({_reason(error)})") from None
    if info.frames == 0:
        raise MediaError(f"{describe_cell(cell)} holds no samples (a zero-length clip); replace it or drop its row")
    return int(info.samplerate), int(info.frames)


def _reason(error: Exception) -> str:
    return (getattr(error, "error_string", "") or type(error).__name__).rstrip(".")


class AudioEncoder(nn.Module):
    """float16 waveforms (B, stored_samples) → the window the model hears (centre; random in training when
    configured) → waveform augmentation (training only) → log-mel spectrogram → per-band normalisation with the
    training statistics → SpecAugment (training only) → the backbone → (B, output_size)."""

    def __init__(
        self,
        layout: AudioLayout,
        backbone: nn.Module,
        arrangement: str,
        options: AudioFeatureConfig,
        mean: list[float],
        std: list[float],
    ) -> None:
        super().__init__()
        self.samples = layout.samples
        self.random_crop = options.crop == "random"
        self.wave_augmentation = WaveAugmentation(options.augmentation, sample_rate=layout.sample_rate)
        self.spectrogram = _log_mel(layout)
        self.spec_augmentation = SpecAugment(options.augmentation)
        self.arrangement = arrangement
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1))
        self.output_size = backbone.output_size

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        waves = self.window(waves.float())  # (B, samples)
        spectrograms = self.spectrogram(self.wave_augmentation(waves))  # (B, mel_bins, frames)
        spectrograms = self.spec_augmentation((spectrograms - self.mean) / self.std)
        return self.backbone(_ARRANGEMENTS[self.arrangement](spectrograms))

    def window(self, waves: torch.Tensor) -> torch.Tensor:
        """The `samples` the model hears of each stored clip (B, stored_samples) → (B, samples)."""
        extra = waves.shape[1] - self.samples
        if self.training and self.random_crop and extra > 0:
            starts = torch.randint(0, extra + 1, (waves.shape[0],), device=waves.device)
            return shifted(waves, starts, self.samples)
        return centre_window(waves, self.samples)


def centre_window(waves: torch.Tensor, samples: int) -> torch.Tensor:
    """The centre `samples` of each row of `waves` (B, N ≥ samples).

    >>> centre_window(torch.arange(6).view(1, 6), 2).tolist()
    [[2, 3]]
    """
    start = (waves.shape[1] - samples) // 2
    return waves[:, start : start + samples]


def _log_mel(layout: AudioLayout) -> LogMel:
    return LogMel(
        layout.sample_rate,
        window_length=layout.window_length,
        hop_length=layout.hop_length,
        mel_bins=layout.mel_bins,
    )


@FEATURES.register("audio")
class AudioFeature(MediaFeature):
    """A column of sound clips (see the module docstring)."""

    def __init__(self, options: AudioFeatureConfig, role: Role) -> None:
        super().__init__(options, role)
        self.layout_: AudioLayout | None = None
        self.mean_: list[float] | None = None
        self.std_: list[float] | None = None

    def fit(self, values: np.ndarray) -> None:
        cells = check_cells(values, "audio")
        probes = probe_cells(cells, _probe)
        self.layout_ = self._layout(probes)
        self.mean_, self.std_ = self._statistics(self._decoded(cells))

    def transform(self, values: np.ndarray) -> np.ndarray | LazyColumn:
        check_is_fitted(self, "layout_")
        return self._decoded(check_cells(values, "audio"))

    def state(self) -> dict[str, Any]:
        check_is_fitted(self, "layout_")
        return {**asdict(self.layout_), "mean": self.mean_, "std": self.std_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.layout_ = AudioLayout(**{key: state[key] for key in AudioLayout.__dataclass_fields__})
        self.mean_, self.std_ = state["mean"], state["std"]

    def encoder_input(self) -> EncoderInput:
        """The spectrograms as the configured encoder reads them (its arrangement: see `_ARRANGEMENTS`)."""
        check_is_fitted(self, "layout_")
        layout = self.layout_
        inputs = {
            "image": EncoderInput("grid", 2),  # the spectrogram and the band positions, 2-D
            "channels": EncoderInput("grid", layout.mel_bins, dims=1),
            "sequence": EncoderInput("frames", layout.mel_bins, steps=layout.frames),
        }
        return inputs[_ARRANGEMENT_OF[self.options.encoder.type]]

    def width(self) -> int:
        # The backbone is built with its weights, as it always was: a seeded run draws the same random numbers.
        return super().build_encoder().output_size

    def build_encoder(self) -> nn.Module:
        backbone, arrangement = super().build_encoder(), _ARRANGEMENT_OF[self.options.encoder.type]
        return AudioEncoder(self.layout_, backbone, arrangement, self.options, self.mean_, self.std_)

    def request_hints(self) -> dict[str, Any]:
        """Input: what a request sends (a sound file, inline) and an example: the model's duration of silence as
        a 16-bit WAV at its rate."""
        import base64
        import io

        import soundfile

        check_is_fitted(self, "layout_")
        layout = self.layout_
        buffer = io.BytesIO()
        soundfile.write(buffer, np.zeros(layout.samples, dtype=np.int16), layout.sample_rate, format="WAV")
        example = "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return {"example": example, "accept": "audio/*", "sample_rate": layout.sample_rate}

    # -- helpers -----------------------------------------------------------------------------------------

    def _layout(self, probes: list[tuple[int, int]]) -> AudioLayout:
        """The layout for these training clips' (rate, frames) and the options."""
        options = self.options
        rate = options.sample_rate or Counter(rate for rate, _ in probes).most_common(1)[0][0]
        duration = options.duration
        if duration is None:
            seconds = np.percentile([frames / clip_rate for clip_rate, frames in probes], _LENGTH_PERCENTILE)
            duration = math.ceil(round(float(seconds) * 10, 6)) / 10
        samples = max(1, round(duration * rate))
        window_length = max(1, round(options.window * rate))
        layout = AudioLayout(
            sample_rate=int(rate),
            samples=samples,
            stored_samples=2 * samples if options.crop == "random" else samples,
            window_length=window_length,
            hop_length=max(1, round(options.hop * rate)),
            mel_bins=options.mel_bins,
        )
        self._check_filterbank(layout)
        return layout

    def _check_filterbank(self, layout: AudioLayout) -> None:
        """A `ConfigError` when some mel filters cover no FFT bin (too many mel bins for the window)."""
        n_fft = fft_size(layout.window_length)
        empty = int((mel_filterbank(layout.mel_bins, n_fft, layout.sample_rate).sum(axis=1) == 0).sum())
        if empty:
            raise ConfigError(
                f"audio feature {self.name!r}: {layout.mel_bins} mel bins are too many for a {n_fft}-point FFT at "
                f"{layout.sample_rate} Hz ({empty} filters cover no frequency bin); lower mel_bins or lengthen window"
            )

    def _statistics(self, waves: np.ndarray | LazyColumn) -> tuple[list[float], list[float]]:
        """Mean and standard deviation of each mel band over every frame of the training clips (as heard: the
        centre window, no augmentation); a sample of them when they are decoded per batch."""
        count = len(waves) if isinstance(waves, np.ndarray) else min(len(waves), _STATISTICS_SAMPLE)
        log_mel = _log_mel(self.layout_)
        total = np.zeros(self.layout_.mel_bins)
        squares = np.zeros(self.layout_.mel_bins)
        frames = 0
        with torch.inference_mode():
            for start in range(0, count, _STATISTICS_BATCH):
                chunk = waves[start : min(count, start + _STATISTICS_BATCH)]
                batch = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.asarray(chunk))
                heard = centre_window(batch.float(), self.layout_.samples)
                spectrograms = log_mel(heard).double()  # (b, mel_bins, frames)
                total += spectrograms.sum(dim=(0, 2)).numpy()
                squares += spectrograms.square().sum(dim=(0, 2)).numpy()
                frames += spectrograms.shape[0] * spectrograms.shape[2]
        mean = total / frames
        std = np.sqrt(np.maximum(squares / frames - mean**2, 0.0))
        return mean.tolist(), np.maximum(std, 1e-3).tolist()

    def _decoded(self, cells: np.ndarray) -> np.ndarray | LazyColumn:
        layout = self.layout_
        decoding = Decoding(  # the waveforms depend on the rate and length only, not on the spectrogram's settings
            "audio",
            partial(decode_audio, layout=layout),
            (layout.stored_samples,),
            "float16",
            {"sample_rate": layout.sample_rate},
        )
        return decode_column(cells, decoding, cache_dir=self.cache_dir, memory_mb=self.options.cache_memory_mb)
