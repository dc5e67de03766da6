"""Model quality from the CLI alone, on the split rules of `../shared/data/README.md`, beside its reference figures.

For each dataset this script writes a CSV with a `split` column (train/test) that reproduces the README's split
rule exactly, then runs what a user would, with no hand-edited config:

    deepwright init  --data <data-dir>/quality/NAME/NAME.csv --target T -o <data-dir>/quality/NAME/config.yaml
    deepwright train --config <that config> --data <that csv> --output <data-dir>/quality/NAME/runs --quiet

`init` sees the `split` column and splits by it, holding out 10% of the training rows as validation (for early
stopping). The test metrics come from the run's `metrics.json`; training time is the `train` command's wall
time (and the sum of its epochs), beside the share of the CPUs other processes used meanwhile. Datasets and split rules:

- titanic (`Survived`), iris, wine, breast_cancer, digits (64 pixel columns): `train_test_split(test_size=0.2,
  random_state=42, stratify=y)`; diabetes, california_housing (`median_house_value`): the same, unstratified;
  adult (`income`): its own `split` column (official UCI train/test).
- Goals: titanic accuracy ≥ 0.80, adult ≥ 0.85, california test RMSE ≤ 55,000. The scikit-learn tables are
  compared with the README's StandardScaler + LogisticRegression / LinearRegression figures.

Datasets whose files under ../shared/data are absent are skipped with a message.

    .venv/bin/python benchmarks/quality.py [--data-dir /tmp/deepwright-bench] [--only NAME ...]
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


@dataclass(frozen=True)
class Dataset:
    """A dataset, how to load it, its split rule, and what its test metric is measured against."""

    name: str
    target: str
    load: Callable[[], pd.DataFrame]
    files: tuple[str, ...] = ()  # needed under ../shared/data; none for scikit-learn's bundled tables
    stratify: bool = True
    has_split: bool = False  # the table carries its own train/test `split` column
    goal: tuple[str, str, float] | None = None  # (metric, ">=" or "<=", value)
    references: dict[str, dict[str, float]] = field(default_factory=dict)  # name → {metric → value}
    # Writes the files the table refers to (such as images) into the dataset's folder; returns the table to save.
    materialise: Callable[[pd.DataFrame, Path], pd.DataFrame] | None = None


def shared_csv(relative: str) -> Callable[[], pd.DataFrame]:
    """A loader of a CSV under ../shared/data."""
    return lambda: pd.read_csv(SHARED_DATA_DIR / relative)


def sklearn_table(loader: str) -> Callable[[], pd.DataFrame]:
    """A loader of a scikit-learn bundled table as a frame with its `target` column."""

    def load() -> pd.DataFrame:
        import sklearn.datasets

        return getattr(sklearn.datasets, loader)(as_frame=True).frame

    return load


def logreg(accuracy: float) -> dict[str, dict[str, float]]:
    """The README's StandardScaler + LogisticRegression accuracy on our split."""
    return {"logistic_regression (data README)": {"accuracy": accuracy}}


DATASETS = [
    Dataset(
        "titanic",
        "Survived",
        shared_csv("titanic/train.csv"),
        files=("titanic/train.csv",),
        goal=("accuracy", ">=", 0.80),
        references={"logistic_regression (data README)": {"accuracy": 0.804}, "random_forest_300": {"accuracy": 0.821}},
    ),
    Dataset(
        "adult",
        "income",
        shared_csv("adult/adult.csv"),
        files=("adult/adult.csv",),
        has_split=True,
        goal=("accuracy", ">=", 0.85),
        references={
            "logistic_regression (data README)": {"accuracy": 0.853},
            "hist_gradient_boosting": {"accuracy": 0.872},
        },
    ),
    Dataset(
        "california_housing",
        "median_house_value",
        shared_csv("california_housing/housing.csv"),
        files=("california_housing/housing.csv",),
        stratify=False,
        goal=("rmse", "<=", 55_000.0),
        references={"linear_regression (data README)": {"rmse": 70_059.0}, "random_forest_100": {"rmse": 48_942.0}},
    ),
    Dataset("iris", "target", sklearn_table("load_iris"), references=logreg(0.933)),
    Dataset("wine", "target", sklearn_table("load_wine"), references=logreg(0.972)),
    Dataset("breast_cancer", "target", sklearn_table("load_breast_cancer"), references=logreg(0.982)),
    Dataset("digits", "target", sklearn_table("load_digits"), references=logreg(0.972)),
    Dataset(
        "diabetes",
        "target",
        sklearn_table("load_diabetes"),
        stratify=False,
        references={"linear_regression (data README)": {"r2": 0.453, "rmse": 53.85}},
    ),
]


