"""Sequence and series columns in a table model, end to end: a sequence classifier and a series classifier
train, evaluate, save, load and predict from the Python API and the CLI; a series target is forecast as a vector;
bad cells (empty sequences, ragged or non-numeric series) are errors naming the row, with exit status 2 and
nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import deepwright as dp
from deepwright.errors import DataError
from tests.helpers import Outcome, assert_user_error, files_under

CLI = Callable[..., Outcome]
TOKENS = ["C4", "D4", "E4", "G4"]


def melodies(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """Note sequences of 3-8 tokens, as space-separated strings or JSON lists; the label is the last note."""
    rng = np.random.default_rng(seed)
    sequences = [list(rng.choice(TOKENS, rng.integers(3, 9))) for _ in range(rows)]
    cells = [" ".join(notes) if index % 2 else json.dumps(notes) for index, notes in enumerate(sequences)]
    return pd.DataFrame(
        {"notes": cells, "tempo": rng.normal(100, 10, rows).round(), "last": [s[-1] for s in sequences]}
    )


def curves(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """Series of 5-12 values, rising or falling; the label says which, the target is the next three values."""
    rng = np.random.default_rng(seed)
    cells, labels, following = [], [], []
    for _ in range(rows):
        length, slope = int(rng.integers(5, 13)), rng.choice([-1.0, 1.0])
        values = slope * np.arange(length + 3) + rng.normal(0, 0.1, length + 3)
        cells.append(" ".join(f"{value:.3f}" for value in values[:length]))
        labels.append("up" if slope > 0 else "down")
        following.append(json.dumps([round(value, 3) for value in values[length:]]))
    return pd.DataFrame({"curve": cells, "direction": labels, "next": following})


def sequence_config(encoder: dict | None = None, epochs: int = 12) -> dict:
    return {
        "input_features": [
            {"name": "notes", "type": "sequence", "embedding_dim": 8, "encoder": encoder or {"dim": 16}},
            {"name": "tempo", "type": "number"},
        ],
        "output_features": [{"name": "last", "type": "category"}],
        "combiner": {"dims": [16]},
        "preprocessing": {"split": {"method": "random", "fractions": [0.7, 0.15, 0.15], "seed": 1}},
        "trainer": {"epochs": epochs, "batch_size": 16, "optimizer": {"lr": 0.01}},
    }


def test_sequence_classifier_api(tmp_path: Path, no_plots: None) -> None:
    frame = melodies()
    pipeline = dp.Pipeline.from_config(sequence_config())
    result = pipeline.fit(frame, output_dir=tmp_path / "runs", progress=False)
    assert result.metrics["test"]["last"]["accuracy"] >= 0.8  # the last note: an LSTM learns it in a few epochs
    loaded = dp.load(result.bundle_dir)
    rows = frame.drop(columns=["last"]).iloc[:5]
    pd.testing.assert_frame_equal(loaded.predict(rows), pipeline.predict(rows))
    one = loaded.predict({"notes": ["E4", "C4", "G4"], "tempo": 90})
    assert one["last_prediction"] in TOKENS
    assert loaded.evaluate(frame)["last"]["accuracy"] >= 0.8


@pytest.mark.parametrize(
    "encoder",
    [
        {"type": "rnn", "cell": "rnn", "dim": 8, "reduction": "max"},
        {"type": "transformer", "dim": 8, "heads": 2, "layers": 1, "feedforward_dim": 16},
        {"type": "conv1d", "dims": [8], "pools": [1]},
    ],
    ids=["rnn", "transformer", "conv1d"],
)
def test_every_sequence_encoder_trains(tmp_path: Path, no_plots: None, encoder: dict) -> None:
    result = dp.Pipeline.from_config(sequence_config(encoder, epochs=2)).fit(
        melodies(60), output_dir=tmp_path / "runs", progress=False
    )
    assert np.isfinite(result.history[-1]["train_loss"])


def test_series_classifier_and_series_target_api(tmp_path: Path, no_plots: None) -> None:
    frame = curves()
    options = {
        "input_features": [{"name": "curve", "type": "timeseries", "encoder": {"dim": 8}}],
        "output_features": [{"name": "direction", "type": "binary"}, {"name": "next", "type": "timeseries"}],
        "combiner": {"dims": [16]},
        "preprocessing": {"split": {"method": "random", "fractions": [0.7, 0.15, 0.15], "seed": 1}},
        "trainer": {"epochs": 15, "batch_size": 16, "optimizer": {"lr": 0.01}},
    }
    pipeline = dp.Pipeline.from_config(options)
    result = pipeline.fit(frame, output_dir=tmp_path / "runs", progress=False)
    test = result.metrics["test"]
    assert test["direction"]["accuracy"] >= 0.9
    assert set(test["next"]) == {"mae", "rmse", "mape", "smape"}
    loaded = dp.load(result.bundle_dir)
    prediction = loaded.predict({"curve": [0, 1, 2, 3, 4, 5]})
    assert prediction["direction_prediction"] == "up"
    assert len(prediction["next_prediction"]) == 3


# -- the command line --------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with note sequences and a two-epoch classifier config."""
    melodies(80).to_csv(tmp_path / "notes.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(sequence_config(epochs=2)))
    return tmp_path


def test_sequence_classifier_cli(cli: CLI, project: Path, no_plots: None) -> None:
    outcome = cli("train", "--config", "config.yaml", "--data", "notes.csv", "--output", "runs", "--quiet", cwd=project)
    assert outcome.returncode == 0, outcome.stderr
    melodies(6, seed=3).drop(columns=["last"]).to_csv(project / "new.csv", index=False)
    outcome = cli("predict", "--model", "runs/notes/model", "--data", "new.csv", "--output", "p.csv", cwd=project)
    assert outcome.returncode == 0, outcome.stderr
    assert set(pd.read_csv(project / "p.csv")["last_prediction"]) <= set(TOKENS)
    outcome = cli("evaluate", "--model", "runs/notes/model", "--data", "notes.csv", "--output", "ev", cwd=project)
    assert outcome.returncode == 0, outcome.stderr
    assert "accuracy" in outcome.stdout


def spoiled(cli: CLI, project: Path, frame: pd.DataFrame, config: dict | None = None) -> str:
    frame.to_csv(project / "notes.csv", index=False)
    if config is not None:
        (project / "config.yaml").write_text(yaml.safe_dump(config))
    before = files_under(project)
    outcome = cli("train", "--config", "config.yaml", "--data", "notes.csv", "--output", "runs", "--quiet", cwd=project)
    message = assert_user_error(outcome)
    assert files_under(project) == before
    return message


def test_an_empty_sequence(cli: CLI, project: Path) -> None:
    frame = melodies(80)
    frame.loc[4, "notes"] = "[]"
    assert "row 5, column 'notes': sequence is empty" in spoiled(cli, project, frame)


def test_a_missing_sequence(cli: CLI, project: Path) -> None:
    frame = melodies(80)
    frame.loc[6, "notes"] = None
    assert "row 7, column 'notes': sequence is missing" in spoiled(cli, project, frame)


def series_config() -> dict:
    return {
        "input_features": [{"name": "curve", "type": "timeseries"}],
        "output_features": [{"name": "direction", "type": "binary"}],
        "preprocessing": {"split": {"method": "random", "fractions": [0.8, 0.2]}},
        "trainer": {"epochs": 1},
    }


def test_a_value_in_a_series_that_is_not_a_number(cli: CLI, project: Path) -> None:
    frame = curves(40)
    frame.loc[3, "curve"] = "1.0 2.0 abc 4.0"
    message = spoiled(cli, project, frame, series_config())
    assert "row 4, column 'curve': position 3 of the series: 'abc' is not a number" in message


def test_a_ragged_series(cli: CLI, project: Path) -> None:
    frame = curves(40)
    frame["curve"] = "[[1, 2], [3, 4]]"
    frame.loc[9, "curve"] = "[[1, 2], [3]]"
    message = spoiled(cli, project, frame, series_config())
    assert "row 10, column 'curve': ragged series: step 2 has 1 values, step 1 has 2" in message


def test_an_empty_series_in_a_request(tmp_path: Path, no_plots: None) -> None:
    options = series_config()
    pipeline = dp.Pipeline.from_config(options)
    pipeline.fit(curves(40), output_dir=tmp_path / "runs", progress=False)
    with pytest.raises(DataError, match="the request, row 2, column 'curve': series is empty"):
        pipeline.predict([{"curve": "1 2 3"}, {"curve": "[]"}])
