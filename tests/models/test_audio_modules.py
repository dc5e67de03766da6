"""Audio modules: the log-mel spectrogram against numpy, waveform augmentation (shifts, noise at a given SNR),
SpecAugment masks, and the recurrent and Transformer encoders over frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepwright.config import AudioAugmentationConfig, Noise, SpectrogramMask, TimeShift
from deepwright.models.audio_augment import SpecAugment, WaveAugmentation, shifted
from deepwright.models.sequence import FrameTransformer, RecurrentEncoder
from deepwright.models.spectrogram import LogMel, fft_size, frame_count, mel_filterbank
from tests.audio import tone

# -- log-mel spectrogram ------------------------------------------------------------------------------------


def test_fft_size_and_frames() -> None:
    assert [fft_size(length) for length in (1, 2, 3, 200, 256, 257, 400)] == [1, 2, 4, 256, 256, 512, 512]
    assert frame_count(8000, 80) == 101
    assert frame_count(79, 80) == 1


def test_the_filterbank_is_triangles_rising_in_frequency() -> None:
    filters = mel_filterbank(40, 256, 8000)
    assert filters.shape == (40, 129)
    assert (filters >= 0).all() and filters.max() <= 1.0
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()
    widths = (filters > 0).sum(axis=1)
    assert widths[-1] > widths[0]  # mel bands widen with frequency


def test_log_mel_matches_a_numpy_computation() -> None:
    wave = tone(440, 0.25) + tone(1800, 0.25, amplitude=0.1)
    module = LogMel(8000, window_length=200, hop_length=80, mel_bins=40)
    decibels = module(torch.from_numpy(wave)[None])[0].double().numpy()  # (40, frames)
    assert decibels.shape == (40, frame_count(len(wave), 80))
    frame = 10  # away from the edges: no padding involved
    window = np.zeros(256)
    window[28:228] = np.hanning(201)[:200]  # torch's periodic Hann window of 200, centred in the 256-point FFT
    segment = wave[frame * 80 - 128 : frame * 80 + 128]
    power = np.abs(np.fft.rfft(segment * window)) ** 2
    expected = 10 * np.log10(np.maximum(mel_filterbank(40, 256, 8000) @ power, 1e-10))
    np.testing.assert_allclose(decibels[:, frame], np.maximum(expected, decibels.max() - 80), atol=1e-3)


def test_a_tone_is_loudest_in_the_band_around_its_frequency() -> None:
    filters = mel_filterbank(40, 256, 8000)
    bins = np.fft.rfftfreq(256, 1 / 8000)
    module = LogMel(8000, window_length=200, hop_length=80, mel_bins=40)
    for frequency in (300.0, 1000.0, 3000.0):
        decibels = module(torch.from_numpy(tone(frequency, 0.5))[None])[0]
        loudest = int(decibels[:, 5:-5].mean(dim=1).argmax())
        centre = bins[filters[loudest].argmax()]
        assert abs(centre - frequency) < 0.15 * frequency


def test_silence_is_floored_at_top_db_below_the_loudest_value() -> None:
    wave = np.concatenate([tone(440, 0.25), np.zeros(2000, dtype=np.float32)])
    decibels = LogMel(8000, window_length=200, hop_length=80, mel_bins=16)(torch.from_numpy(wave)[None])
    assert torch.isfinite(decibels).all()
    assert decibels.min() == pytest.approx(decibels.max().item() - 80, abs=1e-4)


def test_log_mel_keeps_float32_under_bf16_autocast() -> None:
    module = LogMel(8000, window_length=200, hop_length=80, mel_bins=16)
    wave = torch.from_numpy(tone(440, 0.25))[None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        decibels = module(wave)
    assert decibels.dtype == torch.float32
    torch.testing.assert_close(decibels, module(wave))


def test_the_filterbank_is_not_part_of_the_weights() -> None:
    assert LogMel(8000, window_length=200, hop_length=80, mel_bins=16).state_dict() == {}


# -- waveform augmentation ----------------------------------------------------------------------------------


def test_shifted_windows() -> None:
    waves = torch.arange(1.0, 7.0).repeat(3, 1)  # (3, 6)
    windows = shifted(waves, torch.tensor([0, 2, -3]), 4)
    assert windows.tolist() == [[1, 2, 3, 4], [3, 4, 5, 6], [0, 0, 0, 1]]
    assert shifted(waves[:1], torch.tensor([5]), 3).tolist() == [[6, 0, 0]]


def test_time_shifts_stay_within_the_configured_seconds() -> None:
    augment = WaveAugmentation(
        AudioAugmentationConfig(time_shift=TimeShift(probability=1.0, seconds=0.01)), sample_rate=1000
    ).train()
    waves = torch.zeros(64, 100)
    waves[:, 50] = 1.0  # one click in the middle
    torch.manual_seed(0)
    moved = augment(waves).argmax(dim=1) - 50
    assert moved.abs().max() <= 10
    assert len(moved.unique()) > 10  # shifts of -10…10 samples


def test_noise_is_added_at_the_configured_snr() -> None:
    augment = WaveAugmentation(AudioAugmentationConfig(noise=Noise(probability=1.0, snr_db=(10, 10))), sample_rate=8000)
    waves = torch.from_numpy(np.stack([tone(440, 1.0, amplitude=0.5), tone(900, 1.0, amplitude=0.05)]))
    torch.manual_seed(0)
    noise = augment.train()(waves) - waves
    snr = 10 * torch.log10(waves.square().mean(dim=1) / noise.square().mean(dim=1))
    torch.testing.assert_close(snr, torch.tensor([10.0, 10.0]), atol=0.2, rtol=0)


def test_wave_augmentation_chooses_rows_with_its_probability() -> None:
    augment = WaveAugmentation(AudioAugmentationConfig(noise=Noise(probability=0.5)), sample_rate=8000).train()
    waves = torch.from_numpy(tone(440, 0.1)).repeat(400, 1)
    torch.manual_seed(0)
    changed = (augment(waves) != waves).any(dim=1).float().mean()
    assert 0.4 < changed < 0.6


def test_wave_augmentation_is_a_no_op_in_evaluation_mode() -> None:
    options = AudioAugmentationConfig(time_shift=TimeShift(probability=1.0), noise=Noise(probability=1.0))
    waves = torch.randn(4, 800)
    assert torch.equal(WaveAugmentation(options, sample_rate=8000).eval()(waves), waves)


# -- SpecAugment --------------------------------------------------------------------------------------------


def test_masks_are_whole_bands_no_wider_than_configured() -> None:
    options = AudioAugmentationConfig(
        time_mask=SpectrogramMask(probability=1.0, count=1, width=5),
        frequency_mask=SpectrogramMask(probability=1.0, count=1, width=3),
    )
    torch.manual_seed(0)
    masked = SpecAugment(options).train()(torch.ones(200, 16, 40)) == 0  # (B, mel_bins, frames)
    frames = masked.all(dim=1)  # whole frames masked: (B, frames)
    bins = masked.all(dim=2)  # whole mel bins masked: (B, mel_bins)
    assert torch.equal(masked, frames[:, None, :] | bins[:, :, None])
    assert frames.sum(dim=1).max() <= 5 and frames.sum(dim=1).float().mean() > 1.5
    assert bins.sum(dim=1).max() <= 3 and bins.sum(dim=1).float().mean() > 1.0
    for row in frames:  # one mask each: a single band
        where = torch.nonzero(row).flatten()
        assert len(where) == 0 or where[-1] - where[0] + 1 == len(where)


def test_masks_count_and_probability() -> None:
    options = AudioAugmentationConfig(time_mask=SpectrogramMask(probability=0.5, count=3, width=2))
    torch.manual_seed(0)
    masked = SpecAugment(options).train()(torch.ones(400, 4, 100)) == 0
    frames = masked.all(dim=1).sum(dim=1)
    assert frames.max() <= 6
    assert 0.3 < (frames > 0).float().mean() < 0.55  # half the rows chosen, a few draws of width 0


def test_spec_augment_is_a_no_op_in_evaluation_mode() -> None:
    options = AudioAugmentationConfig(time_mask=SpectrogramMask(probability=1.0))
    spectrograms = torch.randn(2, 8, 30)
    assert torch.equal(SpecAugment(options).eval()(spectrograms), spectrograms)


# -- encoders over frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_recurrent_encoder_is_the_mean_of_its_outputs(cell: str) -> None:
    encoder = RecurrentEncoder(6, cell=cell, hidden_size=4, layers=1, bidirectional=True).eval()
    frames = torch.randn(3, 7, 6)
    recurrent = next(module for module in encoder.modules() if isinstance(module, torch.nn.RNNBase))
    outputs, _ = recurrent(frames)
    torch.testing.assert_close(encoder(frames), outputs.mean(dim=1))
    assert encoder.output_size == 8


def test_the_transformer_takes_fewer_frames_than_its_maximum_and_depends_on_order() -> None:
    torch.manual_seed(0)
    encoder = FrameTransformer(6, max_frames=10, size=8, heads=2, layers=1, feedforward=16, dropout=0.0).eval()
    frames = torch.randn(2, 7, 6)
    encoded = encoder(frames)
    assert encoded.shape == (2, 8)
    assert not torch.allclose(encoded, encoder(frames.flip(1)), atol=1e-4)  # learned positions: order matters