def with_split_column(dataset: Dataset, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with a `split` column (train/test) following the data README's rule for `dataset`."""
    if dataset.has_split:
        return frame
    from sklearn.model_selection import train_test_split

    labels = frame[dataset.target] if dataset.stratify else None
    _, test = train_test_split(frame.index.to_numpy(), test_size=0.2, random_state=42, stratify=labels)
    frame = frame.copy()
    frame["split"] = "train"
    frame.loc[test, "split"] = "test"
    return frame


def missing_files(dataset: Dataset) -> list[str]:
    """The dataset's files that are absent under ../shared/data."""
    return [relative for relative in dataset.files if not (SHARED_DATA_DIR / relative).is_file()]


def prepare(dataset: Dataset, folder: Path) -> Path:
    """Write the dataset with its `split` column to `folder/NAME.csv`, and the files it refers to beside it
    (fresh folder each run)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / f"{dataset.name}.csv"
    frame = with_split_column(dataset, dataset.load())
    if dataset.materialise is not None:
        frame = dataset.materialise(frame, folder)
    frame.to_csv(path, index=False)
    return path


def init_and_train(dataset: Dataset, csv: Path) -> tuple[float, Path]:
    """`deepwright init` then `deepwright train`, as a user would; (train wall seconds, run directory)."""
    config = csv.parent / "config.yaml"
    cli = deepwright_command()
    run_timed([*cli, "init", "--data", str(csv), "--target", dataset.target, "-o", str(config)])
    runs = csv.parent / "runs"
    command = [*cli, "train", "--config", str(config), "--data", str(csv), "--output", str(runs), "--quiet"]
    seconds, _ = run_timed([*command, "--name", dataset.name])
    return seconds, runs / dataset.name


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of an output (no confusion matrix)."""
    return {name: round(value, 4) for name, value in metrics.items() if isinstance(value, (int, float))}


def goal_met(goal: tuple[str, str, float] | None, metrics: dict[str, float]) -> bool | None:
    """Whether `metrics` meet `goal` (None when the dataset has no goal)."""
    if goal is None:
        return None
    metric, direction, value = goal
    return metrics[metric] >= value if direction == ">=" else metrics[metric] <= value


def beats_references(references: dict[str, dict[str, float]], metrics: dict[str, float]) -> dict[str, bool]:
    """For each reference model, whether deepwright is at least as good on every metric it reports."""
    better = {"accuracy": 1, "r2": 1, "rmse": -1}
    return {
        name: all(better[metric] * (metrics[metric] - value) >= 0 for metric, value in figures.items())
        for name, figures in references.items()
    }


def evaluate(dataset: Dataset, folder: Path) -> dict[str, Any]:
    """Prepare, init, train and read back the test metrics of one dataset."""
    csv = prepare(dataset, folder)
    seconds, run_dir = init_and_train(dataset, csv)
    config = (run_dir / "config.yaml").read_text(encoding="utf-8")
    history = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    splits = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["split"]
    test = scalar_metrics(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["test"][dataset.target])
    return {
        "dataset": dataset.name,
        "target": dataset.target,
        "test": test,
        "goal": None if dataset.goal is None else " ".join(map(str, dataset.goal)),
        "goal_met": goal_met(dataset.goal, test),
        "references": dataset.references,
        "at_least_reference": beats_references(dataset.references, test),
        "train_command_s": round(seconds, 2),
        "epochs_run": len(history),
        "epoch_seconds_total": round(sum(record["seconds"] for record in history), 2),
        "split_sizes": splits,
        "config": str(run_dir / "config.yaml"),
        "early_stopping": "early_stopping:" in config,
    }


def describe(row: dict[str, Any]) -> str:
    """One human-readable line for standard error."""
    shown = {name: row["test"][name] for name in ("accuracy", "rmse", "r2") if name in row["test"]}
    return (
        f"{row['dataset']:<19} test {shown}  goal {row['goal']} → {row['goal_met']}  "
        f"refs {row['at_least_reference']}  train {row['train_command_s']} s ({row['epochs_run']} epochs)"
    )


def evaluate_all(datasets: list[Dataset], folder: Path, wait_s: float) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Evaluate each dataset in `folder/NAME/`, one after the other; (result rows, {skipped name → why})."""
    rows, skipped = [], {}
    for dataset in datasets:
        absent = missing_files(dataset)
        if absent:
            skipped[dataset.name] = f"absent under {SHARED_DATA_DIR}: {', '.join(absent)}"
            log(f"skipping {dataset.name}: {skipped[dataset.name]}")
            continue
        wait_for_quiet_cpu(timeout_s=wait_s)
        rows.append(measured(lambda dataset=dataset: evaluate(dataset, folder / dataset.name)))
        log(describe(rows[-1]))
    return rows, skipped


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], repeats=None)
    parser.add_argument("--only", nargs="+", choices=[dataset.name for dataset in DATASETS], help="these datasets")
    args = parser.parse_args()
    chosen = [dataset for dataset in DATASETS if not args.only or dataset.name in args.only]
    rows, skipped = evaluate_all(chosen, args.data_dir / "quality", args.wait_quiet)
    emit(
        {
            "benchmark": "quality",
            "compares": "deepwright init + train (CLI, inferred config) test metrics vs ../shared/data/README.md "
            "reference models on the same split",
            "results": rows,
            "skipped": skipped,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
