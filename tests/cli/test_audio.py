"""Audio through the command line, in-process (`deepwright.cli.main`): a spoken-digit model from `init` to
predictions by path and by base64, and bad audio input.

Each user mistake exits with status 2 and a one- or two-line 'error:' message naming the file, row and column
(and the clip's path), with no traceback and nothing written. Stereo clips and clips at another sample rate are
not mistakes: they train, mixed down and resampled.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import deepwright as dp
from deepwright.errors import DataError
from tests.audio import FSDD, copy_fsdd, encode_sound, tone, write_sound
from tests.helpers import Outcome, assert_user_error, files_under

CLI = Callable[..., Outcome]
FIRST_TEST_ROW = 1  # manifest.csv alternates test and train rows: 1, 3, 5… are test rows, 2, 4, 6… training rows

pytestmark = pytest.mark.usefixtures("no_plots")


def quick(config: dict[str, Any]) -> dict[str, Any]:
    """An inferred config cut down to one epoch of a small model, for speed, without early stopping (the fixture's
    six training rows leave no validation rows)."""
    config["input_features"][0]["encoder"] = {"channels": [4, 8]}
    config["input_features"][0]["mel_bins"] = 16
    config["trainer"].update({"epochs": 1, "batch_size": 4, "checkpoint": False})
    config["trainer"].pop("early_stopping")
    return config


@pytest.fixture
def project(tmp_path: Path, cli: CLI) -> Path:
    """A copy of the spoken-digit fixture (manifest.csv and recordings/) with config.yaml from `deepwright init`,
    cut to one epoch; each test spoils one thing."""
    copy_fsdd(tmp_path / "fsdd")
    completed = cli("init", "--data", "fsdd/manifest.csv", "--target", "digit", "-o", "config.yaml", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    write_config(tmp_path, quick(config))
    return tmp_path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A one-epoch spoken-digit model's bundle (no plots); tests must not modify it."""
    from deepwright.data.infer import infer_config
    from deepwright.data.io import read_table

    folder = tmp_path_factory.mktemp("audio_bundle")
    config = quick(infer_config(read_table(FSDD / "manifest.csv"), "digit").config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("deepwright.evaluation.run_plots.write_run_plots", lambda *args, **kwargs: [])
        result = dp.Pipeline.from_config(config).fit(
            FSDD / "manifest.csv", output_dir=folder / "runs", run_name="fsdd", progress=False
        )
    yield result.bundle_dir


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def spoil(project: Path, row: int, cell: str) -> None:
    """Set the `path` cell of data row `row` (1-based, as messages count) of fsdd/manifest.csv."""
    frame = pd.read_csv(FSDD / "manifest.csv")
    frame.loc[row - 1, "path"] = cell
    frame.to_csv(project / "fsdd" / "manifest.csv", index=False)


def train(cli: CLI, project: Path) -> str:
    """Run `deepwright train` expecting a user error; check nothing at all was written; return the message."""
    before = files_under(project)
    completed = cli(
        "train", "--config", "config.yaml", "--data", "fsdd/manifest.csv", "--output", "runs", "--quiet", cwd=project
    )
    message = assert_user_error(completed)
    assert files_under(project) == before  # no run directory, no cache, no partial files
    return message


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
    config["input_features"][0].update({"encoder": {"channels": [4]}, "mel_bins": 16})
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


def test_an_empty_audio_cell(cli: CLI, project: Path) -> None:
    spoil(project, 4, "")
    message = train(cli, project)
    assert message.startswith("error: fsdd/manifest.csv, row 4, column 'path': ")
    assert "empty" in message


# -- bad payloads at prediction time ------------------------------------------------------------------------

NOT_AUDIO = base64.b64encode(b"just some text, not a sound").decode()
EMPTY_CLIP = base64.b64encode(encode_sound(np.zeros(0, dtype=np.float32))).decode()


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ({"base64": NOT_AUDIO}, "the base64 payload is not a readable audio file"),
        (f"data:audio/wav;base64,{NOT_AUDIO}", "the base64 payload is not a readable audio file"),
        ({"base64": EMPTY_CLIP}, "the base64 payload holds no samples"),
        ({"base64": "%%% not base64 %%%"}, "not valid base64"),
        ("no/such/clip.wav", "does not exist"),
        (None, "empty"),
    ],
    ids=["base64", "data-url", "empty-clip", "invalid-base64", "missing-path", "null"],
)
def test_predict_names_the_request_row_and_column_of_a_bad_payload(bundle: Path, cell: Any, reason: str) -> None:
    model = dp.load(bundle)
    good = {"path": {"base64": base64.b64encode((FSDD / "recordings" / "1_george_5.wav").read_bytes()).decode()}}
    good["speaker"] = "george"
    with pytest.raises(DataError) as raised:
        model.predict([good, good, {"path": cell, "speaker": "george"}])
    error = raised.value
    assert (error.row, error.column, error.source) == (3, "path", "the request")
    assert str(error).startswith("the request, row 3, column 'path': ")
    assert reason in str(error)
    assert len(str(error).splitlines()) == 1


