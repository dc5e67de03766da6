"""The Python API: Pipeline.from_config / fit / evaluate / predict / save and deepwright.load, and what a run
writes to its directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

import deepwright as dp
from deepwright.config import load_config
from deepwright.data.split import split_rows
from deepwright.errors import ConfigError, DataError, NotFittedError
from tests.helpers import TARGET, Trained, make_config, make_frame, write_frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_public_surface() -> None:
    assert dp.__all__ == ["Pipeline", "__version__", "load"]
    assert isinstance(dp.__version__, str)
    with pytest.raises(AttributeError):
        dp.not_a_thing  # noqa: B018


def test_from_config_accepts_a_path_a_dict_and_a_config(tmp_path: Path) -> None:
    settings = make_config()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    config = load_config(settings)
    assert dp.Pipeline.from_config(path).config == config
    assert dp.Pipeline.from_config(str(path)).config == config
    assert dp.Pipeline.from_config(settings).config == config
    assert dp.Pipeline.from_config(config).config is config


def test_an_unfitted_pipeline_says_what_to_call(frame: pd.DataFrame, tmp_path: Path) -> None:
    pipeline = dp.Pipeline.from_config(make_config())
    for use in (lambda: pipeline.predict(frame), lambda: pipeline.evaluate(frame), lambda: pipeline.save(tmp_path)):
        with pytest.raises(NotFittedError, match="fit"):
            use()


def test_result(trained: Trained) -> None:
    result = trained.result
    assert result.run_dir.name == "people"
    assert result.bundle_dir == result.run_dir / "model"
    assert len(result.history) == 4
    assert result.split_sizes == {"train": 84, "validation": 18, "test": 18}
    assert result.cleaning.rows_in == result.cleaning.rows_out == 120
    assert result.best_epoch is None  # no early stopping configured
    assert result.stopped_early is False
    assert result.seconds > 0


def test_run_directory_contents(trained: Trained) -> None:
    run_dir = trained.result.run_dir
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert {
        "config.yaml",
        "run.json",
        "preprocessing.json",
        "log.jsonl",
        "checkpoints/last.pt",
        "metrics.json",
        "report.md",
        "plots/learning_curves.png",
        "plots/confusion_matrix_label.png",
        "model/manifest.json",
        "model/weights.safetensors",
    } <= names
    assert not [name for name in names if name.endswith(".partial") or "/." in f"/{name}"]  # no leftovers


def test_resolved_config_is_saved(trained: Trained) -> None:
    saved = yaml.safe_load((trained.result.run_dir / "config.yaml").read_text())
    assert load_config(saved) == trained.pipeline.config
    assert saved["trainer"]["batch_size"] == 16  # every default filled in, not just what was given
    assert saved["trainer"]["precision"] == "fp32"


def test_log_has_one_json_line_per_epoch(trained: Trained) -> None:
    lines = (trained.result.run_dir / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["epoch"] for record in records] == [1, 2, 3, 4]
    assert records == trained.result.history
    for record in records:
        assert {"train_loss", "val_loss", "val_accuracy", "lr", "step"} <= set(record)


def test_checkpoint_is_the_final_state(trained: Trained) -> None:
    checkpoint = torch.load(trained.result.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 4
    assert set(checkpoint) >= {"model", "optimizer", "generator", "torch_rng"}


def test_run_facts(trained: Trained) -> None:
    facts = json.loads((trained.result.run_dir / "run.json").read_text())
    assert facts["data"] == str(trained.data.resolve())
    assert facts["split"] == {"method": "stratified", "train": 84, "validation": 18, "test": 18}
    assert facts["cleaning"]["rows_out"] == 120


def test_metrics_json_has_validation_and_test_per_output(trained: Trained) -> None:
    metrics = json.loads((trained.result.run_dir / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    for split in ("validation", "test"):
        assert set(metrics[split]) == {"loss", TARGET}
        scores = metrics[split][TARGET]
        assert {"accuracy", "f1", "roc_auc", "log_loss", "confusion_matrix"} <= set(scores)
        assert 0.0 <= scores["accuracy"] <= 1.0
        assert sum(map(sum, scores["confusion_matrix"]["counts"])) == 18
    assert metrics == json.loads(json.dumps(trained.result.metrics))


def test_plots_are_real_pngs(trained: Trained) -> None:
    plots = sorted((trained.result.run_dir / "plots").glob("*.png"))
    assert len(plots) == 2
    for plot in plots:
        assert plot.read_bytes()[:8] == PNG_MAGIC
        with Image.open(plot) as image:
            image.verify()
            assert image.size[0] > 100
            assert image.size[1] > 100


def test_report(trained: Trained) -> None:
    report = (trained.result.run_dir / "report.md").read_text()
    assert report.startswith("# deepwright run people")
    assert str(trained.data) in report
    assert "label (binary)" in report
    assert "accuracy" in report
    for image in ("plots/learning_curves.png", "plots/confusion_matrix_label.png"):
        assert f"]({image})" in report
        assert (trained.result.run_dir / image).is_file()


def test_evaluate_on_the_test_rows_reproduces_the_test_metrics(trained: Trained) -> None:
    frame = make_frame()
    config = trained.pipeline.config
    split = split_rows(frame, config.preprocessing.split, stratify_on=TARGET)
    metrics = trained.pipeline.evaluate(frame.iloc[split.test])
    expected = trained.result.metrics["test"]
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    for name in ("accuracy", "f1", "roc_auc", "log_loss"):
        assert metrics[TARGET][name] == pytest.approx(expected[TARGET][name], rel=1e-5)
    assert metrics[TARGET]["confusion_matrix"] == expected[TARGET]["confusion_matrix"]


def test_evaluate_accepts_a_file_and_drops_rows_without_a_target(trained: Trained, tmp_path: Path) -> None:
    frame = make_frame(30, seed=3)
    frame.loc[[2, 5], TARGET] = None
    metrics = trained.pipeline.evaluate(write_frame(frame, tmp_path / "eval.csv"))
    assert sum(map(sum, metrics[TARGET]["confusion_matrix"]["counts"])) == 28


def test_evaluate_needs_the_output_column(trained: Trained) -> None:
    with pytest.raises(DataError, match="output column 'label' not found"):
        trained.pipeline.evaluate(make_frame(10).drop(columns=[TARGET]))


def test_save_and_load(trained: Trained, tmp_path: Path) -> None:
    path = trained.pipeline.save(tmp_path / "bundle")
    loaded = dp.load(path)
    frame = make_frame(20, seed=4)
    assert loaded.predict(frame).equals(trained.pipeline.predict(frame))
    assert loaded.evaluate(frame) == trained.pipeline.evaluate(frame)
    assert loaded.output_types() == {TARGET: "binary"}


@pytest.mark.usefixtures("no_plots")
def test_run_names(frame: pd.DataFrame, tmp_path: Path) -> None:
    data = write_frame(frame, tmp_path / "my data.csv")
    first = dp.Pipeline.from_config(make_config(epochs=1)).fit(data, output_dir=tmp_path / "runs", progress=False)
    second = dp.Pipeline.from_config(make_config(epochs=1)).fit(data, output_dir=tmp_path / "runs", progress=False)
    named = dp.Pipeline.from_config({**make_config(epochs=1), "name": "exp"}).fit(
        data, output_dir=tmp_path / "runs", progress=False
    )
    assert (first.run_dir.name, second.run_dir.name, named.run_dir.name) == ("my_data", "my_data-2", "exp")


@pytest.mark.usefixtures("no_plots")
def test_regression_is_reported_in_the_target_units(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=300), "y": 1000 * x + 5000})
    config = {
        "input_features": [{"name": "x", "type": "number"}, {"name": "noise", "type": "number"}],
        "output_features": [{"name": "y", "type": "number"}],
        "combiner": {"dims": [16]},
        "trainer": {"epochs": 30, "batch_size": 16, "optimizer": {"lr": 0.01}},
    }
    pipeline = dp.Pipeline.from_config(config)
    result = pipeline.fit(frame, output_dir=tmp_path, progress=False)
    target_std = frame["y"].std()
    test = result.metrics["test"]["y"]
    assert test["rmse"] < 0.1 * target_std  # learned
    assert test["rmse"] > 1.0  # and in the target's units, not z-units (where it would be below 0.1)
    assert test["mae"] <= test["rmse"]
    assert test["r2"] > 0.98
    predictions = pipeline.predict(pd.DataFrame({"x": [0.0, 1.0], "noise": [0.0, 0.0]}))["y_prediction"]
    assert predictions.tolist() == pytest.approx([5000, 6000], abs=0.1 * target_std)


@pytest.mark.usefixtures("no_plots")
def test_row_numbers_in_errors_count_data_rows_of_the_file(tmp_path: Path) -> None:
    frame = make_frame(40)
    frame[TARGET] = frame[TARGET].astype(object)
    frame.loc[1, TARGET] = None  # dropped by cleaning: later rows keep their numbers
    frame["age"] = frame["age"].astype(object)
    frame.loc[29, "age"] = "forty"  # data row 30 (the header is not a row)
    data = write_frame(frame, tmp_path / "people.csv")
    with pytest.raises(DataError) as caught:
        dp.Pipeline.from_config(make_config(epochs=1)).fit(data, output_dir=tmp_path / "runs", progress=False)
    assert (caught.value.source, caught.value.row, caught.value.column) == (str(data), 30, "age")
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started


@pytest.mark.usefixtures("no_plots")
def test_missing_config_column_is_a_data_error_before_anything_is_written(frame: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="input column 'city' not found"):
        dp.Pipeline.from_config(make_config()).fit(frame.drop(columns=["city"]), output_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "trainer",
    [
        {"early_stopping": {"metric": "val_acc"}},
        {"early_stopping": {"metric": "val_loss"}},  # with no validation rows
    ],
    ids=["unknown-metric", "no-validation-rows"],
)
def test_trainer_config_errors_leave_no_run_directory(frame: pd.DataFrame, tmp_path: Path, trainer: dict) -> None:
    settings = make_config(**trainer)
    if "val_loss" in str(trainer):
        settings["preprocessing"]["split"]["fractions"] = [0.8, 0.2]
    with pytest.raises(ConfigError):
        dp.Pipeline.from_config(settings).fit(frame, output_dir=tmp_path / "runs", progress=False)
    assert list((tmp_path / "runs").glob("*")) == []


@pytest.mark.usefixtures("no_plots")
def test_bf16_trains_every_output_type(tmp_path: Path) -> None:
    frame = make_frame(80, seed=6)
    frame["band"] = np.where(frame["age"] > 45, "old", np.where(frame["age"] > 35, "mid", "young"))
    config = {
        "input_features": [{"name": "age", "type": "number"}, {"name": "city", "type": "category"}],
        "output_features": [
            {"name": TARGET, "type": "binary"},
            {"name": "band", "type": "category"},
            {"name": "income", "type": "number"},
        ],
        "combiner": {"dims": [8]},
        "trainer": {"epochs": 2, "batch_size": 16, "precision": "bf16"},
    }
    pipeline = dp.Pipeline.from_config(config)
    result = pipeline.fit(frame, output_dir=tmp_path, progress=False)
    assert all(np.isfinite(record["train_loss"]) for record in result.history)
    assert set(result.metrics["test"]) == {"loss", TARGET, "band", "income"}
    prediction = pipeline.predict({"age": 50.0, "city": "Nice"})
    assert {f"{TARGET}_prediction", "band_prediction", "income_prediction"} <= set(prediction)
