"""The `audio` feature: decoding (formats, channels, rates, lengths), what it learns on the training split, lazy
decoding and the cache across spectrogram settings, bad clips, and the encoders it builds. What audio shares with
images (inline cells, bad cells, the decoded-file cache) is tested for both in tests/features/test_media.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deepwright.errors import ConfigError
from deepwright.features.audio import AudioEncoder, AudioFeature, centred, decode_audio
from deepwright.features.base import ValueProblem
from deepwright.models.conv import ConvStack, ResNet
from deepwright.models.sequence import FrameTransformer, RecurrentEncoder
from deepwright.models.spectrogram import LogMel
from tests.audio import audio_feature as feature
from tests.audio import fsdd_files, tone, tones, write_sound
from tests.helpers import assert_restores, cells


def fitted(values: np.ndarray, **options: Any) -> AudioFeature:
    """An audio feature with `options`, fitted on `values`."""
    audio = feature(**options)
    audio.fit(values)
    return audio


# -- decoding -----------------------------------------------------------------------------------------------


def test_a_clip_of_the_configured_length_comes_back_as_it_was(tmp_path: Path) -> None:
    samples = tone(440, 0.5)
    path = write_sound(tmp_path / "a.wav", samples, subtype="FLOAT")
    audio = fitted(cells(path))
    decoded = audio.transform(cells(path))
    assert decoded.dtype == np.float16
    assert decoded.shape == (1, 4000)
    np.testing.assert_allclose(decoded[0].astype(np.float32), samples, atol=1e-3)
    np.testing.assert_array_equal(decode_audio(str(path), audio.layout_), decoded[0])


def test_sixteen_bit_pcm_is_scaled_to_plus_minus_one(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone(440, 0.5, amplitude=0.9), subtype="PCM_16")
    decoded = fitted(cells(path)).transform(cells(path))[0].astype(np.float32)
    assert 0.89 < np.abs(decoded).max() < 0.91


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_flac_and_ogg_read_like_wav(tmp_path: Path, suffix: str) -> None:
    samples = tone(440, 0.5)
    wav = write_sound(tmp_path / "a.wav", samples, subtype="FLOAT")
    other = write_sound(tmp_path / f"a{suffix}", samples)
    audio = fitted(cells(wav))
    decoded = audio.transform(cells(wav, other)).astype(np.float32)
    tolerance = 1e-3 if suffix == ".flac" else 0.1  # Vorbis is lossy
    np.testing.assert_allclose(decoded[1], decoded[0], atol=tolerance)


def test_a_stereo_clip_is_mixed_down_to_the_mean_of_its_channels(tmp_path: Path) -> None:
    left, right = tone(300, 0.5), tone(700, 0.5, amplitude=0.2)
    path = write_sound(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    audio = fitted(cells(path))
    assert audio.state()["sample_rate"] == 8000
    np.testing.assert_allclose(audio.transform(cells(path))[0].astype(np.float32), (left + right) / 2, atol=1e-3)


def test_a_clip_at_another_rate_is_resampled_keeping_its_pitch_and_length(tmp_path: Path) -> None:
    paths = tones(tmp_path, count=2)  # 8 kHz: the training rate
    fast = write_sound(tmp_path / "fast.wav", tone(440, 0.5, rate=22050), rate=22050, subtype="FLOAT")
    audio = fitted(cells(*paths, fast))
    assert audio.state()["sample_rate"] == 8000  # the most common training rate
    decoded = audio.transform(cells(fast))[0].astype(np.float32)
    assert decoded.shape == (4000,)
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(len(decoded))))
    assert np.fft.rfftfreq(len(decoded), 1 / 8000)[spectrum.argmax()] == pytest.approx(440, abs=4)
    assert np.abs(decoded[100:-100]).max() == pytest.approx(0.5, abs=0.02)


def test_a_configured_rate_resamples_every_clip(tmp_path: Path) -> None:
    paths = tones(tmp_path, count=2, seconds=0.5)
    audio = fitted(cells(*paths), sample_rate=16000)
    assert audio.state()["sample_rate"] == 16000
    assert audio.transform(cells(*paths)).shape == (2, 8000)


def test_short_clips_are_centred_in_silence_and_long_ones_cropped_around_their_centre(tmp_path: Path) -> None:
    ramp = np.linspace(-0.5, 0.5, 4000, dtype=np.float32)
    path = write_sound(tmp_path / "ramp.wav", ramp, subtype="FLOAT")
    short = fitted(cells(path), duration=0.25).transform(cells(path))[0].astype(np.float32)
    np.testing.assert_allclose(short, ramp[1000:3000], atol=1e-3)
    long = fitted(cells(path), duration=1.0).transform(cells(path))[0].astype(np.float32)
    np.testing.assert_array_equal(long[:2000], 0)
    np.testing.assert_array_equal(long[6000:], 0)
    np.testing.assert_allclose(long[2000:6000], ramp, atol=1e-3)


def test_centred() -> None:
    assert centred(np.arange(6), 4).tolist() == [1, 2, 3, 4]
    assert centred(np.arange(1, 4), 6).tolist() == [0, 1, 2, 3, 0, 0]
    assert centred(np.arange(3), 3).tolist() == [0, 1, 2]


def test_the_default_duration_covers_the_99th_percentile_of_training_lengths(tmp_path: Path) -> None:
    lengths = [0.21, 0.3, 0.33, 0.4, 0.52]
    paths = [write_sound(tmp_path / f"{index}.wav", tone(440, seconds)) for index, seconds in enumerate(lengths)]
    audio = fitted(cells(*paths))
    expected = np.ceil(np.percentile(lengths, 99) * 10) / 10  # 0.6 s
    assert audio.state()["samples"] == round(expected * 8000) == 4800
    assert fitted(cells(*paths), duration=0.25).state()["samples"] == 2000


def test_random_crop_keeps_twice_the_duration(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone(440, 1.0))
    audio = fitted(cells(path), duration=0.25, crop="random")
    state = audio.state()
    assert (state["samples"], state["stored_samples"]) == (2000, 4000)
    assert audio.transform(cells(path)).shape == (1, 4000)


def test_the_fixture_clips_decode_at_8_khz() -> None:
    paths = cells(*fsdd_files())
    audio = fitted(paths)
    assert audio.state()["sample_rate"] == 8000
    decoded = audio.transform(paths)
    assert decoded.shape == (12, audio.state()["samples"])
    assert np.abs(decoded.astype(np.float32)).max(axis=1).min() > 0.05  # every clip holds sound


# -- learned statistics and state ---------------------------------------------------------------------------


def test_mel_band_statistics_come_from_the_training_clips_as_heard(tmp_path: Path) -> None:
    paths = tones(tmp_path / "train", count=4)
    other = write_sound(tmp_path / "other.wav", tone(3000, 0.5, amplitude=0.9))
    audio = fitted(cells(*paths))
    state = audio.state()
    log_mel = LogMel(8000, window_length=200, hop_length=80, mel_bins=16)
    waves = torch.from_numpy(audio.transform(cells(*paths)).astype(np.float32))
    spectrograms = log_mel(waves).double().numpy()  # (4, 16, frames)
    np.testing.assert_allclose(state["mean"], spectrograms.mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(state["std"], np.maximum(spectrograms.std(axis=(0, 2)), 1e-3), rtol=1e-5)
    audio.transform(cells(other))
    assert audio.state() == state  # transforming other rows learns nothing


def test_state_is_json_and_restores_the_same_preprocessing(tmp_path: Path) -> None:
    paths = tones(tmp_path)
    audio = fitted(cells(*paths), crop="random", duration=0.3)
    state = json.loads(json.dumps(audio.state(), allow_nan=False))
    assert set(state) == {
        "sample_rate",
        "samples",
        "stored_samples",
        "window_length",
        "hop_length",
        "mel_bins",
        "mean",
        "std",
    }
    assert (state["window_length"], state["hop_length"], state["mel_bins"]) == (200, 80, 16)
    assert_restores(audio, feature(crop="random", duration=0.3), state, cells(*paths))


def test_request_hints_give_a_playable_example_at_the_models_rate(tmp_path: Path) -> None:
    audio = fitted(cells(*tones(tmp_path)))
    hints = audio.request_hints()
    assert (hints["accept"], hints["sample_rate"]) == ("audio/*", 8000)
    assert hints["example"].startswith("data:audio/wav;base64,")
    decoded = audio.transform(cells(hints["example"]))
    assert decoded.shape == (1, audio.state()["samples"])
    assert not decoded.any()


def test_too_many_mel_bins_for_the_window_is_a_config_error(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone(440, 0.5))
    with pytest.raises(ConfigError, match=r"audio feature 'clip': 128 mel bins are too many .* lower mel_bins"):
        feature(mel_bins=128, window=0.01).fit(cells(path))


# -- bad cells ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["no-samples", "empty-file"])
def test_a_zero_length_clip_is_named_by_position(tmp_path: Path, kind: str) -> None:
    path = write_sound(tmp_path / "a.wav", tone())
    empty = tmp_path / "empty.wav"
    if kind == "no-samples":
        write_sound(empty, np.zeros(0, dtype=np.float32))  # a valid header and no samples
        reason = re.escape("holds no samples (a zero-length clip)")
    else:
        empty.write_bytes(b"")
        reason = "is not a readable audio file"
    with pytest.raises(ValueProblem, match=reason) as raised:
        feature().fit(cells(path, empty))
    assert raised.value.position == 1
    with pytest.raises(ValueProblem, match=reason) as raised:
        fitted(cells(path)).transform(cells(path, empty))
    assert raised.value.position == 1


def test_samples_that_are_not_numbers(tmp_path: Path) -> None:
    samples = tone()
    samples[10] = np.nan
    bad = write_sound(tmp_path / "nan.wav", samples, subtype="FLOAT")
    audio = fitted(cells(write_sound(tmp_path / "a.wav", tone())))
    with pytest.raises(ValueProblem, match="not numbers"):
        audio.transform(cells(bad))


# -- lazy decoding and the cache ----------------------------------------------------------------------------


def test_spectrogram_settings_share_the_cache_of_decoded_clips(tmp_path: Path) -> None:
    paths = cells(*tones(tmp_path / "clips"))
    for options in ({}, {"mel_bins": 8, "window": 0.05, "hop": 0.02}, {"encoder": {"type": "rnn"}}):
        audio = feature(**options)
        audio.cache_dir = tmp_path / "cache"
        audio.fit(paths)
        audio.transform(paths)
    assert len(list((tmp_path / "cache").glob("*.f16"))) == 1


# -- encoder ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "backbone", "width"),
    [
        ({"dims": [4, 6]}, ConvStack, 6),
        ({"type": "resnet", "dim": 4, "blocks": [1, 1]}, ResNet, 8),
        ({"type": "conv1d", "dims": [8, 12]}, ConvStack, 12),
        ({"type": "rnn", "cell": "lstm", "dim": 5, "layers": 1}, RecurrentEncoder, 10),
        ({"type": "rnn", "dim": 5, "bidirectional": False}, RecurrentEncoder, 5),
        ({"type": "transformer", "dim": 8, "heads": 2, "layers": 1, "feedforward_dim": 16}, FrameTransformer, 8),
    ],
    ids=["convstack", "resnet", "conv1d", "lstm", "gru", "transformer"],
)
def test_every_encoder_builds_and_encodes(tmp_path: Path, encoder: dict, backbone: type, width: int) -> None:
    paths = cells(*tones(tmp_path))
    audio = fitted(paths, encoder=encoder)
    model = audio.build_encoder()
    assert isinstance(model.backbone, backbone)
    assert audio.width() == width == model.output_size
    batch = torch.from_numpy(audio.transform(paths))
    out = model.train()(batch)
    assert out.shape == (3, width)
    out.sum().backward()
    assert all(parameter.grad is not None for parameter in model.backbone.parameters())


def test_a_one_dimensional_stack_takes_the_mel_bins_as_channels(tmp_path: Path) -> None:
    audio = fitted(cells(*tones(tmp_path)), encoder={"type": "conv1d", "dims": [8]})
    first = audio.build_encoder().backbone.layers[0]
    assert isinstance(first, torch.nn.Conv1d)
    assert first.in_channels == 16


def test_the_encoder_normalises_each_mel_band_with_the_training_statistics(tmp_path: Path) -> None:
    paths = cells(*tones(tmp_path))
    audio = fitted(paths, encoder={"type": "conv1d", "dims": [8]})
    encoder = audio.build_encoder().eval()
    seen = []
    encoder.backbone.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    batch = torch.from_numpy(audio.transform(paths))
    encoder(batch)
    normalised = seen[0].double()  # (3, 16, frames)
    np.testing.assert_allclose(normalised.mean(dim=(0, 2)).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(dim=(0, 2), unbiased=False).numpy(), 1, atol=1e-3)


def test_augmentation_and_random_crops_apply_in_training_only(tmp_path: Path) -> None:
    """Batch norm stays in evaluation mode so that only the augmentation differs between the two modes."""
    paths = cells(*tones(tmp_path, seconds=0.6))
    augmentation = {"noise": {"probability": 1.0, "snr_db": [0, 0]}, "time_mask": {"probability": 1.0}}
    audio = fitted(paths, duration=0.3, crop="random", augmentation=augmentation)
    encoder = audio.build_encoder().eval()
    batch = torch.from_numpy(audio.transform(paths))
    assert torch.equal(encoder(batch), encoder(batch))  # evaluation: no randomness
    for module in (encoder, encoder.wave_augmentation, encoder.spec_augmentation):
        module.training = True
    torch.manual_seed(0)
    first = encoder(batch)
    torch.manual_seed(1)
    assert not torch.allclose(first, encoder(batch))


def test_evaluation_hears_the_centre_and_training_a_random_window(tmp_path: Path) -> None:
    ramp = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)
    path = write_sound(tmp_path / "ramp.wav", ramp, subtype="FLOAT")
    audio = fitted(cells(path), duration=0.25, crop="random")
    encoder: AudioEncoder = audio.build_encoder()
    stored = torch.from_numpy(audio.transform(cells(path, path, path, path))).float()  # (4, 4000)
    centre = encoder.eval().window(stored)
    torch.testing.assert_close(centre, stored[:, 1000:3000])
    torch.manual_seed(0)
    windows = encoder.train().window(stored)
    assert windows.shape == (4, 2000)
    starts = [int(np.flatnonzero(np.isclose(stored[0].numpy(), row[0].item()))[0]) for row in windows]
    assert len(set(starts)) > 1
    for row, start in zip(windows, starts):
        torch.testing.assert_close(row, stored[0, start : start + 2000])
