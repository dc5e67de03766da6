"""Resuming and reproducing whole runs through `Pipeline.fit`: a resumed run ends exactly where an
uninterrupted one does, and the same seed gives the same model twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import deepwright as dp
from tests.helpers import make_config, make_frame

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_frame(96)


def config(epochs: int, **trainer: Any) -> dict:
    # Dropout and batch norm make the run depend on the global torch RNG as well as the shuffling.
    base = make_config(epochs=epochs, **trainer)
    base["combiner"] = {"dims": [16], "dropout": 0.2, "norm": "batch"}
    base["input_features"][1]["encoder"] = {"type": "embedding", "dropout": 0.1}
    return base


def fit(settings: dict, data: pd.DataFrame, output: Path, **kwargs: Any) -> tuple[dp.Pipeline, Any]:
    pipeline = dp.Pipeline.from_config(settings)
    return pipeline, pipeline.fit(data, output_dir=output, progress=False, **kwargs)


def assert_same_weights(first: dp.Pipeline, second: dp.Pipeline) -> None:
    expected = first.predictor.model.state_dict()
    actual = second.predictor.model.state_dict()
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name


@pytest.mark.parametrize(
    "trainer",
    [
        {},
        {"optimizer": {"type": "sgd", "lr": 0.05}, "schedule": {"type": "step", "step_epochs": 1, "gamma": 0.7}},
        {"early_stopping": {"metric": "val_loss", "patience": 10}},
    ],
    ids=["adam-constant", "sgd-step", "early-stopping"],
)
def test_resume_after_k_epochs_equals_an_uninterrupted_run(data: pd.DataFrame, tmp_path: Path, trainer: dict) -> None:
    full, full_result = fit(config(5, **trainer), data, tmp_path, run_name="full")
    _, part_result = fit(config(2, **trainer), data, tmp_path, run_name="part")
    resumed, resumed_result = fit(config(5, **trainer), data, tmp_path, resume_from=part_result.run_dir)

    assert resumed_result.run_dir == part_result.run_dir
    assert_same_weights(full, resumed)
    assert [r["train_loss"] for r in resumed_result.history] == [r["train_loss"] for r in full_result.history]
    assert resumed_result.metrics == full_result.metrics
    log = (part_result.run_dir / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2, 3, 4, 5]


def test_resume_after_a_real_interruption_with_a_cosine_schedule(
    data: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schedule planned over all epochs resumes exactly when the run stopped mid-way under its own config."""
    settings = config(5, schedule={"type": "cosine", "warmup_fraction": 0.2})
    full, _ = fit(settings, data, tmp_path, run_name="full")

    from deepwright.training.checkpoint import CheckpointFolder

    original = CheckpointFolder.save

    def save_then_interrupt(folder: CheckpointFolder, payload: dict) -> None:
        original(folder, payload)
        if payload["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointFolder, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(settings, data, tmp_path, run_name="interrupted")
    monkeypatch.setattr(CheckpointFolder, "save", original)
    resumed, _ = fit(settings, data, tmp_path, resume_from=tmp_path / "interrupted")
    assert_same_weights(full, resumed)


def test_same_seed_gives_identical_results(data: pd.DataFrame, tmp_path: Path) -> None:
    first, first_result = fit(config(3), data, tmp_path)
    second, second_result = fit(config(3), data, tmp_path)
    assert first_result.run_dir != second_result.run_dir  # a second run gets its own directory
    assert_same_weights(first, second)
    assert first_result.metrics == second_result.metrics
    assert first_result.history[-1]["train_loss"] == second_result.history[-1]["train_loss"]
    assert first.predict(data).equals(second.predict(data))


def test_a_different_seed_gives_a_different_model(data: pd.DataFrame, tmp_path: Path) -> None:
    first, _ = fit(config(2, seed=1), data, tmp_path)
    second, _ = fit(config(2, seed=2), data, tmp_path)
    expected = first.predictor.model.state_dict()
    actual = second.predictor.model.state_dict()
    assert any(not torch.equal(actual[name], tensor) for name, tensor in expected.items())


def test_resume_needs_a_checkpoint(data: pd.DataFrame, tmp_path: Path) -> None:
    from deepwright.errors import DataError

    _, result = fit(config(1), data, tmp_path)
    (result.run_dir / "checkpoints" / "last.pt").unlink()
    with pytest.raises(DataError, match="no checkpoint"):
        fit(config(2), data, tmp_path, resume_from=result.run_dir)


def test_resume_from_a_folder_that_is_not_a_run(data: pd.DataFrame, tmp_path: Path) -> None:
    from deepwright.errors import DeepwrightError

    with pytest.raises(DeepwrightError):
        fit(config(2), data, tmp_path, resume_from=tmp_path / "no-such-run")
