"""Forecast quality from the CLI alone, on the split rules of `../shared/data/README.md`, beside the baselines
computed in the same run and the README's reference figures.

For each series this script writes a CSV with a `split` column (train/test) that reproduces the README's split
rule exactly, then runs what a user would, with no hand-edited config:

    deepwright init  --data <data-dir>/forecast/NAME/NAME.csv --target T --task forecast -o .../config.yaml
    deepwright train --config <that config> --data <that csv> --output <data-dir>/forecast/NAME/runs --quiet

`init` infers the time column, the step, the seasonal period and the lookback (horizon 1), sees the `split`
column and splits by it in time order, holding out the last 10% of the training steps as validation (for early
stopping). Every test step is forecast once, one step ahead, from the steps before it (its lookback may reach
into the training period, as the README's persistence figures do). The test MAE and RMSE come from the run's
`metrics.json`, beside the naive (persistence) and seasonal-naive forecasts of the same test windows, computed by
the same run. Series and split rules:

- airline_passengers (`Passengers`): first 96 months train, last 48 test. Published LSTM (look_back 1): test
  RMSE 47.53; README: persistence 48.04, seasonal naive (t−12) 41.85.
- daily_min_temperatures (`Temp`): last 365 rows (1990) test. README: persistence 2.582, AR(7) 2.297.
- monthly_sunspots (`Sunspots`): last 20% (564 months) test. README: persistence 20.09, AR(12) 18.73.
- beijing_pm25 (`pm2.5`): Brownlee's protocol: first 24 rows dropped, empty pm2.5 → 0, first 365×24 hours
  train, the rest test. Published LSTM: test RMSE 26.496; README: persistence 26.559.

Goals: test MAE and RMSE below both baselines on every series; airline RMSE < 47.53; beijing RMSE < 26.496.
Series whose files under ../shared/data are absent are skipped with a message.

    .venv/bin/python benchmarks/forecast_quality.py [--data-dir /tmp/deepwright-bench] [--only NAME ...]
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from _common import (
    SHARED_DATA_DIR,
    base_parser,
    deepwright_command,
    emit,
    environment,
    log,
    measured,
    run_timed,
    wait_for_quiet_cpu,
)

BASELINES = ("naive", "seasonal_naive")


@dataclass(frozen=True)
class Series:
    """A shared series, its README split rule (as a function of the frame), and its published figures."""

    name: str
    target: str
    file: str
    split: Callable[[pd.DataFrame], pd.DataFrame]  # the frame as the README prepares it, with a `split` column
    goal_rmse: float | None = None  # a published model's test RMSE to beat
    references: dict[str, float] = field(default_factory=dict)  # name → test RMSE (README)


def last_rows_test(count: Callable[[int], int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A split rule: the last `count(rows)` rows test, the others train."""

    def split(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        test = count(len(frame))
        frame["split"] = ["train"] * (len(frame) - test) + ["test"] * test
        return frame

    return split


def brownlee_pollution(frame: pd.DataFrame) -> pd.DataFrame:
    """Brownlee's protocol: drop the first 24 rows, empty pm2.5 → 0, the first 365×24 hours train."""
    frame = frame.iloc[24:].copy()
    frame["pm2.5"] = frame["pm2.5"].fillna(0)
    frame["split"] = ["train"] * (365 * 24) + ["test"] * (len(frame) - 365 * 24)
    return frame


SERIES = [
    Series(
        "airline_passengers",
        "Passengers",
        "airline_passengers/airline-passengers.csv",
        last_rows_test(lambda rows: rows - 96),
        goal_rmse=47.53,
        references={
            "published LSTM (Brownlee)": 47.53,
            "persistence (README)": 48.04,
            "seasonal naive (README)": 41.85,
        },
    ),
    Series(
        "daily_min_temperatures",
        "Temp",
        "daily_min_temperatures/daily-min-temperatures.csv",
        last_rows_test(lambda rows: 365),
        references={"persistence (README)": 2.582, "AR(7) (README)": 2.297},
    ),
    Series(
        "monthly_sunspots",
        "Sunspots",
        "monthly_sunspots/monthly-sunspots.csv",
        last_rows_test(lambda rows: round(rows * 0.2)),
        references={"persistence (README)": 20.09, "AR(12) (README)": 18.73},
    ),
    Series(
        "beijing_pm25",
        "pm2.5",
        "beijing_pm25/pollution.csv",
        brownlee_pollution,
        goal_rmse=26.496,
        references={"published LSTM (Brownlee)": 26.496, "persistence (README)": 26.559},
    ),
]


def prepare(series: Series, folder: Path) -> Path:
    """Write the series with its `split` column to `folder/NAME.csv` (fresh folder each run)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / f"{series.name}.csv"
    series.split(pd.read_csv(SHARED_DATA_DIR / series.file)).to_csv(path, index=False)
    return path


def init_and_train(series: Series, csv: Path) -> tuple[float, Path]:
    """`deepwright init --task forecast` then `deepwright train`; (train wall seconds, run directory)."""
    config = csv.parent / "config.yaml"
    cli = deepwright_command()
    run_timed([*cli, "init", "--data", str(csv), "--target", series.target, "--task", "forecast", "-o", str(config)])
    runs = csv.parent / "runs"
    command = [*cli, "train", "--config", str(config), "--data", str(csv), "--output", str(runs), "--quiet"]
    seconds, _ = run_timed([*command, "--name", series.name])
    return seconds, runs / series.name


def evaluate(series: Series, folder: Path) -> dict[str, Any]:
    """Prepare, init, train and read back the test metrics of one series."""
    csv = prepare(series, folder)
    seconds, run_dir = init_and_train(series, csv)
    config = _yaml(run_dir / "config.yaml")
    history = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    test = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["test"][series.target]
    model = {metric: round(test[metric], 4) for metric in ("mae", "rmse", "mape", "smape") if test[metric] is not None}
    baselines = {
        baseline: {metric: round(test[f"{baseline}_{metric}"], 4) for metric in ("mae", "rmse")}
        for baseline in BASELINES
        if test.get(f"{baseline}_rmse") is not None
    }
    beats = {
        baseline: all(model[metric] < figures[metric] for metric in ("mae", "rmse"))
        for baseline, figures in baselines.items()
    }
    return {
        "series": series.name,
        "target": series.target,
        "test": model,
        "baselines": baselines,
        "beats_baselines": beats,
        "goal_rmse": series.goal_rmse,
        "goal_met": all(beats.values()) and (series.goal_rmse is None or model["rmse"] < series.goal_rmse),
        "references_rmse": series.references,
        "inferred": {key: config[key] for key in ("frequency", "lookback", "horizon", "seasonal_period", "gaps")},
        "train_command_s": round(seconds, 2),
        "epochs_run": len(history),
        "epoch_seconds_total": round(sum(record["seconds"] for record in history), 2),
        "windows": run["split"],
        "config": str(run_dir / "config.yaml"),
    }


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def describe(row: dict[str, Any]) -> str:
    """One human-readable line for standard error."""
    shown = ", ".join(f"{name} {figures['rmse']}" for name, figures in row["baselines"].items())
    return (
        f"{row['series']:<23} test RMSE {row['test']['rmse']} MAE {row['test']['mae']}  baselines RMSE {shown}  "
        f"goal met {row['goal_met']}  train {row['train_command_s']} s ({row['epochs_run']} epochs)"
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--only", nargs="+", choices=[series.name for series in SERIES], help="these series")
    args = parser.parse_args()
    rows, skipped = [], {}
    for series in SERIES:
        if args.only and series.name not in args.only:
            continue
        if not (SHARED_DATA_DIR / series.file).is_file():
            skipped[series.name] = f"absent under {SHARED_DATA_DIR}: {series.file}"
            log(f"skipping {series.name}: {skipped[series.name]}")
            continue
        wait_for_quiet_cpu(timeout_s=args.wait_quiet)
        rows.append(measured(lambda series=series: evaluate(series, args.data_dir / "forecast" / series.name)))
        log(describe(rows[-1]))
    emit(
        {
            "benchmark": "forecast_quality",
            "compares": "deepwright init --task forecast + train (CLI, inferred config) test MAE/RMSE vs naive and "
            "seasonal-naive forecasts of the same test windows, and the ../shared/data/README.md figures",
            "goal": "below both baselines on MAE and RMSE on every series; airline RMSE < 47.53; beijing RMSE < 26.496",
            "results": rows,
            "all_goals_met": all(row["goal_met"] for row in rows),
            "skipped": skipped,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
