"""Helpers for the audio tests: the small spoken-digit fixture, sounds written with soundfile, and a tiny config.

The only sound files in the repository are the 12 clips of `tests/fixtures/fsdd/` (see tests/fixtures/README.md);
every other sound is generated here, in the test's temporary folder.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile
import yaml

from deepwright.config import AudioFeatureConfig
from deepwright.features.audio import AudioFeature
from tests.helpers import write_config

FSDD = Path(__file__).parent / "fixtures" / "fsdd"  # manifest.csv and recordings/: 12 clips of 0, 1 and 2 at 8 kHz


def audio_feature(**options: Any) -> AudioFeature:
    """An input audio feature named 'clip' with 16 mel bins, a [4, 8] ConvStack and the given options."""
    settings = {"name": "clip", "type": "audio", "mel_bins": 16, "encoder": {"dims": [4, 8]}, **options}
    return AudioFeature(AudioFeatureConfig.model_validate(settings), "input")


def copy_fsdd(folder: Path) -> Path:
    """A copy of the spoken-digit fixture at `folder` (for tests that add or spoil files); returns `folder`."""
    shutil.copytree(FSDD, folder)
    return folder


def quick(config: dict[str, Any]) -> dict[str, Any]:
    """An inferred config of the fixture cut down to one epoch of a small model, for speed, without early stopping
    (the fixture's six training rows leave no validation rows)."""
    config["input_features"][0]["encoder"] = {"dims": [4, 8]}
    config["input_features"][0]["mel_bins"] = 16
    config["trainer"].update({"epochs": 1, "batch_size": 4, "checkpoint": False})
    config["trainer"].pop("early_stopping")
    return config


def audio_project(folder: Path, cli: Callable[..., Any]) -> Path:
    """`folder` with a copy of the fixture (fsdd/manifest.csv and recordings/) and config.yaml from `deepwright
    init` (run by `cli`), cut down by `quick`; returns `folder`."""
    copy_fsdd(folder / "fsdd")
    completed = cli("init", "--data", "fsdd/manifest.csv", "--target", "digit", "-o", "config.yaml", cwd=folder)
    assert completed.returncode == 0, completed.stderr
    write_config(folder, quick(yaml.safe_load((folder / "config.yaml").read_text())))
    return folder


def spoil_audio(project: Path, row: int, cell: str) -> None:
    """Set the `path` cell of data row `row` (1-based, as messages count) of the project's fsdd/manifest.csv."""
    frame = pd.read_csv(FSDD / "manifest.csv")
    frame.loc[row - 1, "path"] = cell
    frame.to_csv(project / "fsdd" / "manifest.csv", index=False)


def fsdd_files() -> list[Path]:
    """Every fixture clip, sorted by name."""
    return sorted((FSDD / "recordings").glob("*.wav"))


def tone(
    frequency: float = 440.0, seconds: float = 0.5, rate: int = 8000, amplitude: float = 0.5, phase: float = 0.0
) -> np.ndarray:
    """A sine wave (samples,) as float32."""
    times = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * times + phase)).astype(np.float32)


def tones(folder: Path, count: int = 3, seconds: float = 0.5, rate: int = 8000) -> list[Path]:
    """`count` WAV tones of 300, 500, 700… Hz in `folder`, named 0.wav, 1.wav…; returns their paths."""
    return [
        write_sound(folder / f"{index}.wav", tone(300 + 200 * index, seconds, rate), rate) for index in range(count)
    ]


def write_sound(path: Path, samples: np.ndarray, rate: int = 8000, subtype: str | None = None) -> Path:
    """Write `samples` ((frames,) or (frames, channels)) to `path` in the format its suffix names; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


def encode_sound(samples: np.ndarray, rate: int = 8000, file_format: str = "WAV") -> bytes:
    """`samples` as the bytes of a sound file."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=file_format)
    return buffer.getvalue()


def tone_table(folder: Path, per_class: int = 8, rate: int = 8000) -> Path:
    """A CSV of tone clips in `folder`: `clip` (a path), `level` (a number) and `pitch` ('low' 300 Hz or 'high'
    1,500 Hz; both classes with the same spread of lengths, 0.2-0.4 s, and loudness, so that only the pitch tells
    them apart), and a `split` column (half train, a quarter each validation and test); returns the CSV's path."""
    rng = np.random.default_rng(0)
    rows = []
    for pitch, frequency in (("low", 300.0), ("high", 1500.0)):
        for index in range(per_class):
            seconds = 0.2 + 0.2 * ((3 * index) % per_class) / per_class
            amplitude = 0.2 + 0.6 * ((5 * index + 1) % per_class) / per_class
            samples = tone(frequency, seconds, rate, amplitude, float(rng.uniform(0, 6)))
            name = f"clips/{pitch}-{index}.wav"
            write_sound(folder / name, samples, rate)
            split = "train" if index < per_class // 2 else "validation" if index < 3 * per_class // 4 else "test"
            rows.append({"clip": name, "level": float(rng.normal()), "pitch": pitch, "split": split})
    path = folder / "tones.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def audio_config(
    *,
    audio: dict[str, Any] | None = None,
    inputs: list[dict[str, Any]] = (),
    output: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    **trainer: Any,
) -> dict[str, Any]:
    """A config for an audio column `clip` (plus `inputs`) predicting `pitch`: 16 mel bins, a 2-layer [4, 8]
    ConvStack, a 16-unit combiner, 3 epochs of batch 8, the `split` column, no checkpoints; `audio` and `trainer`
    override options."""
    return {
        "input_features": [
            {"name": "clip", "type": "audio", "mel_bins": 16, "encoder": {"dims": [4, 8]}, **(audio or {})},
            *inputs,
        ],
        "output_features": [output or {"name": "pitch", "type": "category"}],
        "combiner": {"type": "concat", "dims": [16]},
        "preprocessing": {"split": split or {"method": "column", "column": "split"}},
        "trainer": {
            "epochs": 3,
            "batch_size": 8,
            "optimizer": {"type": "adam", "lr": 0.01},
            "checkpoint": False,
            **trainer,
        },
    }
