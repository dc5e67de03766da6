"""Forecasting end to end: a series → init → train → evaluate → save → load → predict the next values, from the
Python API and the CLI; and every bad series (too short, unsorted, duplicated or missing times, gaps, a value that
is not a number) answered with a clear error, exit status 2 and nothing written."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import deepwright as dp
from deepwright.data.timeindex import SeriesOrderWarning
from deepwright.errors import DataError
from tests.helpers import Outcome, assert_user_error, files_under

CLI = Callable[..., Outcome]
BASELINE_METRICS = {f"{prefix}{metric}" for prefix in ("", "naive_", "seasonal_naive_") for metric in ("mae", "rmse")}


def series(months: int = 72, seed: int = 0) -> pd.DataFrame:
    """A monthly series with a trend and a yearly season, plus a category and a number read at each step."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    sales = 100 + t + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, months)
    return pd.DataFrame(
        {
            "month": pd.period_range("2015-01", periods=months, freq="M").strftime("%Y-%m"),
            "sales": sales.round(2),
            "promo": rng.choice(["yes", "no"], months),
            "region": rng.choice(["north", "south", "east"], months),
            "price": rng.normal(10, 1, months).round(2),
        }
    )


def config(**overrides: object) -> dict:
    """A tiny forecast of `sales`, 2 steps ahead from 12, reading the other columns at each step."""
    return {
        "model_type": "forecast",
        "time_column": "month",
        "lookback": 12,
        "horizon": 2,
        "seasonal_period": 12,
        "input_features": [
            {"name": "promo", "type": "binary"},
            {"name": "region", "type": "category"},
            {"name": "price", "type": "number"},
        ],
        "output_features": [{"name": "sales", "type": "number"}],
        "encoder": {"type": "rnn", "cell": "gru", "dim": 8},
        "combiner": {"dims": [16]},
        "preprocessing": {"split": {"fractions": [0.7, 0.15, 0.15]}},
        "trainer": {"epochs": 4, "batch_size": 16, "optimizer": {"lr": 0.01}},
        **overrides,
    }


def test_fit_evaluate_save_load_predict(tmp_path: Path, no_plots: None) -> None:
    frame = series()
    pipeline = dp.Pipeline.from_config(config())
    result = pipeline.fit(frame, output_dir=tmp_path / "runs", progress=False)
    assert result.split_sizes == {"train": 37, "validation": 10, "test": 10}  # 50/11/11 steps; windows forecast 2
    test = result.metrics["test"]["sales"]
    assert set(test) >= BASELINE_METRICS and test["naive_rmse"] > 0
    assert {"mape", "smape"} <= set(test)
    for name in ("config.yaml", "run.json", "preprocessing.json", "log.jsonl", "metrics.json", "model/manifest.json"):
        assert (result.run_dir / name).is_file(), name

    history = frame.iloc[:40]
    forecast = pipeline.predict(history)
    assert forecast.columns.tolist() == ["month", "sales_prediction"]
    assert [str(time)[:7] for time in forecast["month"]] == ["2018-05", "2018-06"]  # the two months after the history
    loaded = dp.load(result.bundle_dir)
    pd.testing.assert_frame_equal(loaded.predict(history), forecast)
    records = loaded.predict(history.to_dict("records"))
    assert [row["sales_prediction"] for row in records] == pytest.approx(forecast["sales_prediction"].tolist())

    evaluated = loaded.evaluate(frame)
    assert set(evaluated["sales"]) >= BASELINE_METRICS
    values = frame["sales"].to_numpy()
    errors = [values[start + step] - values[start - 1] for start in range(12, 71) for step in (0, 1)]
    assert evaluated["sales"]["naive_rmse"] == pytest.approx(np.sqrt(np.mean(np.square(errors))), rel=1e-6)


def test_a_forecast_beats_persistence_on_a_trending_seasonal_series(tmp_path: Path, no_plots: None) -> None:
    """Levels rise beyond anything seen in training; forecasting changes from the last value copes."""
    frame = series(120)
    options = config(input_features=[], horizon=1, encoder={"type": "rnn", "dim": 16})
    options["trainer"] = {"epochs": 60, "batch_size": 16, "early_stopping": {"patience": 10}}
    result = dp.Pipeline.from_config(options).fit(frame, output_dir=tmp_path / "runs", progress=False)
    test = result.metrics["test"]["sales"]
    assert test["rmse"] < test["naive_rmse"] and test["rmse"] < test["seasonal_naive_rmse"]


