"""Random audio augmentation as modules, active in training mode only (no-ops in evaluation mode).

`WaveAugmentation` changes waveforms (B, N): a random time shift, then white noise at a random signal-to-noise
ratio. `SpecAugment` masks bands of normalised spectrograms (B, mel_bins, frames) along time and frequency
(Park et al., 2019). Random numbers come from torch's global generator, which the trainer seeds and checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

from deepwright.config import AudioAugmentationConfig, SpectrogramMask

__all__ = ["SpecAugment", "WaveAugmentation", "shifted"]


def shifted(waves: torch.Tensor, shifts: torch.Tensor, length: int) -> torch.Tensor:
    """Windows of `length` samples of each row of `waves` (B, N), starting `shifts[i]` samples in (negative or
    past the end: the missing part is silence).

    >>> shifted(torch.arange(1.0, 5.0).repeat(2, 1), torch.tensor([1, -1]), 4).tolist()
    [[2.0, 3.0, 4.0, 0.0], [0.0, 1.0, 2.0, 3.0]]
    """
    positions = shifts[:, None] + torch.arange(length, device=waves.device)  # (B, length)
    inside = (positions >= 0) & (positions < waves.shape[1])
    picked = waves.gather(1, positions.clamp(0, waves.shape[1] - 1))
    return picked * inside


class WaveAugmentation(nn.Module):
    """Augment waveforms (B, N) during training as configured: time shift, then additive noise.

    >>> from deepwright.config import AudioAugmentationConfig, Noise
    >>> augment = WaveAugmentation(AudioAugmentationConfig(noise=Noise(probability=1.0)), sample_rate=8000)
    >>> augment.eval()(torch.ones(2, 80)).equal(torch.ones(2, 80))
    True
    """

    def __init__(self, options: AudioAugmentationConfig, *, sample_rate: int) -> None:
        super().__init__()
        self.options = options
        self.max_shift = round(options.time_shift.seconds * sample_rate) if options.time_shift else 0

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return waves
        batch, length = waves.shape
        device = waves.device
        if self.options.time_shift is not None and self.max_shift > 0:
            shifts = torch.randint(-self.max_shift, self.max_shift + 1, (batch,), device=device)
            shifts = shifts * _chosen(self.options.time_shift.probability, batch, device)
            waves = shifted(waves, shifts, length)
        if self.options.noise is not None:
            low, high = self.options.noise.snr_db
            snr_db = torch.empty(batch, 1, device=device).uniform_(low, high)
            signal_power = waves.square().mean(dim=1, keepdim=True)  # (B, 1)
            noise_scale = torch.sqrt(signal_power / 10 ** (snr_db / 10))
            chosen = _chosen(self.options.noise.probability, batch, device)[:, None]
            waves = waves + torch.randn_like(waves) * noise_scale * chosen
        return waves


class SpecAugment(nn.Module):
    """Mask random bands of normalised spectrograms (B, mel_bins, frames) during training: time masks (whole
    frames) and frequency masks (whole mel bins), set to 0, the training mean after normalisation.

    >>> from deepwright.config import AudioAugmentationConfig, SpectrogramMask
    >>> masks = SpecAugment(AudioAugmentationConfig(time_mask=SpectrogramMask(probability=1.0, width=3)))
    >>> bool((masks.train()(torch.ones(4, 5, 20)) == 0).any()), masks.eval()(torch.ones(1, 5, 20)).sum().item()
    (True, 100.0)
    """

    def __init__(self, options: AudioAugmentationConfig) -> None:
        super().__init__()
        self.options = options

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return spectrograms
        if self.options.frequency_mask is not None:
            spectrograms = _mask(spectrograms, self.options.frequency_mask, axis=1)
        if self.options.time_mask is not None:
            spectrograms = _mask(spectrograms, self.options.time_mask, axis=2)
        return spectrograms


def _mask(spectrograms: torch.Tensor, options: SpectrogramMask, axis: int) -> torch.Tensor:
    """`options.count` bands of random width in [0, width] along `axis` (1: mel bins, 2: frames) set to 0, in
    the rows chosen with `options.probability`."""
    batch, size = spectrograms.shape[0], spectrograms.shape[axis]
    device = spectrograms.device
    positions = torch.arange(size, device=device)  # (size,)
    masked = torch.zeros(batch, size, dtype=torch.bool, device=device)
    chosen = _chosen(options.probability, batch, device).bool()
    for _ in range(options.count):
        widths = torch.randint(0, min(options.width, size) + 1, (batch,), device=device)
        starts = (torch.rand(batch, device=device) * (size - widths + 1)).long()  # (B,)
        band = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])  # (B, size)
        masked |= band & chosen[:, None]
    shape = (batch, size, 1) if axis == 1 else (batch, 1, size)
    return spectrograms.masked_fill(masked.view(shape), 0.0)


def _chosen(probability: float, batch: int, device: torch.device) -> torch.Tensor:
    """1 for a random share `probability` of the rows, else 0 (B,), as integers."""
    return (torch.rand(batch, device=device) < probability).long()
