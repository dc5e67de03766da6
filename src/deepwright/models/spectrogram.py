"""Log-mel spectrograms as a module: waveforms in, decibels per mel band and frame out.

The short-time Fourier transform is `torch.stft` (Hann window); the mel filterbank is spafe's
(`spafe.fbanks.mel_fbanks.mel_filter_banks`: HTK mel scale, triangles from 0 Hz to half the sample rate, peak 1).
Power is turned into decibels with a floor `top_db` below each clip's loudest value, so that silence (and the
padding of short clips) does not reach minus infinity.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["LogMel", "fft_size", "frame_count", "mel_filterbank"]


def fft_size(window_length: int) -> int:
    """The FFT size for a window of `window_length` samples: the next power of two.

    >>> fft_size(200), fft_size(256)
    (256, 256)
    """
    return 1 << max(0, int(window_length) - 1).bit_length()


def frame_count(samples: int, hop_length: int) -> int:
    """Frames of the spectrogram of `samples` samples (`torch.stft` with centred frames).

    >>> frame_count(8000, 80)
    101
    """
    return 1 + samples // hop_length


def mel_filterbank(mel_bins: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """The (mel_bins, n_fft // 2 + 1) matrix of triangular mel filters over the FFT bins, from spafe."""
    from spafe.fbanks.mel_fbanks import mel_filter_banks

    filters, _ = mel_filter_banks(nfilts=mel_bins, nfft=n_fft, fs=sample_rate)
    return np.asarray(filters, dtype=np.float32)


class LogMel(nn.Module):
    """Waveforms (B, N) → log-mel spectrograms in decibels (B, mel_bins, frames), computed in float32.

    >>> LogMel(8000, window_length=200, hop_length=80, mel_bins=40)(torch.zeros(2, 8000)).shape
    torch.Size([2, 40, 101])
    """

    def __init__(
        self, sample_rate: int, *, window_length: int, hop_length: int, mel_bins: int, top_db: float = 80.0
    ) -> None:
        super().__init__()
        self.window_length = window_length
        self.hop_length = hop_length
        self.n_fft = fft_size(window_length)
        self.top_db = top_db
        filters = torch.from_numpy(mel_filterbank(mel_bins, self.n_fft, sample_rate))
        # Rebuilt from the config each time, so kept out of the saved weights.
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)
        self.register_buffer("filters", filters, persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waves.device.type, enabled=False):
            spectrum = torch.stft(
                waves.float(),
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.window_length,
                window=self.window,
                center=True,
                return_complex=True,
            )  # (B, n_fft // 2 + 1, frames)
            power = spectrum.real.square() + spectrum.imag.square()
            mel = torch.matmul(self.filters, power)  # (B, mel_bins, frames)
            decibels = 10.0 * torch.log10(mel.clamp(min=1e-10))
            floor = decibels.amax(dim=(1, 2), keepdim=True) - self.top_db
            return torch.maximum(decibels, floor)