@pytest.mark.parametrize(
    "encoder",
    [
        {"type": "rnn", "cell": "rnn", "dim": 4},
        {"type": "transformer", "dim": 8, "heads": 2, "layers": 1, "feedforward_dim": 16},
        {"type": "conv1d", "dims": [4], "pools": [1]},
    ],
    ids=["rnn", "transformer", "conv1d"],
)
def test_every_encoder_and_the_linear_term(tmp_path: Path, no_plots: None, encoder: dict) -> None:
    options = config(encoder=encoder, linear=False, history_across_splits=False)
    options["trainer"]["epochs"] = 1
    result = dp.Pipeline.from_config(options).fit(series(), output_dir=tmp_path / "runs", progress=False)
    assert result.split_sizes == {"train": 37, "validation": 0, "test": 0}  # 11-step splits hold no 12 + 2 window
    assert np.isfinite(result.history[0]["train_loss"])


def test_date_parts_and_empty_target_values(tmp_path: Path, no_plots: None) -> None:
    frame = series()
    dates = pd.to_datetime(frame.pop("month"))
    frame.insert(0, "year", dates.dt.year)
    frame.insert(1, "month", dates.dt.month)
    frame.loc[65, "sales"] = None  # the windows forecasting this step are left out
    options = config(time_column=["year", "month"])
    result = dp.Pipeline.from_config(options).fit(frame, output_dir=tmp_path / "runs", progress=False)
    assert result.cleaning.dropped == {"windows with an empty value to forecast": 2}
    assert result.split_sizes["test"] == 8
    forecast = dp.load(result.bundle_dir).predict(frame.iloc[:30])
    assert forecast.columns.tolist() == ["time", "sales_prediction"]