def test_predict_command_with_a_payload_that_is_not_audio(cli: CLI, bundle: Path, tmp_path: Path) -> None:
    good = base64.b64encode((FSDD / "recordings" / "0_george_0.wav").read_bytes()).decode()
    rows = [{"path": {"base64": text}, "speaker": "george"} for text in (good, good, NOT_AUDIO)]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    before = files_under(tmp_path)
    completed = cli("predict", "--model", bundle, "--data", "requests.jsonl", "--output", "out.csv", cwd=tmp_path)
    message = assert_user_error(completed)
    assert message.startswith("error: requests.jsonl, row 3, column 'path': ")
    assert "not a readable audio file" in message
    assert files_under(tmp_path) == before


# -- config mistakes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audio", "expected"),
    [
        ({"crop": "middle"}, "input_features[0].crop: 'middle' is not a choice"),
        ({"missing": {"strategy": "mean"}}, "a clip cannot be filled in"),
        ({"encoder": {"type": "lstm"}}, "unknown type 'lstm'"),
        ({"encoder": {"type": "transformer", "size": 10, "heads": 4}}, "size 10 must be a multiple of heads 4"),
        ({"augmentation": {"noise": {"snr_db": [30, 10]}}}, "30 is above 10"),
        ({"augmentaton": {}}, "did you mean 'augmentation'?"),
        ({"mel_bins": 0}, "input_features[0].mel_bins"),
        ({"sample_rate": -8000}, "input_features[0].sample_rate"),
    ],
)
def test_audio_config_mistakes(cli: CLI, project: Path, audio: dict[str, Any], expected: str) -> None:
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["input_features"][0].update(audio)
    write_config(project, config)
    before = files_under(project)
    completed = cli(
        "train", "--config", "config.yaml", "--data", "fsdd/manifest.csv", "--output", "runs", "--quiet", cwd=project
    )
    message = assert_user_error(completed, max_lines=3)
    assert expected in message
    assert files_under(project) == before


def test_too_many_mel_bins_for_the_window(cli: CLI, project: Path) -> None:
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["input_features"][0].update({"mel_bins": 200, "window": 0.01})
    write_config(project, config)
    message = train(cli, project)
    assert "audio feature 'path': 200 mel bins are too many for a 128-point FFT at 8000 Hz" in message


def test_audio_cannot_be_an_output(cli: CLI, project: Path) -> None:
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["output_features"] = [{"name": "path", "type": "audio"}]
    config["input_features"] = [{"name": "digit", "type": "category"}]
    write_config(project, config)
    completed = cli("train", "--config", "config.yaml", "--data", "fsdd/manifest.csv", "--quiet", cwd=project)
    assert "type 'audio' cannot be an output" in assert_user_error(completed, max_lines=3)
