"""The `audio` feature: decoding (formats, channels, rates, lengths), what it learns on the training split, the
decoded-clip cache and its lazy alternative, bad cells, and the encoders it builds."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deepwright.config import AudioFeatureConfig
from deepwright.errors import ConfigError, NotFittedError
from deepwright.features.audio import AudioEncoder, AudioFeature, centred, decode_audio
from deepwright.features.base import ValueProblem
from deepwright.features.decoding import LazyColumn
from deepwright.models.conv import ConvStack, ResNet
from deepwright.models.sequence import FrameTransformer, RecurrentEncoder
from deepwright.models.spectrogram import LogMel
from tests.audio import encode_sound, fsdd_files, tone, write_sound


def feature(**options: Any) -> AudioFeature:
    """An input audio feature named 'clip' with 16 mel bins, a [4, 8] ConvStack and the given options."""
    settings = {"name": "clip", "type": "audio", "mel_bins": 16, "encoder": {"channels": [4, 8]}, **options}
    return AudioFeature(AudioFeatureConfig.model_validate(settings), "input")


def cells(*values: Any) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = [str(value) if isinstance(value, Path) else value for value in values]
    return column


def fitted(values: np.ndarray, **options: Any) -> AudioFeature:
    audio = feature(**options)
    audio.fit(values)
    return audio


def tones(folder: Path, count: int = 3, seconds: float = 0.5, rate: int = 8000) -> list[Path]:
    return [
        write_sound(folder / f"{index}.wav", tone(300 + 200 * index, seconds, rate), rate) for index in range(count)
    ]


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


def test_inline_cells_decode_like_the_file(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone(440, 0.5))
    data = path.read_bytes()
    text = base64.b64encode(data).decode()
    audio = fitted(cells(path))
    decoded = audio.transform(cells(path, data, {"base64": text}, f"data:audio/wav;base64,{text}"))
    for row in decoded:
        np.testing.assert_array_equal(row, decoded[0])


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
    fresh = feature(crop="random", duration=0.3)
    fresh.load_state(state)
    assert fresh.state() == audio.state()
    np.testing.assert_array_equal(fresh.transform(cells(*paths)), audio.transform(cells(*paths)))
    torch.manual_seed(0)
    first = audio.build_encoder().eval()
    torch.manual_seed(0)
    second = fresh.build_encoder().eval()
    batch = torch.from_numpy(audio.transform(cells(*paths)))
    assert torch.equal(first(batch), second(batch))


def test_request_hints_give_a_playable_example_at_the_models_rate(tmp_path: Path) -> None:
    audio = fitted(cells(*tones(tmp_path)))
    hints = audio.request_hints()
    assert (hints["accept"], hints["sample_rate"]) == ("audio/*", 8000)
    assert hints["example"].startswith("data:audio/wav;base64,")
    decoded = audio.transform(cells(hints["example"]))
    assert decoded.shape == (1, audio.state()["samples"])
    assert not decoded.any()


def test_methods_before_fit_say_to_fit() -> None:
    audio = feature()
    for method in (audio.state, audio.build_encoder, audio.width, audio.request_hints):
        with pytest.raises(NotFittedError):
            method()
    with pytest.raises(NotFittedError):
        audio.transform(cells("a.wav"))


def test_too_many_mel_bins_for_the_window_is_a_config_error(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone(440, 0.5))
    with pytest.raises(ConfigError, match=r"audio feature 'clip': 128 mel bins are too many .* lower mel_bins"):
        feature(mel_bins=128, window=0.01).fit(cells(path))


# -- bad cells ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", np.nan])
def test_an_empty_cell_is_named_by_position(tmp_path: Path, empty: Any) -> None:
    path = write_sound(tmp_path / "a.wav", tone())
    with pytest.raises(ValueProblem, match="audio cell is empty") as raised:
        feature().fit(cells(path, path, empty))
    assert raised.value.position == 2


def test_a_missing_file_is_named_by_position_and_path(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone())
    missing = tmp_path / "missing.wav"
    with pytest.raises(ValueProblem, match="does not exist") as raised:
        feature().fit(cells(path, missing))
    assert raised.value.position == 1
    assert str(missing) in raised.value.message


@pytest.mark.parametrize(
    "content", [b"plain text, not a sound\n", b"RIFF\x10\x00\x00\x00WAVEfmt garbage"], ids=["text", "corrupt-wav"]
)
def test_a_file_that_is_not_audio_is_named_by_position(tmp_path: Path, content: bytes) -> None:
    path = write_sound(tmp_path / "a.wav", tone())
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(ValueProblem, match="is not a readable audio file") as raised:
        feature().fit(cells(path, path, bad))
    assert raised.value.position == 2
    assert str(bad) in raised.value.message
    audio = fitted(cells(path))
    with pytest.raises(ValueProblem, match="is not a readable audio file") as raised:
        audio.transform(cells(bad, path))
    assert raised.value.position == 0


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


@pytest.mark.parametrize(
    "payload",
    [
        {"base64": base64.b64encode(b"hello").decode()},
        "data:audio/wav;base64,aGVsbG8=",
        b"hello",
        {"base64": base64.b64encode(encode_sound(np.zeros(0, dtype=np.float32))).decode()},
        {"base64": "**"},
    ],
    ids=["base64-text", "data-url", "raw-bytes", "base64-empty-clip", "not-base64"],
)
def test_an_inline_payload_that_is_not_audio(tmp_path: Path, payload: Any) -> None:
    path = write_sound(tmp_path / "a.wav", tone())
    audio = fitted(cells(path))
    with pytest.raises(ValueProblem, match=r"not a readable audio file|not valid base64|no samples") as raised:
        audio.transform(cells(path, payload))
    assert raised.value.position == 1


# -- lazy decoding and the cache ----------------------------------------------------------------------------


def test_beyond_the_memory_budget_clips_are_decoded_on_access(tmp_path: Path) -> None:
    paths = cells(*fsdd_files())
    eager = fitted(paths).transform(paths)
    lazy_feature = fitted(paths, cache_memory_mb=0)
    lazy = lazy_feature.transform(paths)
    assert isinstance(lazy, LazyColumn)
    assert lazy_feature.state() == fitted(paths).state()  # the statistics do not depend on the path taken
    batch = lazy[torch.tensor([5, 1, 11])]
    assert batch.dtype == torch.float16
    np.testing.assert_array_equal(batch.numpy(), eager[[5, 1, 11]])


def test_the_cache_file_is_written_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = cells(*fsdd_files())
    audio = feature()
    audio.cache_dir = tmp_path / "cache"
    audio.fit(paths)
    first = audio.transform(paths)
    files = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert len(files) == 2
    assert files[0].startswith("audio-") and files[0].endswith(".f16")
    assert files[1].endswith(".json")
    assert isinstance(first, np.memmap)
    np.testing.assert_array_equal(first, fitted(paths).transform(paths))

    def no_decoding(*args: Any) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr("deepwright.features.decoding.decode_into", no_decoding)
    again = feature()
    again.cache_dir = tmp_path / "cache"
    again.load_state(audio.state())
    np.testing.assert_array_equal(again.transform(paths), first)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == files


def test_the_cache_key_follows_the_files_and_the_layout(tmp_path: Path) -> None:
    paths = tones(tmp_path / "clips")
    audio = feature()
    audio.cache_dir = tmp_path / "cache"
    audio.fit(cells(*paths))
    before = audio.transform(cells(*paths)).copy()
    write_sound(paths[1], tone(2000, 0.5))  # new content (and modification time)
    after = audio.transform(cells(*paths))
    assert not np.array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    other_rate = feature(sample_rate=4000)
    other_rate.cache_dir = tmp_path / "cache"
    other_rate.fit(cells(*paths))
    assert other_rate.transform(cells(*paths)).shape == (3, 2000)
    assert len(list((tmp_path / "cache").glob("*.f16"))) == 3
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_spectrogram_settings_share_the_cache_of_decoded_clips(tmp_path: Path) -> None:
    paths = cells(*tones(tmp_path / "clips"))
    for options in ({}, {"mel_bins": 8, "window": 0.05, "hop": 0.02}, {"encoder": {"type": "rnn"}}):
        audio = feature(**options)
        audio.cache_dir = tmp_path / "cache"
        audio.fit(paths)
        audio.transform(paths)
    assert len(list((tmp_path / "cache").glob("*.f16"))) == 1


def test_inline_cells_are_not_cached(tmp_path: Path) -> None:
    path = write_sound(tmp_path / "a.wav", tone())
    audio = feature()
    audio.cache_dir = tmp_path / "cache"
    audio.fit(cells(path))
    before = sorted((tmp_path / "cache").iterdir())
    decoded = audio.transform(cells(path, path.read_bytes()))
    assert isinstance(decoded, np.ndarray) and not isinstance(decoded, np.memmap)
    assert sorted((tmp_path / "cache").iterdir()) == before


# -- encoder ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "backbone", "width"),
    [
        ({"channels": [4, 6]}, ConvStack, 6),
        ({"type": "resnet", "width": 4, "blocks": [1, 1]}, ResNet, 8),
        ({"type": "conv1d", "channels": [8, 12]}, ConvStack, 12),
        ({"type": "rnn", "cell": "lstm", "hidden_size": 5, "layers": 1}, RecurrentEncoder, 10),
        ({"type": "rnn", "hidden_size": 5, "bidirectional": False}, RecurrentEncoder, 5),
        ({"type": "transformer", "size": 8, "heads": 2, "layers": 1, "feedforward": 16}, FrameTransformer, 8),
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
    audio = fitted(cells(*tones(tmp_path)), encoder={"type": "conv1d", "channels": [8]})
    first = audio.build_encoder().backbone.layers[0]
    assert isinstance(first, torch.nn.Conv1d)
    assert first.in_channels == 16


def test_the_encoder_normalises_each_mel_band_with_the_training_statistics(tmp_path: Path) -> None:
    paths = cells(*tones(tmp_path))
    audio = fitted(paths, encoder={"type": "conv1d", "channels": [8]})
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