def test_unsorted_rows_are_sorted_with_a_warning(tmp_path: Path, no_plots: None) -> None:
    frame = series()
    shuffled = frame.sample(frac=1.0, random_state=0)
    options = config()
    options["trainer"]["epochs"] = 1
    with pytest.warns(SeriesOrderWarning, match="sorted them by time"):
        shuffled_result = dp.Pipeline.from_config(options).fit(shuffled, output_dir=tmp_path / "a", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ordered_result = dp.Pipeline.from_config(options).fit(frame, output_dir=tmp_path / "b", progress=False)
    assert shuffled_result.metrics == ordered_result.metrics


def test_history_must_cover_the_lookback(tmp_path: Path, no_plots: None) -> None:
    options = config()
    options["trainer"]["epochs"] = 1
    pipeline = dp.Pipeline.from_config(options)
    pipeline.fit(series(), output_dir=tmp_path / "runs", progress=False)
    with pytest.raises(DataError, match="the history has 5 time steps; the model reads the last 12"):
        pipeline.predict(series().iloc[:5])
    with pytest.raises(DataError, match="history column 'price' not found"):
        pipeline.predict(series().drop(columns=["price"]))


# -- the command line --------------------------------------------------------------------------------------


def write_series(folder: Path, frame: pd.DataFrame, name: str = "sales.csv") -> Path:
    frame.to_csv(folder / name, index=False)
    return folder / name


def test_cli_init_train_evaluate_predict(cli: CLI, tmp_path: Path, no_plots: None) -> None:
    frame = series(60)
    write_series(tmp_path, frame)
    write_series(tmp_path, frame.iloc[:30].drop(columns=["sales"]).assign(sales=frame["sales"].iloc[:30]), "recent.csv")
    outcome = cli("init", "--data", "sales.csv", "--target", "sales", "--task", "forecast", "--horizon", "3",
                  "-o", "config.yaml", cwd=tmp_path)  # fmt: skip
    assert outcome.returncode == 0, outcome.stderr
    inferred = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert inferred["model_type"] == "forecast"
    assert (inferred["time_column"], inferred["frequency"], inferred["horizon"]) == ("month", "MS", 3)
    assert inferred["seasonal_period"] == 12 and inferred["lookback"] == 12  # two seasons, at most a quarter of 48
    assert [feature["name"] for feature in inferred["input_features"]] == ["promo", "region", "price"]
    inferred["trainer"].update(epochs=2)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(inferred))

    outcome = cli(
        "train", "--config", "config.yaml", "--data", "sales.csv", "--output", "runs", "--quiet", cwd=tmp_path
    )
    assert outcome.returncode == 0, outcome.stderr
    assert "naive_rmse" in outcome.stdout and "seasonal_naive_mae" in outcome.stdout
    outcome = cli(
        "predict", "--model", "runs/sales/model", "--data", "recent.csv", "--output", "next.csv", cwd=tmp_path
    )
    assert outcome.returncode == 0, outcome.stderr
    predictions = pd.read_csv(tmp_path / "next.csv")
    assert predictions["month"].tolist() == ["2017-07-01", "2017-08-01", "2017-09-01"]
    outcome = cli("evaluate", "--model", "runs/sales/model", "--data", "sales.csv", "--output", "ev", cwd=tmp_path)
    assert outcome.returncode == 0, outcome.stderr
    assert "seasonal_naive_rmse" in outcome.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a good series and a good forecast config; each test spoils one thing."""
    write_series(tmp_path, series())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config()))
    return tmp_path


def failed_train(cli: CLI, project: Path, frame: pd.DataFrame) -> str:
    """Train on a spoiled series: exit 2, a one-line message, and nothing written."""
    write_series(project, frame)
    before = files_under(project)
    outcome = cli("train", "--config", "config.yaml", "--data", "sales.csv", "--output", "runs", "--quiet", cwd=project)
    message = assert_user_error(outcome)
    assert files_under(project) == before
    return message


def test_a_series_shorter_than_lookback_and_horizon(cli: CLI, project: Path) -> None:
    message = failed_train(cli, project, series(13))
    assert "sales.csv: the series has 13 time steps; a forecast needs at least lookback + horizon = 14" in message


def test_too_few_training_steps_for_a_window(cli: CLI, project: Path) -> None:
    message = failed_train(cli, project, series(16))
    assert "no training window: the 12 training steps hold no lookback + horizon = 14 steps" in message


def test_duplicated_times(cli: CLI, project: Path) -> None:
    frame = series()
    frame.loc[10, "month"] = frame.loc[9, "month"]
    message = failed_train(cli, project, frame)
    assert "column 'month': rows 10 and 11 have the same time 2015-10-01" in message


def test_a_gap_in_the_time_index(cli: CLI, project: Path) -> None:
    message = failed_train(cli, project, series().drop(index=[20, 21]))
    assert "row 21, column 'month': 2 time steps missing before 2016-11-01" in message
    assert "set gaps: fill" in message


def test_a_time_that_is_not_a_time(cli: CLI, project: Path) -> None:
    frame = series()
    frame.loc[4, "month"] = "soon"
    assert "row 5, column 'month': value 'soon' is not a date or time" in failed_train(cli, project, frame)


def test_a_value_that_is_not_a_number(cli: CLI, project: Path) -> None:
    frame = series()
    frame["sales"] = frame["sales"].astype(object)
    frame.loc[7, "sales"] = "n/a?"
    message = failed_train(cli, project, frame)
    assert "row 8, column 'sales': value 'n/a?' is not a number" in message


def test_init_on_a_target_that_is_not_numeric(cli: CLI, project: Path) -> None:
    outcome = cli("init", "--data", "sales.csv", "--target", "region", "--task", "forecast", cwd=project)
    message = assert_user_error(outcome)
    assert "row 1, column 'region': value 'east' is not a number; a forecast target must be numeric" in message


def test_predict_with_a_short_history(cli: CLI, project: Path, no_plots: None) -> None:
    options = config()
    options["trainer"]["epochs"] = 1
    (project / "config.yaml").write_text(yaml.safe_dump(options))
    assert cli("train", "--config", "config.yaml", "--data", "sales.csv", "--quiet", cwd=project).returncode == 0
    write_series(project, series().iloc[:4], "short.csv")
    outcome = cli("predict", "--model", "runs/sales/model", "--data", "short.csv", "--output", "p.csv", cwd=project)
    assert "the history has 4 time steps; the model reads the last 12" in assert_user_error(outcome)
    assert not (project / "p.csv").exists()


def test_config_errors_name_the_key(cli: CLI, project: Path) -> None:
    (project / "config.yaml").write_text(
        yaml.safe_dump(config(output_features=[{"name": "region", "type": "category"}]))
    )
    outcome = cli("train", "--config", "config.yaml", "--data", "sales.csv", cwd=project)
    assert "output_features[0]: a forecast reads number columns at each step, not 'category'" in assert_user_error(
        outcome, max_lines=3
    )


def test_cli_sorts_unsorted_rows_with_a_one_line_warning(cli: CLI, project: Path, no_plots: None) -> None:
    options = config()
    options["trainer"]["epochs"] = 1
    (project / "config.yaml").write_text(yaml.safe_dump(options))
    write_series(project, series().iloc[[1, 0, *range(2, 72)]])
    outcome = cli("train", "--config", "config.yaml", "--data", "sales.csv", "--quiet", cwd=project)
    assert outcome.returncode == 0, outcome.stderr
    warning = "warning: sales.csv: rows are not in time order (row 2 is earlier than row 1 above it); sorted them"
    assert [line for line in outcome.stderr.splitlines() if line.startswith("warning:")] == [warning + " by time"]
