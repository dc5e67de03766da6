"""Audio through the command line, in-process (`deepwright.cli.main`): a spoken-digit model from `init` to
predictions by path and by base64, and bad audio input.

Each user mistake exits with status 2 and a one- or two-line 'error:' message naming the file, row and column
(and the clip's path), with no traceback and nothing written. Stereo clips and clips at another sample rate are
not mistakes: they train, mixed down and resampled.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.audio import FSDD, audio_project, spoil_audio, tone, write_sound
from tests.helpers import Outcome, train_error, write_config

CLI = Callable[..., Outcome]
FIRST_TEST_ROW = 1  # manifest.csv alternates test and train rows: 1, 3, 5… are test rows, 2, 4, 6… training rows

pytestmark = pytest.mark.usefixtures("no_plots")
spoil = spoil_audio


@pytest.fixture
def project(tmp_path: Path, cli: CLI) -> Path:
    """`tests.audio.audio_project`: the spoken-digit fixture with config.yaml from `deepwright init`, cut to one
    epoch; each test spoils one thing."""
    return audio_project(tmp_path, cli)


def train(cli: CLI, project: Path) -> str:
    """`tests.helpers.train_error` on fsdd/manifest.csv: a user error, nothing written; returns the message."""
    return train_error(cli, project, "fsdd/manifest.csv")


# -- the whole job from the command line --------------------------------------------------------------------


def test_init_recognises_the_audio_column_and_the_split_column(cli: CLI, tmp_path: Path) -> None:
    completed = cli("init", "--data", FSDD / "manifest.csv", "--target", "digit", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    config = yaml.safe_load(completed.stdout)
    features = {feature["name"]: feature for feature in config["input_features"]}
    assert features["path"]["type"] == "audio"
    assert set(features["path"]["augmentation"]) == {"time_shift", "noise", "time_mask", "frequency_mask"}
    assert "split" not in features  # the split column is not an input…
    assert config["preprocessing"]["split"] == {"method": "column", "column": "split"}  # …it is the split
    assert config["output_features"] == [{"name": "digit", "type": "category"}]
    trainer = config["trainer"]
    assert (trainer["epochs"], trainer["batch_size"], trainer["schedule"]) == (30, 64, {"type": "cosine"})
    assert "# audio inputs → 30 epochs at batch 64" in completed.stdout


def test_train_evaluate_and_predict_by_path_and_by_base64(cli: CLI, project: Path) -> None:
    completed = cli(
        "train", "--config", "config.yaml", "--data", "fsdd/manifest.csv", "--output", "runs", "--quiet", cwd=project
    )
    assert completed.returncode == 0, completed.stderr
    model = project / "runs" / "manifest" / "model"
    assert (model / "weights.safetensors").is_file()
    preprocessing = json.loads((model / "preprocessing.json").read_text())["inputs"]["path"]
    assert preprocessing["sample_rate"] == 8000

    completed = cli("evaluate", "--model", model, "--data", "fsdd/manifest.csv", "--output", "evaluation", cwd=project)
    assert completed.returncode == 0, completed.stderr
    assert json.loads((project / "evaluation" / "metrics.json").read_text())["data"]["digit"]["accuracy"] >= 0

    frame = pd.read_csv(FSDD / "manifest.csv")
    requests = [
        {"path": {"base64": base64.b64encode((FSDD / path).read_bytes()).decode()}, "speaker": speaker}
        for path, speaker in zip(frame["path"], frame["speaker"])
    ]
    (project / "requests.jsonl").write_text("".join(json.dumps(row) + "\n" for row in requests), encoding="utf-8")
    for data, output in (("fsdd/manifest.csv", "from-paths.csv"), ("requests.jsonl", "from-base64.csv")):
        completed = cli("predict", "--model", model, "--data", data, "--output", output, cwd=project)
        assert completed.returncode == 0, completed.stderr
    from_paths = pd.read_csv(project / "from-paths.csv")
    pd.testing.assert_frame_equal(from_paths, pd.read_csv(project / "from-base64.csv"))
    assert len(from_paths) == 12
    assert set(from_paths["digit_prediction"]) <= {0, 1, 2}


def test_a_folder_of_class_folders_of_clips(cli: CLI, tmp_path: Path) -> None:
    for label, frequency in (("low", 300.0), ("high", 1500.0)):
        for index in range(4):
            write_sound(tmp_path / "clips" / label / f"{index}.wav", tone(frequency, 0.2 + 0.05 * index))
    completed = cli("init", "--data", "clips", "-o", "config.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert [(feature["name"], feature["type"]) for feature in config["input_features"]] == [("audio", "audio")]
    assert config["output_features"] == [{"name": "label", "type": "binary"}]
    config["input_features"][0].update({"encoder": {"dims": [4]}, "mel_bins": 16})
    config["trainer"].update({"epochs": 1, "batch_size": 4})
    config["trainer"].pop("early_stopping")
    write_config(tmp_path, config)
    completed = cli("train", "--config", "config.yaml", "--data", "clips", "--quiet", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr


def test_stereo_clips_and_clips_at_other_rates_train_mixed_down_and_resampled(cli: CLI, project: Path) -> None:
    """Two training clips replaced: one stereo at 8 kHz, one mono at 44.1 kHz; the run trains at 8 kHz."""
    recordings = project / "fsdd" / "recordings"
    write_sound(recordings / "stereo.wav", np.stack([tone(300, 0.4), tone(600, 0.4)], axis=1))
    write_sound(recordings / "fast.wav", tone(300, 0.4, rate=44100), rate=44100)
    spoil(project, 2, "recordings/stereo.wav")
    frame = pd.read_csv(project / "fsdd" / "manifest.csv")
    frame.loc[3, "path"] = "recordings/fast.wav"  # row 4, a training row
    frame.to_csv(project / "fsdd" / "manifest.csv", index=False)
    completed = cli(
        "train", "--config", "config.yaml", "--data", "fsdd/manifest.csv", "--output", "runs", "--quiet", cwd=project
    )
    assert completed.returncode == 0, completed.stderr
    state = json.loads((project / "runs" / "manifest" / "preprocessing.json").read_text())["inputs"]["path"]
    assert state["sample_rate"] == 8000


# -- files that cannot be read ------------------------------------------------------------------------------


@pytest.mark.parametrize("row", [2, FIRST_TEST_ROW], ids=["training-row", "test-row"])
def test_a_missing_clip_names_the_row_and_the_path(cli: CLI, project: Path, row: int) -> None:
    spoil(project, row, "recordings/missing.wav")
    message = train(cli, project)
    assert message.startswith(f"error: fsdd/manifest.csv, row {row}, column 'path': ")
    assert str(project / "fsdd" / "recordings" / "missing.wav") in message
    assert "does not exist" in message


@pytest.mark.parametrize("row", [2, FIRST_TEST_ROW], ids=["training-row", "test-row"])
@pytest.mark.parametrize("kind", ["text", "corrupt", "empty-file"])
def test_a_file_that_is_not_audio_names_the_row_and_the_path(cli: CLI, project: Path, kind: str, row: int) -> None:
    bad = project / "fsdd" / "recordings" / "bad.wav"
    content = {
        "text": b"a text file with a sound's name\n",
        "corrupt": b"RIFF\x24\x00\x00\x00WAVEjunk",
        "empty-file": b"",
    }
    bad.write_bytes(content[kind])
    spoil(project, row, "recordings/bad.wav")
    message = train(cli, project)
    assert message.startswith(f"error: fsdd/manifest.csv, row {row}, column 'path': ")
    assert f"{str(bad)!r} is not a readable audio file" in message


@pytest.mark.parametrize("row", [2, FIRST_TEST_ROW], ids=["training-row", "test-row"])
def test_a_zero_length_clip_names_the_row(cli: CLI, project: Path, row: int) -> None:
    write_sound(project / "fsdd" / "recordings" / "empty.wav", np.zeros(0, dtype=np.float32))
    spoil(project, row, "recordings/empty.wav")
    message = train(cli, project)
    assert message.startswith(f"error: fsdd/manifest.csv, row {row}, column 'path': ")
    assert "empty.wav' holds no samples (a zero-length clip)" in message


# -- config mistakes ----------------------------------------------------------------------------------------


def test_too_many_mel_bins_for_the_window(cli: CLI, project: Path) -> None:
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["input_features"][0].update({"mel_bins": 200, "window": 0.01})
    write_config(project, config)
    message = train(cli, project)
    assert "audio feature 'path': 200 mel bins are too many for a 128-point FFT at 8000 Hz" in message
